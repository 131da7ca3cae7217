"""``paginate_forward`` and ``paginate_backward``, the two primitive shapes of the paginator
contract (pages addressed by fixed time windows; pages anchored at an end bound that moves
into the past), against fake exchanges: every row once, in order, pieces that tile the
range, and a capped page never taken for a whole window."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dccd_cli.errors import FetchError
from dccd_cli.pieces import Chunk, FailedRange
from dccd_cli.schema import trades_table
from dccd_cli.sources.rest.ohlc import paginate_backward, paginate_forward
from dccd_cli.timeutil import MINUTE_NS, NS

T0 = 1_704_067_200 * NS  # 2024-01-01
SPAN = 240 * MINUTE_NS  # the fake exchanges' history: four hours


def rows(ts: list[int]) -> pa.Table:
    return trades_table(ts, [str(i) for i in range(len(ts))], [1.0] * len(ts), [1.0] * len(ts),
                        ["buy"] * len(ts))


def ts_of(table: pa.Table) -> list[int]:
    values: list[int] = table.column("ts").cast(pa.int64()).to_pylist()
    return values


async def collect(it: Any) -> list[Any]:
    return [p async for p in it]


def tiles(pieces: list[Any], start: int, end: int) -> bool:
    return (pieces[0].start_ns == start and pieces[-1].end_ns == end
            and all(a.end_ns == b.start_ns for a, b in zip(pieces, pieces[1:])))


instants = st.lists(st.integers(0, SPAN - 1), max_size=300).map(lambda xs: sorted({T0 + x for x in xs}))


@settings(max_examples=60, deadline=None)
@given(market=instants, lo=st.integers(0, SPAN // 2), hi=st.integers(SPAN // 2 + 1, SPAN),
       window_min=st.sampled_from([7, 15, 60]))
def test_forward_windows_yield_every_row_once_in_order(market: list[int], lo: int, hi: int,
                                                       window_min: int) -> None:
    start, end = T0 + lo, T0 + hi

    async def fetch(w0: int, w1: int) -> pa.Table:
        await asyncio.sleep(random.random() / 1000)  # windows finish out of order
        inside = [t for t in market if w0 <= t < w1]
        random.shuffle(inside)  # whatever order the exchange sends, the paginator sorts
        return rows(inside)

    done: list[tuple[int, int]] = []
    pieces = asyncio.run(collect(paginate_forward(
        fetch, start, end, window_min * 60, 10_000, emit_progress=lambda d, t: done.append((d, t)),
        concurrency=4)))
    assert all(isinstance(p, Chunk) for p in pieces)
    assert tiles(pieces, start, end)
    # inner edges sit on the window grid (aligned to the window itself by default)
    assert all(p.start_ns % (window_min * 60 * NS) == 0 for p in pieces[1:])
    got = [t for p in pieces for t in ts_of(p.table)]
    assert got == [t for t in market if start <= t < end]
    assert done[-1][0] == done[-1][1] == end - start


def test_forward_a_full_page_is_a_failed_window_not_a_truncated_one() -> None:
    market = [T0 + i * NS for i in range(0, 3600, 2)]  # 1800 rows in the first hour

    async def fetch(w0: int, w1: int) -> pa.Table:
        return rows([t for t in market if w0 <= t < w1][:1000])  # the exchange caps at 1000

    pieces = asyncio.run(collect(paginate_forward(fetch, T0, T0 + 3 * 3600 * NS, 3600, 1000)))
    assert isinstance(pieces[0], FailedRange) and "came back full" in pieces[0].error
    assert (pieces[0].start_ns, pieces[0].end_ns) == (T0, T0 + 3600 * NS)
    assert all(isinstance(p, Chunk) and p.table.num_rows == 0 for p in pieces[1:])


def test_forward_align_s_snaps_the_inner_edges() -> None:
    seen: list[tuple[int, int]] = []

    async def fetch(w0: int, w1: int) -> pa.Table:
        seen.append((w0, w1))
        return rows([])

    # Hour windows aligned to half hours: from 00:47 the edges are 01:30, 02:30 (hour
    # windows aligned to the hour would cut at 01:00, 02:00).
    start = T0 + 47 * MINUTE_NS
    asyncio.run(collect(paginate_forward(fetch, start, T0 + 3 * 3600 * NS, 3600, 1000,
                                         align_s=1800, concurrency=1)))
    assert seen == [(start, T0 + 90 * MINUTE_NS), (T0 + 90 * MINUTE_NS, T0 + 150 * MINUTE_NS),
                    (T0 + 150 * MINUTE_NS, T0 + 180 * MINUTE_NS)]


@settings(max_examples=60, deadline=None)
@given(market=st.lists(st.integers(0, SPAN - 1), max_size=300),
       lo=st.integers(0, SPAN // 2), hi=st.integers(SPAN // 2 + 1, SPAN),
       cap=st.sampled_from([5, 17, 100]))
def test_backward_pages_yield_every_row_once_oldest_first(market: list[int], lo: int, hi: int,
                                                          cap: int) -> None:
    # Instants may repeat (several trades in one instant), but never more than a page holds.
    ts_all = sorted(T0 + x for x in market)
    ts_all = [t for t in ts_all if ts_all.count(t) < cap]
    start, end = T0 + lo, T0 + hi
    asked: list[int] = []

    async def fetch(s: int, before: int) -> pa.Table:
        asked.append(before)
        newest = [t for t in ts_all if s <= t < before][-cap:]
        return rows(list(reversed(newest)))  # newest first, as such exchanges send them

    pieces = asyncio.run(collect(paginate_backward(fetch, start, end, cap)))
    assert all(isinstance(p, Chunk) for p in pieces)
    assert tiles(pieces, start, end)
    got = [t for p in pieces for t in ts_of(p.table)]
    assert got == [t for t in ts_all if start <= t < end]
    assert asked == sorted(asked, reverse=True)  # the end bound only moves into the past


def test_backward_refuses_an_instant_that_fills_a_whole_page() -> None:
    """More trades in one instant than a page holds cannot be paged by time: say so."""
    market = [T0 + NS] * 10

    async def fetch(s: int, before: int) -> pa.Table:
        return rows([t for t in market if s <= t < before][-5:])

    with pytest.raises(FetchError, match="of one instant"):
        asyncio.run(collect(paginate_backward(fetch, T0, T0 + 60 * NS, 5)))
