"""Generic paginators: turn an adapter's page fetchers into an ordered stream of coverage.

Every paginator yields ``Chunk`` / ``FailedRange`` pieces (see ``dccd_cli.pieces``) in time
order for one series. Independent windows are fetched concurrently — the exchange's rate
limit (enforced by the shared token bucket in the HTTP client), not the round trip, bounds
the speed — while pieces still reach the writer in order.

Contract (the adapter's fetchers are bound into closures by the job):

* ``paginate_ohlc(fetch_page, cap, start_ns, end_ns, span)`` pages fixed windows of
  ``span × cap`` bars, snapped to the bar grid; ``fetch_page(w_start, w_end, limit)``.
* ``paginate_trades(fetch_page, cap, start_ns, end_ns)`` (in ``dccd_cli.sources.rest.trades``) splits
  the range into sub-windows and drains each by the adapter's opaque cursor until the
  adapter says it is exhausted; ``fetch_page(w_start, w_end, limit, cursor) -> (table,
  next_cursor)``.
* ``paginate_forward`` / ``paginate_backward`` are the two primitive shapes for adapters
  whose pages are addressed by time windows or by an end bound moving into the past.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from dccd_cli.errors import BannedError, FetchError
from dccd_cli.pieces import Chunk, FailedRange, Piece
from dccd_cli.schema import is_sorted, ts_ns_column
from dccd_cli.timeutil import NS, Span

log = logging.getLogger("dccd.paginate")

Progress = Callable[[int, int], None]
"""``emit_progress(done, total)``: nanoseconds of the range settled (fetched or failed) so
far, of the total — the work done, which windows fetched at once finish in any order."""

OhlcFetch = Callable[[int, int, int], Awaitable[pa.Table]]
TradesFetch = Callable[[int, int, int, Any], Awaitable[tuple[pa.Table, Any]]]

DEFAULT_CONCURRENCY = 8


def _ts(table: pa.Table) -> pa.Array:
    return ts_ns_column(table)


def _np_ts(table: pa.Table) -> npt.NDArray[np.int64]:
    return np.asarray(ts_ns_column(table).to_numpy(), dtype=np.int64)


# Masks are built with numpy and handed to Arrow as arrays: a compute call given a bare
# Python int or bool infers its type, which costs ~40 µs (pyarrow tries an import each time).
def filter_rows(table: pa.Table, keep: npt.NDArray[np.bool_]) -> pa.Table:
    return table.filter(pa.array(keep, pa.bool_()))


def clip_sorted_with_ts(
    table: pa.Table, start_ns: int, end_ns: int, keys: list[str]
) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """``clip_sorted`` and the ``ts`` of the rows it returns (ns, numpy)."""
    if table.num_rows == 0:
        return table, np.empty(0, np.int64)
    ts = _np_ts(table)
    if ts[0] >= start_ns and ts[-1] < end_ns and is_sorted(table, ts, keys):
        return table, ts  # the common case (oldest-first pages inside their window): no copy
    inside = (ts >= start_ns) & (ts < end_ns)
    if not inside.all():
        table, ts = filter_rows(table, inside), ts[inside]
    if table.num_rows > 1 and not is_sorted(table, ts, keys):
        table = table.sort_by([(k, "ascending") for k in keys])
        ts = _np_ts(table)
    return table, ts


def clip_sorted(table: pa.Table, start_ns: int, end_ns: int, keys: list[str]) -> pa.Table:
    """Rows with ``start_ns <= ts < end_ns``, sorted by ``keys`` (exchanges differ in order)."""
    return clip_sorted_with_ts(table, start_ns, end_ns, keys)[0]


def _dedupe_on_ts(table: pa.Table) -> pa.Table:
    """Drop repeated bars (same open time) from one sorted page, keeping the last."""
    if table.num_rows < 2:
        return table
    ts = _np_ts(table)
    # keep row i when ts[i] != ts[i+1]; the last row is always kept
    keep = np.ones(len(ts), dtype=bool)
    keep[:-1] = ts[:-1] != ts[1:]
    return table if keep.all() else filter_rows(table, keep)


class _Ordered:
    """Run up to ``concurrency`` jobs at once; hand their results back in submission order."""

    def __init__(self, jobs: Iterable[Callable[[], Awaitable[Any]]], concurrency: int) -> None:
        self._jobs: Iterator[Callable[[], Awaitable[Any]]] = iter(jobs)
        self._concurrency = max(1, concurrency)
        self._pending: deque[asyncio.Task[Any]] = deque()

    def _fill(self) -> None:
        while len(self._pending) < self._concurrency:
            job = next(self._jobs, None)
            if job is None:
                return
            self._pending.append(asyncio.ensure_future(job()))

    async def results(self) -> AsyncIterator[Any]:
        try:
            self._fill()
            while self._pending:
                task = self._pending.popleft()
                result = await task
                self._fill()
                yield result
        finally:
            await self.cancel()

    async def cancel(self) -> None:
        for task in self._pending:
            task.cancel()
        for task in self._pending:
            try:
                await task
            except BaseException:  # noqa: BLE001 — cancelled or failed; nobody awaits it now
                pass
        self._pending.clear()


async def _attempt(job: Callable[[], Awaitable[Any]]) -> Any:
    """Run a fetch, returning a FetchError instead of raising it (so order is kept)."""
    try:
        return await job()
    except FetchError as exc:
        return exc


def report_progress(emit: Progress | None, done: int, total: int) -> None:
    if emit is not None:
        emit(done, total)


async def paginate_forward(
    fetch_page: Callable[[int, int], Awaitable[pa.Table]],
    start_ns: int,
    end_ns: int,
    window_s: float,
    max_per_request: int,
    *,
    align_s: float | None = None,
    emit_progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    sort_keys: tuple[str, ...] = ("ts",),
) -> AsyncIterator[Piece]:
    """Fixed time windows of ``window_s`` seconds, concurrently, yielded in order.

    Window edges are aligned to multiples of ``align_s`` (default: the window itself).
    ``fetch_page(w_start, w_end)`` must return every row in the window; a page of exactly
    ``max_per_request`` rows is taken as truncated and raised as an error, because a capped
    single page must never be taken for the whole window.
    """
    step = int(window_s * NS)
    align = int((align_s or window_s) * NS)
    first = start_ns // align * align
    edges = [max(start_ns, first)]
    t = first + step
    while t < end_ns:
        edges.append(t)
        t += step
    edges.append(end_ns)
    windows = list(zip(edges[:-1], edges[1:]))

    async def one(w0: int, w1: int) -> pa.Table:
        table = await fetch_page(w0, w1)
        if table.num_rows >= max_per_request:
            raise FetchError(
                f"a page of the window {w0}..{w1} came back full ({table.num_rows} rows): "
                "the window is too large for the exchange's page cap"
            )
        return clip_sorted(table, w0, w1, list(sort_keys))

    async for piece in _windows(windows, one, start_ns, end_ns, emit_progress, concurrency):
        yield piece


async def _windows(
    windows: list[tuple[int, int]],
    fetch: Callable[[int, int], Awaitable[pa.Table]],
    start_ns: int,
    end_ns: int,
    emit_progress: Progress | None,
    concurrency: int,
) -> AsyncIterator[Piece]:
    total = max(1, end_ns - start_ns)
    settled = 0

    async def one(w0: int, w1: int) -> Any:
        # Progress is the work done: a window counts when it is fetched, not when the
        # windows before it are (they finish out of order), so the bar moves steadily.
        nonlocal settled
        result = await _attempt(lambda: fetch(w0, w1))
        settled += w1 - w0
        report_progress(emit_progress, settled, total)
        return result

    jobs = [lambda w0=w0, w1=w1: one(w0, w1) for w0, w1 in windows]
    runner = _Ordered(jobs, concurrency)
    async for (w0, w1), result in _zip_async(windows, runner.results()):
        if isinstance(result, BannedError):
            # The exchange banned us: nothing more can be fetched from it in this run.
            yield FailedRange(w0, end_ns, str(result))
            await runner.cancel()
            raise result
        if isinstance(result, FetchError):
            log.warning("window %s..%s failed: %s", w0, w1, result)
            yield FailedRange(w0, w1, str(result))
        else:
            yield Chunk(w0, w1, result)


async def _zip_async(items: list[Any], results: AsyncIterator[Any]) -> AsyncIterator[tuple[Any, Any]]:
    i = 0
    async for r in results:
        yield items[i], r
        i += 1


def ohlc_windows(span: Span, start_ns: int, end_ns: int, cap: int) -> list[tuple[int, int]]:
    """Windows of at most ``cap`` bars covering the bars that open in ``[start, end)``.

    Edges sit on the bar grid (a bar is never split), so every bar belongs to exactly one
    window whatever the range; the first and last windows are simply shorter.
    """
    t = span.ceil(start_ns)
    out: list[tuple[int, int]] = []
    while t < end_ns:
        nxt = min(span.add(t, cap), end_ns)
        out.append((t, nxt))
        t = nxt
    return out


async def paginate_ohlc(
    fetch_page: OhlcFetch,
    cap: int,
    start_ns: int,
    end_ns: int,
    span: Span,
    *,
    emit_progress: Progress | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> AsyncIterator[Piece]:
    """Bars opening in ``[start_ns, end_ns)``, by windows of ``span × cap`` bars.

    Each window's page is filtered to the window, sorted and deduplicated on ``ts``. When a
    page comes back dense but stops short of its window (an exchange whose real cap is
    smaller than declared), the rest of the window is asked for again rather than lost.
    """

    async def one(w0: int, w1: int) -> pa.Table:
        parts: list[pa.Table] = []
        lo = w0
        while lo < w1:
            expected = span.bars_between(lo, w1)
            page = clip_sorted(await fetch_page(lo, w1, min(cap, expected)), lo, w1, ["ts"])
            page = _dedupe_on_ts(page)
            parts.append(page)
            n = page.num_rows
            if n == 0 or n >= expected:
                break
            ts = _ts(page)
            first, last = ts[0].as_py(), ts[n - 1].as_py()
            dense = span.bars_between(first, span.add(last, 1)) == n
            if not (dense and first == lo):
                break  # gaps inside the page: a quiet market, not a truncated page
            lo = span.add(last, 1)
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]

    windows = ohlc_windows(span, start_ns, end_ns, cap)
    async for piece in _windows(windows, one, start_ns, end_ns, emit_progress, concurrency):
        yield piece


async def paginate_backward(
    fetch_page: Callable[[int, int], Awaitable[pa.Table]],
    start_ns: int,
    end_ns: int,
    max_per_request: int,
    *,
    emit_progress: Progress | None = None,
    sort_keys: tuple[str, ...] = ("ts",),
) -> AsyncIterator[Piece]:
    """Pages anchored at an end bound that moves into the past (newest-first exchanges).

    ``fetch_page(start_ns, end_ns)`` returns the newest rows before ``end_ns`` (at most
    ``max_per_request``); the next page ends at the oldest row returned. Pages are
    collected then yielded oldest first, as one piece per page. Sequential by nature.
    """
    pages: list[Chunk] = []
    hi = end_ns
    total = max(1, end_ns - start_ns)
    while hi > start_ns:
        raw = await fetch_page(start_ns, hi)
        table = clip_sorted(raw, start_ns, hi, list(sort_keys))
        if table.num_rows < max_per_request or raw.num_rows < max_per_request:
            pages.append(Chunk(start_ns, hi, table))
            break
        ts = _np_ts(table)
        oldest = int(ts[0])
        # rows at the oldest instant may continue on the next page: leave them to it (also
        # when that instant is the range's start: the next page asks for it alone)
        keep = filter_rows(table, ts > oldest)
        if keep.num_rows == 0:
            raise FetchError(f"page before {hi} holds {table.num_rows} rows of one instant")
        pages.append(Chunk(oldest + 1, hi, keep))
        hi = oldest + 1
        report_progress(emit_progress, end_ns - hi, total)
    for chunk in reversed(pages):
        yield chunk
    report_progress(emit_progress, total, total)
