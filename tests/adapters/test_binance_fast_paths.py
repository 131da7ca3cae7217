"""Binance's per-page shortcut gives what the general path gives.

The next ``fromId``: the fast path for a page of exactly consecutive ids from the cursor
gives what the general path (np.unique over the page's own run) gives, and every odd page
— ids out of order, repeated, with a gap, before the cursor, or none — still goes the
general way."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from dccd_cli.adapters import binance

MS = 1_000_000
C = 1_737_816_222  # a cursor (an aggregate trade id)
T = 1_709_280_000_000  # ms
START, END = T * MS, (T + 3_600_000) * MS


def general(ids: npt.NDArray[np.int64], times: npt.NDArray[np.int64], cursor: int,
            end_ns: int, limit: int) -> int | None:
    """The general path of ``_next_cursor`` for a page by id (no shortcut)."""
    return binance._next_cursor_by_own_rows(ids, times, cursor, START, end_ns, limit)


def page(ids: list[int], times: list[int] | None = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    t = times if times is not None else [T + 10 * i for i in range(len(ids))]
    return np.array(ids, np.int64), np.array(t, np.int64)


def same(ids: npt.NDArray[np.int64], times: npt.NDArray[np.int64], limit: int, end_ns: int = END) -> int | None:
    got = binance._next_cursor(ids, times, C, START, end_ns, limit)
    assert got == general(ids, times, C, end_ns, limit)
    return got


def test_consecutive_pages_take_the_fast_path_with_the_same_answers() -> None:
    ids, times = page(list(range(C, C + 1000)))
    assert binance._consecutive_from(ids, C)
    assert same(ids, times, 1000) == C + 1000  # a full page: go on after it
    assert same(ids, times, 1001) is None  # a short page: drained
    assert same(ids, times, 1000, end_ns=int(times[-1]) * MS) is None  # reaches the end
    assert same(ids, times, 1000, end_ns=int(times[-1]) * MS + 1) == C + 1000
    shuffled = times.copy()
    shuffled[[0, 500]] = shuffled[[500, 0]]  # times need not be sorted: their max counts
    assert same(ids, shuffled, 1000, end_ns=int(times[-1]) * MS + 1) == C + 1000
    one, one_t = page([C])
    assert binance._consecutive_from(one, C) and same(one, one_t, 1) == C + 1


@pytest.mark.parametrize("ids", [
    [C, C, C + 2],  # a repeated row, with first and last as a consecutive page has them
    [C + 1, C, C + 2],  # out of order
    [C, C + 2, C + 1],
    [C, C + 1, C + 3],  # a gap
    [C + 1, C + 2, C + 3],  # starts past the cursor
    [C - 2, C - 1, C],  # rows of the page before repeated
    [C - 1, C, C + 1, C + 2],
    [C, C + 1, C + 2, C + 1],  # a row repeated at the end
    [C + 2, C + 1, C],  # reversed
], ids=repr)
@pytest.mark.parametrize("limit", [1, 2, 3, 4])
def test_odd_pages_take_the_general_path(ids: list[int], limit: int) -> None:
    arr, times = page(ids)
    assert not binance._consecutive_from(arr, C)
    same(arr, times, limit)


def test_an_empty_page_is_not_consecutive() -> None:
    assert not binance._consecutive_from(np.array([], np.int64), C)


def test_random_pages_agree() -> None:
    rng = np.random.default_rng(7)
    fast = 0
    for _ in range(3000):
        n = int(rng.integers(1, 12))
        ids = C + np.arange(n, dtype=np.int64) + int(rng.integers(-2, 3)) * (rng.random() < 0.3)
        kind = rng.integers(0, 5)
        if kind == 1:
            ids[int(rng.integers(0, n))] += int(rng.integers(-2, 3))  # a gap, repeat or overlap
        elif kind == 2:
            rng.shuffle(ids)
        elif kind == 3 and n > 1:
            ids = np.concatenate([ids[:-1], ids[-2:-1]])  # last row repeated
        times = T + rng.integers(0, 4_000_000, n).astype(np.int64)
        end = (T + int(rng.integers(0, 4_000_000))) * MS
        fast += binance._consecutive_from(ids, C)
        same(ids, times, int(rng.integers(1, 13)), end_ns=end)
    assert 300 < fast < 3000  # both paths were exercised
