"""One download command, end to end: validate, resolve, page, write.

What needs no network is checked first (``dccd_cli.run.request``: exit 2, nothing written);
then the symbols are resolved against the exchange's market list and each series' range
is bounded by the exchange's clock. Each series fetches only what its coverage ledger does
not hold yet, so a run that was killed resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dccd_cli._version import __version__
from dccd_cli.errors import (
    BannedError,
    ExchangeError,
)
from dccd_cli.exchange.adapter import Adapter, Capability, Market
from dccd_cli.exchange.markets import resolve
from dccd_cli.net import bans
from dccd_cli.net.client import AsyncHTTPClient, HTTPStats, series_stats
from dccd_cli.net.ratelimit import wait_listener
from dccd_cli.pieces import FailedRange, Piece
from dccd_cli.run.bounds import bound_series, exchange_now, late_listing_note
from dccd_cli.run.estimate import exchange_total, planned_series
from dccd_cli.run.request import DownloadRequest, not_an_api, validate
from dccd_cli.run.results import FailedSpan, Gap, RunResult, SeriesResult
from dccd_cli.schema import ts_ns_column
from dccd_cli.sources.rest.checks import guarded, verify_dense_ids
from dccd_cli.sources.rest.ohlc import paginate_ohlc
from dccd_cli.sources.rest.trades import paginate_trades
from dccd_cli.storage import Interval, Kind, Ledger, SeriesKey, SeriesWriter
from dccd_cli.storage.background import BackgroundWriter, to_thread_to_end
from dccd_cli.storage.filecheck import check_files
from dccd_cli.storage.intervals import intersect, normalize, subtract, union
from dccd_cli.storage.upgrade import stored_ledger, upgrade_series
from dccd_cli.timeutil import Span, format_ns, now_ns, parse_time

log = logging.getLogger("dccd.job")


class ProgressSink(Protocol):
    """Where a run reports progress: a rich bar, plain log lines, or nothing.

    Work is nanoseconds of the ranges to fetch; ``done`` the part settled so far and
    ``rows`` the rows received so far, both of the series ``task`` (``start``'s handle).
    """

    def start(self, label: str, total: int) -> int: ...

    def advance(self, task: int, done: int, rows: int) -> None: ...

    def waiting(self, task: int, until: float) -> None:
        """The series waits for the exchange's rate limit until ``until`` (Unix seconds)."""

    def finish(self, task: int, result: SeriesResult) -> None: ...

    def overall(self, series: int, work: int) -> None:
        """How many series this run goes through and their work in all (an overall bar)."""


class NoProgress:
    def start(self, label: str, total: int) -> int:
        return 0

    def advance(self, task: int, done: int, rows: int) -> None:
        pass

    def waiting(self, task: int, until: float) -> None:
        pass

    def finish(self, task: int, result: SeriesResult) -> None:
        pass

    def overall(self, series: int, work: int) -> None:
        pass


@dataclass
class SeriesTask:
    """One series, resolved and bounded, ready to fetch: what ``dccd ohlc``/``trades`` and
    ``dccd sync`` both hand to ``run_series``.

    ``start_ns``/``end_ns`` is the range asked (on the bar grid for OHLC; the end never past
    the exchange's now, less the forming bar); ``ranges`` the parts of it to request now.
    """

    exchange: str
    market: Market
    kind: str  # "ohlc" | "trades"
    span: Span | None
    cap: Capability
    out: Path
    start_ns: int
    end_ns: int
    ranges: list[Interval] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    job: str | None = None

    @property
    def key(self) -> SeriesKey:
        kind: Kind = "ohlc" if self.kind == "ohlc" else "trades"
        return SeriesKey(kind, self.exchange, self.market.symbol, self.span.code if self.span else None)

    def result(self) -> SeriesResult:
        """An empty result for this series, to be filled by the run (or a dry run)."""
        return SeriesResult(
            exchange=self.exchange, symbol=self.market.symbol, native_symbol=self.market.native,
            kind=self.kind, span=self.span.code if self.span else None, start_ns=self.start_ns,
            end_ns=self.end_ns, notes=list(self.notes), job=self.job, fetched=list(self.ranges),
        )


def fetch_ranges(
    ledger: Ledger, start: int, end: int, span: Span | None, *, overlap_bars: int = 0, overlap_ns: int = 0
) -> list[Interval]:
    """What to request for ``[start, end)``: what the ledger does not hold yet, plus an
    overlap re-fetching the newest stored part, so late corrections land (the writer
    merges, the newer row wins). OHLC overlaps by ``overlap_bars`` bars — the bar holding
    a ragged ledger end included, as an unfinished bar stored on request would be — and
    trades by ``overlap_ns``."""
    ranges = ledger.missing(start, end)
    stored = intersect(ledger.fetched, [(start, end)]) if start < end else []
    if stored:
        first, last = stored[-1]
        if span is not None and overlap_bars > 0:
            lo = span.add(span.floor(last - 1), -(overlap_bars - 1))
        elif span is None and overlap_ns > 0:
            lo = last - overlap_ns
        else:
            lo = last
        if lo < last:
            ranges = normalize([*ranges, (max(lo, first), last)])
    return ranges


def plan_ranges(
    task: SeriesTask, *, overlap_bars: int = 0, overlap_ns: int = 0, refetch: bool = False,
    dry_run: bool = False,
) -> list[Interval]:
    """The ranges of ``task`` to request now, from its ledger checked against its files.

    The files the ledger's manifest names in the range are checked first (a ``stat``
    each; ``storage.filecheck``): the range of a file that is gone or holds less than
    recorded is fetched again, and one that cannot be read is moved aside (not in a dry
    run) and fetched again; each says so in the series' notes. Bars stored while still
    forming (``--include-partial``) are fetched again by any run that covers them. With
    ``refetch`` the whole range is fetched whatever the ledger holds, and every file in it
    has its footer read, so a file damaged in place is found too.
    """
    ledger = stored_ledger(task.out, task.key)  # an older dccd's span=1M too
    whole = (task.start_ns, task.end_ns)
    check = check_files(ledger, move_unreadable=not dry_run, within=whole, deep=refetch)
    task.notes.extend(check.notes)
    if refetch:
        return [whole] if task.start_ns < task.end_ns else []
    view = Ledger(ledger.directory, subtract(ledger.fetched, check.lost), ledger.failed)
    ranges = fetch_ranges(view, task.start_ns, task.end_ns, task.span,
                          overlap_bars=overlap_bars, overlap_ns=overlap_ns)
    forming = intersect(ledger.provisional, [whole]) if task.start_ns < task.end_ns else []
    if forming:
        task.notes.append(f"{len(forming)} bar range(s) stored while still forming, from "
                          f"{format_ns(forming[0][0])}, are fetched again")
        ranges = union(ranges, forming)
    return ranges


def forming_bar(span: Span | None, end_ns: int) -> Interval | None:
    """The bar a range ending at ``end_ns`` cuts (stored with ``--include-partial``, while
    still forming), or None when the range ends on the bar grid."""
    if span is None:
        return None
    first = span.floor(end_ns)
    return (first, span.add(first, 1)) if first < end_ns else None


async def run_series(adapter: Adapter, task: SeriesTask, progress: ProgressSink) -> SeriesResult:
    """Fetch ``task.ranges`` of one series into its files and ledger; say what happened.

    The one code path of a series for every command: paginator → writer, in time order.
    A ban stops the series and records every range not reached as failed, so the ledger
    names it and the next run fetches it.
    """
    cap, span, market = task.cap, task.span, task.market
    result = task.result()
    key = task.key
    if not task.ranges:
        result.already_stored = True
        return result
    counters = HTTPStats()
    series_stats.set(counters)  # this task's own context: concurrent series count apart
    total = sum(e - s for s, e in task.ranges)
    handle = progress.start(result.label, total)
    # A long wait for the exchange's budget is shown on this series' progress (the tasks
    # the paginator spawns inherit this context, as they do series_stats).
    wait_listener.set(lambda seconds: progress.waiting(handle, time.time() + seconds))
    done_before = done = rows = 0
    received = expected = 0
    first_row: int | None = None  # the first row received, to tell a late listing

    def emit(settled: int, _total: int) -> None:
        nonlocal done
        done = done_before + settled
        progress.advance(handle, done, rows)

    def got(page_rows: int) -> None:
        nonlocal rows
        rows += page_rows
        progress.advance(handle, done, rows)

    # Every page goes through the guard (dccd_cli.sources.rest.checks): a page its adapter cannot read is
    # asked again, then failed; an empty page is believed only when it is empty twice.
    async def fetch_ohlc(w0: int, w1: int, limit: int) -> Any:
        assert span is not None
        code = span.code

        async def once() -> Any:
            result.requests += 1
            return await adapter.fetch_ohlc_page(market, code, w0, w1, limit)

        page = await guarded(once, exchange=adapter.name, what="candles")
        got(page.num_rows)
        return page

    async def fetch_trades(w0: int, w1: int, limit: int, cursor: Any) -> Any:
        async def once() -> Any:
            result.requests += 1
            return await adapter.fetch_trades_page(market, w0, w1, limit, cursor)

        page = await guarded(once, exchange=adapter.name, what="trades")
        got(page[0].num_rows)
        return page

    def ids_from(w0: int, w1: int) -> Callable[[int], Awaitable[Any]]:
        async def fetch(first_id: int) -> Any:  # trades from an id on (dense-id exchanges)
            table, _ = await fetch_trades(w0, w1, cap.max_per_request, first_id)
            return table

        return fetch

    # Files of an older dccd's layout are brought to the current one before any write.
    result.notes.extend(await asyncio.to_thread(upgrade_series, task.out, key))
    # The writer's disk work runs on a thread of its own, so the event loop (every request
    # of the run) never waits for an encode, an fsync or a rename.
    writer = BackgroundWriter(
        SeriesWriter(task.out, key, native_symbol=market.native, version=__version__))
    try:
        for i, (s, e) in enumerate(task.ranges):
            pieces: AsyncIterator[Piece]
            if span is not None:
                pieces = paginate_ohlc(fetch_ohlc, cap.max_per_request, s, e, span,
                                       emit_progress=emit, concurrency=cap.concurrency)
            else:
                pieces = paginate_trades(fetch_trades, cap.max_per_request, s, e,
                                         emit_progress=emit, concurrency=cap.concurrency,
                                         direction=cap.page_direction)
                if cap.dense_ids:  # prove the range complete by its consecutive trade ids
                    pieces = verify_dense_ids(pieces, ids_from(s, e), cap.max_per_request,
                                              exchange=adapter.name)
            try:
                async for piece in pieces:
                    if isinstance(piece, FailedRange):
                        result.failed.append(FailedSpan(piece.start_ns, piece.end_ns, piece.error))
                    else:
                        if first_row is None and piece.table.num_rows:
                            first_row = int(ts_ns_column(piece.table).to_numpy().min())
                        if span is not None:
                            received += piece.table.num_rows
                            expected += span.bars_between(piece.start_ns, piece.end_ns)
                    await writer.add(piece)
            except BannedError as exc:
                result.error = str(exc)
                # Nothing more can be fetched from this exchange in this run: the ranges
                # not reached are failed too, so the ledger and the summary name them.
                for rs, re_ in task.ranges[i + 1:]:
                    await writer.add(FailedRange(rs, re_, str(exc)))
                    result.failed.append(FailedSpan(rs, re_, str(exc)))
                break
            done_before += e - s
        bar = forming_bar(span, task.end_ns)
        if bar is not None and task.ranges[-1][1] == task.end_ns:
            await writer.mark_provisional(*bar)
    except BaseException:
        await writer.abort()
        raise
    stats = await writer.close()
    result.rows_added = stats.rows_added
    result.rows_written = stats.rows_written
    result.files = [str(p) for p in stats.files_touched]
    result.retries, result.rate_limited = counters.retries, counters.rate_limited
    if span is not None:
        result.empty_bars = max(0, expected - received)
    what = f"{task.kind}{' ' + span.code if span else ''}"
    late = late_listing_note(task.exchange, what, market, task.start_ns, task.ranges[0][0],
                             first_row, [f.start_ns for f in result.failed])
    if late:
        result.notes.append(late)
    # To its end even if the run is being stopped: the series is done, and is reported so.
    ledger = await to_thread_to_end(Ledger.load, key.dir(task.out))
    result.gaps = gaps_after(ledger, task.start_ns, task.end_ns)
    progress.finish(handle, result)
    return result


def gaps_after(ledger: Ledger, start: int, end: int) -> list[Gap]:
    """What of ``[start, end)`` the ledger does not hold: failed (with why) or not fetched."""
    gaps = [Gap(s, e, "failed", f.error) for f in ledger.failed
            for s, e in intersect([(f.start_ns, f.end_ns)], [(start, end)])]
    failed = normalize((f.start_ns, f.end_ns) for f in ledger.failed)
    gaps += [Gap(s, e, "not fetched") for s, e in subtract(ledger.missing(start, end), failed)]
    return sorted(gaps, key=lambda g: g.start_ns)


def refused(req: DownloadRequest, exchange: str, symbols: list[str], span: Span | None,
            why: str) -> list[SeriesResult]:
    """Every series of a run that asks the exchange nothing (a ban an earlier run met), failed
    with ``why``. Their range is as asked by the local clock (the exchange's is not asked);
    the exchange's own symbol is not known."""
    now = now_ns()
    end = now if req.end in (None, "now") else parse_time(req.end, now=now, what="end")
    start = end if req.start == "origin" else parse_time(req.start, now=now, what="start")
    code = span.code if span else None
    return [SeriesResult(exchange, symbol, None, req.kind, code, start, end, error=why)
            for symbol in symbols]


async def run_download(req: DownloadRequest, progress: ProgressSink | None = None) -> RunResult:
    """Run one ``dccd ohlc`` / ``dccd trades`` command and say what it did."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    plan = validate(req)
    progress = progress or NoProgress()
    adapter_cls = plan.adapter_cls
    base_url = (req.base_url or adapter_cls.default_base_url).rstrip("/")
    run = RunResult(command=req.kind, out=str(plan.out), dry_run=req.dry_run)
    if (ban := bans.active(adapter_cls.name, base_url)) is not None:
        run.series = [r for span in plan.spans
                      for r in refused(req, adapter_cls.name, plan.symbols, span, ban.refusal())]
        run.seconds = loop.time() - t0
        return run
    async with AsyncHTTPClient.shared(
        adapter_cls.name, base_url, adapter_cls.rate_limit, check=adapter_cls.check
    ) as http:
        adapter = adapter_cls(http)
        try:
            markets = await resolve(adapter, base_url, plan.symbols)
        except ExchangeError as exc:
            wrong = not_an_api(exc, adapter.name, f"--base-url {req.base_url}") if req.base_url else None
            if wrong is not None:
                raise wrong from exc
            raise
        server_now = await exchange_now(adapter)
        tasks: list[SeriesTask] = []
        for market, span in ((m, s) for m in markets for s in plan.spans):
            bounds = await bound_series(adapter, plan.cap, req.kind, span, market, req.start, req.end,
                                        server_now, include_partial=req.include_partial, names=req.names)
            if bounds is None:
                run.series.append(SeriesResult(adapter.name, market.symbol, market.native, req.kind,
                                               span.code if span else None, server_now, server_now,
                                               notes=["the exchange has no data for this market"]))
                continue
            start, end, notes = bounds
            task = SeriesTask(adapter.name, market, req.kind, span, plan.cap, plan.out, start, end,
                              notes=notes)
            task.ranges = plan_ranges(task, refetch=req.refetch)
            tasks.append(task)
        if req.dry_run:  # the plan and its cost; nothing is fetched or written
            run.series.extend(await asyncio.gather(*(planned_series(adapter, t) for t in tasks)))
            run.estimate = exchange_total(s.estimate for s in run.series if s.estimate is not None)
            run.estimate.probes = http.stats.requests
        else:
            progress.overall(sum(1 for t in tasks if t.ranges),
                             sum(e - s for t in tasks for s, e in t.ranges))
            results = await asyncio.gather(*(run_series(adapter, t, progress) for t in tasks))
            run.series.extend(results)
        run.retries = http.stats.retries
        run.rate_limited = http.stats.rate_limited
    run.seconds = loop.time() - t0
    return run
