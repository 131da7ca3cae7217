"""The trades paginator: every trade of a range, drained by the exchange's cursor.

The range is split into sub-windows (``TradeWindows``, sized by what the finished ones
cost) drained concurrently, each by its own cursor, and stitched in order without a gap or
a duplicate: within a window each page is proven up to its newest instant, and trades at
that instant are carried to the next page, where those already seen are dropped by id.
The paginators of OHLC and the page helpers are in ``dccd_cli.sources.rest.ohlc``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import BannedError, FetchError
from dccd_cli.pieces import Chunk, FailedRange, Piece
from dccd_cli.schema import single_chunk
from dccd_cli.sources.rest.ohlc import (
    DEFAULT_CONCURRENCY,
    Progress,
    TradesFetch,
    clip_sorted_with_ts,
    filter_rows,
    report_progress,
)
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS
from dccd_cli.tradeorder import in_trade_order, integer_ids, sort_trades, trade_order

log = logging.getLogger("dccd.paginate")


def _after(
    table: pa.Table, ts: npt.NDArray[np.int64], carry: pa.Table, at: int
) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """``carry`` (trades of the instant ``at``) followed by the rows of a new sorted page
    not already in it, with their ``ts``.

    A page that resumes *at* the carried instant repeats some of its trades: they are
    recognised by id. Rows older than that instant were already handed on. Both are at the
    start of a sorted page, so the rest is a zero-copy slice.
    """
    lo, hi = int(np.searchsorted(ts, at, "left")), int(np.searchsorted(ts, at, "right"))
    rest, rest_ts = table.slice(lo), ts[lo:]
    if lo < hi:
        same = table.slice(lo, hi - lo)
        old = pc.is_in(same.column("id"), value_set=single_chunk(carry.column("id")))
        fresh = ~np.asarray(old.to_numpy(zero_copy_only=False), dtype=bool)
        if not fresh.all():  # the page repeats carried trades: drop them
            rest = pa.concat_tables([filter_rows(same, fresh), table.slice(hi)])
            rest_ts = np.concatenate([ts[lo:hi][fresh], ts[hi:]])
    if rest.num_rows == 0:
        return carry, np.full(carry.num_rows, at, np.int64)
    return (pa.concat_tables([carry, rest]),
            np.concatenate([np.full(carry.num_rows, at, np.int64), rest_ts]))


def _clip(
    raw: pa.Table, start_ns: int, end_ns: int
) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """A page's rows inside ``[start_ns, end_ns)`` in trade order (``dccd_cli.tradeorder``:
    within an instant, by id as a number, else as the exchange listed them), with their ts."""
    table, ts = clip_sorted_with_ts(raw, start_ns, end_ns, ["ts"])  # a stable sort
    nums = integer_ids(table.column("id"))
    if in_trade_order(ts, nums):
        return table, ts
    order = trade_order(ts, nums)
    return table.take(pa.array(order)), ts[order]


def _unique_ids(pages: list[pa.Table]) -> pa.Table:
    """A window's trades from its pages (walked from the newest), in trade order and
    without repeated ids (backward pages resume *at* an instant)."""
    table = pa.concat_tables(pages[::-1])  # oldest first: the exchange's order across seams
    if table.num_rows < 2:
        return table
    table = sort_trades(table)
    ids = table.column("id").combine_chunks()
    if len(pc.unique(ids)) == len(ids):
        return table
    # Keep the first row of each id (repeats are rare: only at page seams).
    codes = ids.dictionary_encode().indices.to_numpy(zero_copy_only=False)
    first = np.unique(codes, return_index=True)[1]
    return table.take(pa.array(np.sort(first)))


class _Work:
    """How much of a range its windows have covered, for progress: each window reports the
    part of it its cursor has walked (forward from its start, or backward from its end), so
    the sum moves page by page whatever order the concurrent windows finish in."""

    def __init__(self, emit: Progress | None, total: int) -> None:
        self.emit = emit
        self.total = total
        self._covered: dict[int, int] = {}  # window start -> ns of it walked
        self.done = 0

    def covered(self, w0: int, ns: int) -> None:
        before = self._covered.get(w0, 0)
        if ns > before:
            self._covered[w0] = ns
            self.done += ns - before
            report_progress(self.emit, self.done, self.total)


# Pages a window ahead of the one being written may hold before its cursor waits (~50 KB a
# page: ~20 MB ahead of the writer at 8 cursors); also the pages a window is sized for.
BUFFER_PAGES = 48
# Sub-windows of a trades range are cut on this grid, and never shorter.
MIN_TRADE_WINDOW_NS = 15 * MINUTE_NS


class TradeWindows:
    """The sub-windows of a trades range, handed out one at a time and sized by what the
    finished ones cost.

    Windows are stitched in order, and a window ahead of the one being written may buffer
    only ``target_pages`` pages before its cursor waits: a window of many more pages than
    that leaves the other cursors idle behind it, and the download runs at one round trip
    a page instead of at the rate limit. So a window that took more pages than the target
    makes the next ones proportionally shorter (down to ``MIN_TRADE_WINDOW_NS``), and one
    that took a quarter of it or less makes them twice as long (up to a day, and while the
    rest of the range keeps four windows per cursor): a busy pair gets windows of a few
    minutes' trades, an illiquid one a request a day. The first windows are an hour, so a
    long range of a busy pair starts right.
    """

    def __init__(self, start_ns: int, end_ns: int, concurrency: int, target_pages: int) -> None:
        self.end_ns = end_ns
        self.target_pages = max(1, target_pages)
        # Growth stops where the rest of the range would have under four windows a cursor.
        self._per_range = max(1, concurrency * 4)
        self.size = HOUR_NS  # on the hour grid, until the first windows tell their cost
        self._next = start_ns

    def next(self) -> tuple[int, int] | None:
        """The next window ``[w0, w1)``, or None once the range is handed out."""
        w0 = self._next
        if w0 >= self.end_ns:
            return None
        grid = MIN_TRADE_WINDOW_NS
        # Ends on the grid, never longer than the size (but past w0 when w0 is off it).
        w1 = min(self.end_ns, max((w0 + self.size) // grid * grid, (w0 // grid + 1) * grid))
        self._next = w1
        return w0, w1

    def finished(self, pages: int, w0: int, w1: int) -> None:
        """A window ``[w0, w1)`` was drained in ``pages`` pages: size the next ones."""
        length = w1 - w0
        if pages > self.target_pages:
            wanted = length * self.target_pages // pages
            self.size = max(MIN_TRADE_WINDOW_NS, min(self.size, wanted))
        elif (pages * 4 <= self.target_pages and length >= self.size
              and (self.end_ns - self._next) // (2 * self.size) >= self._per_range):
            # (never so long that the rest of the range has too few windows to share)
            self.size = min(DAY_NS, self.size * 2)


async def paginate_trades(
    fetch_page: TradesFetch,
    cap: int,
    start_ns: int,
    end_ns: int,
    *,
    emit_progress: Progress | None = None,
    max_pages: int = 1_000_000,
    concurrency: int = DEFAULT_CONCURRENCY,
    buffer_pages: int = BUFFER_PAGES,
    direction: str = "forward",
) -> AsyncIterator[Piece]:
    """Every trade in ``[start_ns, end_ns)``, drained by the adapter's cursor.

    ``direction="backward"`` is for exchanges whose cursor only walks into the past
    (newest-first pages): a window is then proven only once its cursor has reached the
    window's start, so it is handed on as one chunk, deduplicated by id.

    The range is split into sub-windows drained concurrently, each by its own cursor, and
    stitched in order. Within a window each page yields a chunk proven up to (not including)
    its newest instant: trades sharing that instant may continue on the next page, where
    trades already seen are dropped by id — adapters that page by timestamp resume *at* the
    timestamp, never after it. Memory is bounded: a window ahead of the one being written
    buffers at most ``buffer_pages`` pages before its cursor waits.
    """
    windows = TradeWindows(start_ns, end_ns, concurrency, buffer_pages)
    work = _Work(emit_progress, max(1, end_ns - start_ns))

    async def drain_backward(queue: asyncio.Queue[Piece | None], w0: int, w1: int) -> None:
        cursor: Any = None
        pages: list[pa.Table] = []
        try:
            for _ in range(max_pages):
                raw, cursor = await fetch_page(w0, w1, cap, cursor)
                page, ts = _clip(raw, w0, w1)
                pages.append(page)
                if cursor is None:
                    windows.finished(len(pages), w0, w1)
                    await queue.put(Chunk(w0, w1, _unique_ids(pages)))
                    work.covered(w0, w1 - w0)
                    return
                if len(ts):  # walked back from the window's end to its oldest trade so far
                    work.covered(w0, w1 - int(ts[0]))
            raise FetchError(f"gave up after {max_pages} pages in window {w0}..{w1}")
        except BannedError as exc:
            await queue.put(FailedRange(w0, w1, str(exc)))
            raise
        except FetchError as exc:
            log.warning("trades window %s..%s failed: %s", w0, w1, exc)
            await queue.put(FailedRange(w0, w1, str(exc)))
            work.covered(w0, w1 - w0)  # settled, as failed
        finally:
            await queue.put(None)

    async def drain(queue: asyncio.Queue[Piece | None], w0: int, w1: int) -> None:
        cursor: Any = None
        lo = w0  # everything before lo is proven and handed on
        # Trades at the newest instant seen so far: they may continue on the next page, so
        # they are held back until the cursor has moved past that instant.
        carry: pa.Table | None = None
        carry_at = lo  # their instant
        try:
            for page in range(1, max_pages + 1):
                raw, cursor = await fetch_page(w0, w1, cap, cursor)
                table, ts = _clip(raw, w0, w1)
                if carry is not None:
                    table, ts = _after(table, ts, carry, carry_at)
                    carry = None
                if cursor is None:
                    windows.finished(page, w0, w1)
                    await queue.put(Chunk(lo, w1, table))
                    work.covered(w0, w1 - w0)
                    return
                if table.num_rows == 0:
                    continue
                newest = int(ts[-1])
                cut = int(np.searchsorted(ts, newest, "left"))  # sorted: the newest instant is a suffix
                carry, carry_at = table.slice(cut), newest
                if newest > lo:
                    await queue.put(Chunk(lo, newest, table.slice(0, cut)))
                    lo = newest
                    work.covered(w0, lo - w0)
            raise FetchError(f"gave up after {max_pages} pages in window {w0}..{w1}")
        except BannedError as exc:
            await queue.put(FailedRange(lo, w1, str(exc)))
            raise
        except FetchError as exc:
            log.warning("trades window %s..%s failed at %s: %s", w0, w1, lo, exc)
            await queue.put(FailedRange(lo, w1, str(exc)))
            work.covered(w0, w1 - w0)  # settled, as failed
        finally:
            await queue.put(None)

    # The windows being drained, oldest first: their bounds, the queue their pieces come
    # through (bounded: a cursor ahead of the writer waits), and the cursor's task.
    running: deque[tuple[int, asyncio.Queue[Piece | None], asyncio.Task[None]]] = deque()
    drain_one = drain_backward if direction == "backward" else drain

    def start_more() -> None:
        while len(running) < concurrency:
            window = windows.next()
            if window is None:
                return
            queue: asyncio.Queue[Piece | None] = asyncio.Queue(maxsize=buffer_pages)
            running.append((window[1], queue, asyncio.ensure_future(drain_one(queue, *window))))

    try:
        start_more()
        while running:
            w1, queue, task = running[0]
            while True:
                piece = await queue.get()
                if piece is None:
                    break
                if piece.end_ns > piece.start_ns:
                    yield piece
            running.popleft()
            try:
                await task
            except BannedError as exc:
                if w1 < end_ns:
                    yield FailedRange(w1, end_ns, str(exc))
                raise
            start_more()
    finally:
        for _, _, task in running:
            task.cancel()
        for _, _, task in running:
            try:
                await task
            except BaseException:  # noqa: BLE001 — cancelled or failed; nobody awaits it now
                pass
