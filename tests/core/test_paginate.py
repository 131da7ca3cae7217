"""The paginators against fake page fetchers: window snapping, drained cursors, order."""

from __future__ import annotations

import asyncio
import bisect
import random
import uuid
from typing import Any

import pyarrow as pa
import pytest

from dccd_cli.errors import BannedError, ServerError
from dccd_cli.pieces import Chunk, FailedRange
from dccd_cli.schema import ohlc_table, trades_table
from dccd_cli.sources.rest.ohlc import clip_sorted, ohlc_windows, paginate_ohlc
from dccd_cli.sources.rest.trades import MIN_TRADE_WINDOW_NS, TradeWindows, paginate_trades
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS, Span

T0 = 1_704_067_200 * 10**9  # 2024-01-01


def bars(ts: list[int]) -> pa.Table:
    n = len(ts)
    return ohlc_table(ts, [1.0] * n, [2.0] * n, [0.5] * n, [1.5] * n, [10.0] * n)


async def collect(it: Any) -> list[Any]:
    return [p async for p in it]


def test_ohlc_windows_snap_to_bars_not_to_windows() -> None:
    span = Span.parse("1h")
    start = T0 + 30 * MINUTE_NS  # mid-bar: the first whole bar opens at 01:00
    wins = ohlc_windows(span, start, T0 + 10 * HOUR_NS, 4)
    assert wins[0] == (T0 + HOUR_NS, T0 + 5 * HOUR_NS)
    assert wins[-1][1] == T0 + 10 * HOUR_NS
    assert all(b[0] == a[1] for a, b in zip(wins, wins[1:]))
    assert all(w[0] % HOUR_NS == 0 for w in wins)


async def test_ohlc_in_order_under_concurrency_with_random_latency() -> None:
    span = Span.parse("1m")
    calls: list[tuple[int, int, int]] = []

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        calls.append((w0, w1, limit))
        await asyncio.sleep(random.random() / 200)
        ts = list(range(w0, w1, MINUTE_NS))[:limit]
        return bars(list(reversed(ts)))  # newest first: the paginator sorts

    pieces = await collect(paginate_ohlc(fetch, 100, T0, T0 + 1000 * MINUTE_NS, span, concurrency=8))
    assert all(isinstance(p, Chunk) for p in pieces)
    assert [p.start_ns for p in pieces] == sorted(p.start_ns for p in pieces)
    ts = [t for p in pieces for t in p.table.column("ts").cast(pa.int64()).to_pylist()]
    assert ts == list(range(T0, T0 + 1000 * MINUTE_NS, MINUTE_NS))
    assert all(limit <= 100 for _, _, limit in calls)


async def test_ohlc_refetches_the_rest_of_a_window_cut_by_a_smaller_real_cap() -> None:
    span = Span.parse("1m")

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        return bars(list(range(w0, w1, MINUTE_NS))[:30])  # the exchange really caps at 30

    pieces = await collect(paginate_ohlc(fetch, 100, T0, T0 + 100 * MINUTE_NS, span))
    assert sum(p.table.num_rows for p in pieces) == 100


async def test_ohlc_failed_window_is_reported_and_the_rest_continues() -> None:
    span = Span.parse("1m")

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        if w0 == T0 + 100 * MINUTE_NS:
            raise ServerError("boom", status=503)
        return bars(list(range(w0, w1, MINUTE_NS)))

    pieces = await collect(paginate_ohlc(fetch, 100, T0, T0 + 300 * MINUTE_NS, span))
    assert [type(p) for p in pieces] == [Chunk, FailedRange, Chunk]
    assert (pieces[1].start_ns, pieces[1].end_ns) == (T0 + 100 * MINUTE_NS, T0 + 200 * MINUTE_NS)


async def test_ohlc_ban_fails_the_rest_and_stops() -> None:
    span = Span.parse("1m")

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        if w0 >= T0 + 100 * MINUTE_NS:
            raise BannedError("banned", status=418, retry_after=120)
        return bars(list(range(w0, w1, MINUTE_NS)))

    got: list[Any] = []
    with pytest.raises(BannedError):
        async for p in paginate_ohlc(fetch, 100, T0, T0 + 500 * MINUTE_NS, span, concurrency=2):
            got.append(p)
    assert isinstance(got[-1], FailedRange) and got[-1].end_ns == T0 + 500 * MINUTE_NS


def trade_source(n_days: int = 1, per_ms: int = 1) -> list[tuple[int, str]]:
    """Trades every 997 ms; every 50th instant holds a burst of 40 trades in one ms."""
    out = []
    i = 0
    t = T0
    while t < T0 + n_days * DAY_NS:
        k = 40 if (t // 10**6) % 50 == 0 else per_ms
        for _ in range(k):
            out.append((t, f"{i}"))
            i += 1
        t += 997 * 10**6
    return out


def make_timestamp_pager(source: list[tuple[int, str]]) -> Any:
    """An exchange that pages by timestamp (resume AT the last ts), like Bitfinex."""

    times = [r[0] for r in source]

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        since = w0 if cursor is None else cursor
        lo, hi = bisect.bisect_left(times, since), bisect.bisect_left(times, w1)
        rows = source[lo:min(hi, lo + limit)]
        await asyncio.sleep(0)
        t = trades_table([r[0] for r in rows], [r[1] for r in rows], [1.0] * len(rows), [1.0] * len(rows), None)
        nxt = None if len(rows) < limit else rows[-1][0]
        return t, nxt

    return fetch


async def test_trades_drained_completely_with_many_trades_in_one_ms() -> None:
    source = trade_source(1)
    fetch = make_timestamp_pager(source)
    pieces = await collect(paginate_trades(fetch, 100, T0, T0 + DAY_NS, concurrency=6))
    ids = [i for p in pieces for i in p.table.column("id").to_pylist()]
    assert sorted(ids, key=int) == [r[1] for r in source]
    assert len(ids) == len(set(ids))
    # every chunk holds only rows inside its proven range, and ranges tile the day
    for p in pieces:
        ts = p.table.column("ts").cast(pa.int64()).to_pylist()
        assert all(p.start_ns <= t < p.end_ns for t in ts)
    assert pieces[0].start_ns == T0 and pieces[-1].end_ns == T0 + DAY_NS
    assert all(a.end_ns == b.start_ns for a, b in zip(pieces, pieces[1:]))


async def test_trades_failed_window_reported_others_kept() -> None:
    source = trade_source(1)
    inner = make_timestamp_pager(source)
    bad = T0 + 5 * HOUR_NS

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        if w0 <= bad < w1 and cursor is not None:  # the window holding 05:00 fails
            raise ServerError("down", status=502)
        return await inner(w0, w1, limit, cursor)

    pieces = await collect(paginate_trades(fetch, 100, T0, T0 + DAY_NS, concurrency=4))
    failed = [p for p in pieces if isinstance(p, FailedRange)]
    assert len(failed) == 1 and bad <= failed[0].start_ns < failed[0].end_ns
    got = {i for p in pieces if isinstance(p, Chunk) for i in p.table.column("id").to_pylist()}
    lost = {r[1] for r in source if failed[0].start_ns <= r[0] < failed[0].end_ns}
    assert got == {r[1] for r in source} - lost


def _tile(windows: TradeWindows, pages_per_hour: float) -> list[tuple[int, int]]:
    """Hand out every window, reporting each finished with the pages it would take."""
    out = []
    while (w := windows.next()) is not None:
        out.append(w)
        windows.finished(max(1, round((w[1] - w[0]) / HOUR_NS * pages_per_hour)), *w)
    return out


def test_trade_windows_tile_the_range_on_the_grid() -> None:
    start, end = T0 + 7 * MINUTE_NS, T0 + 3 * DAY_NS + 5 * MINUTE_NS
    got = _tile(TradeWindows(start, end, 8, 16), pages_per_hour=40)
    assert got[0][0] == start and got[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(got, got[1:]))  # no gap, no overlap
    assert all(w1 % MIN_TRADE_WINDOW_NS == 0 for _, w1 in got[:-1])


def test_trade_windows_shrink_for_a_busy_pair_and_grow_for_an_illiquid_one() -> None:
    # A busy pair (40 pages an hour): windows come down to what a cursor may buffer ahead,
    # so no cursor stalls behind a long one.
    busy = _tile(TradeWindows(T0, T0 + 30 * DAY_NS, 8, 16), pages_per_hour=40)
    assert busy[0][1] - busy[0][0] == HOUR_NS
    assert all((w1 - w0) / HOUR_NS * 40 <= 16 for w0, w1 in busy[2:-1])
    # An illiquid pair (a page a day): windows grow to a day, a request each.
    quiet = _tile(TradeWindows(T0, T0 + 365 * DAY_NS, 8, 16), pages_per_hour=1 / 24)
    assert len(quiet) < 365 + 12
    assert max(w1 - w0 for w0, w1 in quiet) == DAY_NS
    # A one-day range still has about four windows per cursor.
    assert len(_tile(TradeWindows(T0, T0 + DAY_NS, 8, 16), pages_per_hour=4)) >= 24


def make_backward_pager(source: list[tuple[int, str]]) -> Any:
    """An exchange whose cursor walks into the past, newest first, resuming AT the oldest
    instant it returned (its rows of that instant come again)."""
    times = [r[0] for r in source]

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        until = w1 if cursor is None else cursor  # newest-first: rows with ts <= until
        hi = bisect.bisect_right(times, until - 1 if cursor is None else until)
        lo = max(bisect.bisect_left(times, w0), hi - limit)
        rows = list(reversed(source[lo:hi]))
        t = trades_table([r[0] for r in rows], [r[1] for r in rows], [1.0] * len(rows), [1.0] * len(rows), None)
        return t, (None if hi - lo < limit else rows[-1][0])

    return fetch


async def test_backward_trades_drain_each_window_to_its_start() -> None:
    source = trade_source(1)
    fetch = make_backward_pager(source)
    pieces = await collect(paginate_trades(fetch, 100, T0, T0 + DAY_NS, concurrency=4, direction="backward"))
    ids = [i for p in pieces for i in p.table.column("id").to_pylist()]
    assert len(ids) == len(set(ids))
    assert sorted(ids, key=int) == [r[1] for r in source]
    assert [p.start_ns for p in pieces] == sorted(p.start_ns for p in pieces)


async def test_a_backward_cursor_reports_progress_page_by_page_not_only_when_done() -> None:
    """OKX and Coinbase trades: a window is handed on only once its cursor has walked back
    to its start, but the bar moves as it walks."""
    source = trade_source(1)
    reported: list[int] = []
    pieces = await collect(paginate_trades(make_backward_pager(source), 100, T0, T0 + DAY_NS,
                                           concurrency=1, direction="backward",
                                           emit_progress=lambda done, total: reported.append(done)))
    assert len(pieces) >= 2
    first_window = pieces[0].end_ns - pieces[0].start_ns
    assert 0 < reported[0] < first_window // 10  # after the first of its ~40 pages
    assert reported == sorted(reported) and reported[-1] == DAY_NS
    assert len(reported) > 10 * len(pieces)


def make_id_pager(source: list[tuple[int, str]]) -> Any:
    """An exchange that pages by trade id from the next id on (Binance's ``fromId``): a page
    may begin inside the instant the previous one ended in, repeating nothing."""
    times = [r[0] for r in source]

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        lo = bisect.bisect_left(times, w0) if cursor is None else cursor
        rows = source[lo:min(bisect.bisect_left(times, w1), lo + limit)]
        await asyncio.sleep(0)
        t = trades_table([r[0] for r in rows], [r[1] for r in rows], [1.0] * len(rows), [1.0] * len(rows), None)
        return t, (None if len(rows) < limit else lo + len(rows))

    return fetch


async def test_trades_paged_by_id_keep_every_trade_of_a_split_instant_once() -> None:
    source = [(t, f"{i:07d}") for i, (t, _) in enumerate(trade_source(1))]
    pieces = await collect(paginate_trades(make_id_pager(source), 30, T0, T0 + DAY_NS, concurrency=5))
    rows = [(t, i) for p in pieces
            for t, i in zip(p.table.column("ts").cast(pa.int64()).to_pylist(), p.table.column("id").to_pylist())]
    assert rows == source  # in (ts, id) order, each trade once, the bursts of 40 split over pages
    assert all(a.end_ns == b.start_ns for a, b in zip(pieces, pieces[1:]))


def test_clip_sorted_drops_rows_outside_the_window_and_sorts_by_ts_then_id() -> None:
    ts = [T0 + 5, T0 + 1, T0 + 9, T0 + 1, T0 - 1, T0 + 10]
    page = trades_table(ts, ["e", "b", "f", "a", "z", "y"], [1.0] * 6, [1.0] * 6, None)
    got = clip_sorted(page, T0, T0 + 10, ["ts", "id"])
    assert got.column("id").to_pylist() == ["a", "b", "e", "f"]
    inside = clip_sorted(got, T0, T0 + 10, ["ts", "id"])
    assert inside is got  # already clipped and sorted: handed on as it is


async def test_ohlc_a_bar_repeated_in_a_page_is_kept_once_the_last_version() -> None:
    span = Span.parse("1m")

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        ts = [T0, T0 + MINUTE_NS, T0 + MINUTE_NS, T0 + 2 * MINUTE_NS]
        return ohlc_table(ts, [1.0] * 4, [2.0] * 4, [0.5] * 4, [1.0, 1.0, 9.0, 1.0], [1.0] * 4)

    pieces = await collect(paginate_ohlc(fetch, 100, T0, T0 + 3 * MINUTE_NS, span))
    table = pieces[0].table
    assert table.column("ts").cast(pa.int64()).to_pylist() == [T0 + k * MINUTE_NS for k in range(3)]
    assert table.column("close").to_pylist() == [1.0, 9.0, 1.0]


# -- trades that share an instant keep the exchange's execution order --------------------

def _ids_in_execution_order(kind: str, n: int) -> list[str]:
    """Ids for ``n`` trades in execution order whose text order is not it: integers that
    gain a digit inside a burst, or UUIDs (BitMEX's) in no order at all."""
    if kind == "integer":
        return [str(999_980 + i) for i in range(n)]  # 999999 -> 1000000 in the first burst
    return [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in range(n)]


# A newest-first (backward) venue is only ever one with integer ids, like Coinbase: others
# must list an instant's trades oldest first (dccd_cli.tradeorder).
@pytest.mark.parametrize("pager,kind", [("timestamp", "integer"), ("timestamp", "uuid"),
                                        ("id", "integer"), ("id", "uuid"), ("backward", "integer")])
async def test_trades_of_one_instant_stay_in_execution_order(pager: str, kind: str) -> None:
    source = trade_source(1)
    source = [(t, i) for (t, _), i in zip(source, _ids_in_execution_order(kind, len(source)))]
    burst = [i for t, i in source if t == source[0][0]]
    assert len(burst) == 40 and burst != sorted(burst)  # a text sort would reorder it
    # Pagers by time resume at an instant, so a page must hold a whole burst; pages by id
    # split bursts.
    cap = 30 if pager == "id" else 100
    if pager == "timestamp":
        fetch = make_timestamp_pager(source)
    elif pager == "id":
        fetch = make_id_pager(source)
    else:
        fetch = make_backward_pager(source)
    pieces = await collect(paginate_trades(fetch, cap, T0, T0 + 2 * HOUR_NS, concurrency=4,
                                           direction="backward" if pager == "backward" else "forward"))
    rows = [(t, i) for p in pieces
            for t, i in zip(p.table.column("ts").cast(pa.int64()).to_pylist(), p.table.column("id").to_pylist())]
    assert rows == [r for r in source if r[0] < T0 + 2 * HOUR_NS]
