"""The page guard and the dense-id proof (dccd_cli.sources.rest.checks), against a fake exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pyarrow as pa
import pytest

from dccd_cli.errors import NetworkError, ProtocolError
from dccd_cli.pieces import Chunk, FailedRange, Piece
from dccd_cli.schema import trades_table
from dccd_cli.sources.rest.checks import _sorted_unique, guarded, verify_dense_ids

MS = 1_000_000
# Trade i happens at i ms (two per ms from id 100 on, to have instants shared by trades).
TRADES = [(i, i * MS if i < 100 else (100 + (i - 100) // 2) * MS) for i in range(400)]


def table(ids: list[int]) -> pa.Table:
    rows = [TRADES[i] for i in ids]
    return trades_table([t for _, t in rows], [str(i) for i, _ in rows], [1.0] * len(rows),
                        [1.0] * len(rows), ["buy"] * len(rows))


def ids_of(pieces: list[Piece]) -> list[int]:
    return [int(i) for p in pieces if isinstance(p, Chunk) for i in p.table.column("id").to_pylist()]


class Exchange:
    """Answers ``fetch_from(id)`` with up to ``cap`` trades; ``lies`` lists the first ids it
    answers with an empty page."""

    def __init__(self, cap: int = 50, lies: frozenset[int] = frozenset()) -> None:
        self.cap, self.lies = cap, lies
        self.asked: list[int] = []

    async def fetch_from(self, first: int) -> pa.Table:
        self.asked.append(first)
        if first in self.lies:
            return table([])
        return table(list(range(first, min(first + self.cap, len(TRADES)))))


async def pieces(*items: Piece) -> AsyncIterator[Piece]:
    for item in items:
        yield item


def chunk(start: int, end: int, ids: list[int]) -> Chunk:
    return Chunk(start * MS, end * MS, table(ids))


async def verify(ex: Exchange, *items: Piece) -> list[Piece]:
    return [p async for p in verify_dense_ids(pieces(*items), ex.fetch_from, ex.cap, exchange="x")]


async def test_complete_pages_pass_unchanged_for_two_requests() -> None:
    ex = Exchange()
    out = await verify(ex, chunk(10, 30, list(range(10, 30))), chunk(30, 60, list(range(30, 60))))
    assert ids_of(out) == list(range(10, 60))
    assert [(p.start_ns, p.end_ns) for p in out] == [(10 * MS, 30 * MS), (30 * MS, 60 * MS)]
    assert len(ex.asked) == 2  # the head (ids before 10) and the tail (after 59)


async def test_an_empty_page_inside_data_is_fetched_by_id() -> None:
    # The window 30..60 came back empty (a lie): the ids jump from 29 to 60.
    ex = Exchange()
    out = await verify(ex, chunk(10, 30, list(range(10, 30))), chunk(30, 60, []),
                       chunk(60, 90, list(range(60, 90))))
    assert ids_of(out) == list(range(10, 90))
    assert all(isinstance(p, Chunk) for p in out)


async def test_a_missing_head_and_tail_are_fetched() -> None:
    ex = Exchange()
    out = await verify(ex, chunk(0, 40, list(range(20, 30))), chunk(40, 50, []))
    assert ids_of(out) == list(range(0, 50))


async def test_at_the_live_edge_nothing_follows_the_last_trade() -> None:
    # The range ends at the exchange's now: the look past its last trade finds nothing.
    ex = Exchange()
    last = len(TRADES) - 1
    out = await verify(ex, Chunk(TRADES[last - 9][1], TRADES[last][1] + MS,
                                 table(list(range(last - 9, last + 1)))))
    assert ids_of(out) == list(range(last - 9, last + 1))
    assert ex.asked[-1] == last + 1


async def test_a_stretch_that_never_comes_is_named_exactly() -> None:
    ex = Exchange(lies=frozenset({30}))  # ids 30.. never come back
    out = await verify(ex, chunk(10, 30, list(range(10, 30))), chunk(30, 60, []),
                       chunk(60, 90, list(range(60, 90))))
    failed = [p for p in out if isinstance(p, FailedRange)]
    assert [(f.start_ns, f.end_ns) for f in failed] == [(29 * MS, 60 * MS + 1000)]
    assert "30..59" in failed[0].error
    # Every other trade is kept, and the pieces still tile the range in order.
    assert ids_of(out) == list(range(10, 29)) + list(range(61, 90))
    edges = [(p.start_ns, p.end_ns) for p in out]
    assert edges[0][0] == 10 * MS and edges[-1][1] == 90 * MS
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))


async def test_a_failed_range_is_widened_to_the_nearest_proven_trades() -> None:
    ex = Exchange()
    out = await verify(ex, chunk(10, 30, list(range(10, 25))), FailedRange(30 * MS, 40 * MS, "boom"),
                       chunk(40, 60, list(range(45, 60))))
    failed = [(p.start_ns, p.end_ns) for p in out if isinstance(p, FailedRange)]
    assert failed == [(24 * MS, 30 * MS), (30 * MS, 40 * MS), (40 * MS, 45 * MS + 1000)]
    assert 30 not in ex.asked and 44 not in ex.asked  # nothing asked of a failing exchange


async def test_shared_instants_keep_every_trade() -> None:
    ex = Exchange()
    out = await verify(ex, chunk(100, 120, list(range(100, 140))), chunk(120, 150, list(range(140, 200))))
    assert ids_of(out) == list(range(100, 200))


async def test_guard_asks_an_empty_page_twice_and_an_unreadable_one_again() -> None:
    answers: list[object] = [table([]), table([1]), KeyError("rows"), table([2])]

    async def call() -> pa.Table:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, pa.Table)
        return answer

    async def no_sleep(_: float) -> None:
        pass

    first = await guarded(call, exchange="x", what="trades", sleep=no_sleep)
    assert first.num_rows == 1  # the empty page was asked again
    second = await guarded(call, exchange="x", what="trades", sleep=no_sleep)
    assert second.num_rows == 1  # the unreadable page (KeyError) was asked again
    with pytest.raises(ProtocolError, match="cannot be read"):
        await guarded(lambda: _raise(ValueError("bad row")), exchange="x", what="trades",
                      sleep=no_sleep, retries=1)
    with pytest.raises(NetworkError):  # already retried by the HTTP client: passed through
        await guarded(lambda: _raise(NetworkError("down")), exchange="x", what="trades",
                      sleep=no_sleep)


async def _raise(exc: Exception) -> pa.Table:
    raise exc


def test_trades_fetched_by_id_are_put_in_order_by_number_within_an_instant() -> None:
    # A page fetched by id is sorted and de-duplicated before it is placed: ids that gain
    # a digit inside one instant stay in execution order (a text sort puts 1000000 first).
    page = trades_table([5 * MS] * 4, ["1000000", "999999", "1000000", "999998"], [1.0] * 4,
                        [1.0] * 4, ["buy"] * 4)
    assert _sorted_unique(page).column("id").to_pylist() == ["999998", "999999", "1000000"]
