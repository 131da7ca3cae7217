"""One download command, end to end: validate, resolve, page, write.

Everything a user can get wrong is checked before the first data request (exit 2, nothing
written): the exchange, the kind and span it serves, the dates, the output directory, the
symbols (against the exchange's market list). Then each series fetches only what its
coverage ledger does not hold yet, so a run that was killed resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import __version__
from .capability import Adapter, Capability, Market
from .chunk import FailedRange, Piece
from .errors import (
    BadDateError,
    BannedError,
    OutputPathError,
    UnsupportedRangeError,
    UnsupportedSpanError,
)
from .http import AsyncHTTPClient
from .markets import check_symbol, resolve
from .paginate import paginate_ohlc, paginate_trades
from .registry import get_adapter
from .results import FailedSpan, RunResult, SeriesResult
from .storage import Ledger, SeriesKey, SeriesWriter
from .timeutil import Span, format_ns, now_ns, parse_time

log = logging.getLogger("dccd.job")


class ProgressSink(Protocol):
    """Where a run reports progress: a rich bar, plain log lines, or nothing."""

    def start(self, label: str, total: int) -> int: ...

    def advance(self, task: int, done: int) -> None: ...

    def finish(self, task: int, result: SeriesResult) -> None: ...


class NoProgress:
    def start(self, label: str, total: int) -> int:
        return 0

    def advance(self, task: int, done: int) -> None:
        pass

    def finish(self, task: int, result: SeriesResult) -> None:
        pass


@dataclass
class DownloadRequest:
    kind: str  # "ohlc" | "trades"
    exchange: str
    symbols: list[str]
    start: str
    end: str | None
    out: Path
    span: str | None = None
    base_url: str | None = None
    include_partial: bool = False


def check_output_dir(out: Path) -> Path:
    """The output directory must be a directory we can create or write; nothing is created."""
    out = out.expanduser().absolute()
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputPathError(f"output path {str(probe)!r} is a file; --out must name a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"output directory {str(probe)!r} is not writable; pass --out DIR you can write to")
    return out


@dataclass
class _Plan:
    """What was validated before any request."""

    adapter_cls: type[Adapter]
    cap: Capability
    span: Span | None
    symbols: list[str]
    out: Path


def validate(req: DownloadRequest) -> _Plan:
    """Every check that needs no network. Raises a UsageError (exit 2) on the first problem."""
    adapter_cls = get_adapter(req.exchange)
    cap = adapter_cls.capability(req.kind)
    if cap is None:
        instead = adapter_cls.unsupported.get(req.kind, "")
        raise UnsupportedRangeError(
            f"{adapter_cls.name} does not serve {req.kind} history over its REST API"
            + (f"; {instead}" if instead else "")
        )
    span = None
    if req.kind == "ohlc":
        if req.span is None:
            raise UnsupportedSpanError(f"--span is required for ohlc; {adapter_cls.name} offers {', '.join(cap.spans)}")
        span = Span.parse(req.span)
        if span.code not in cap.spans:
            raise UnsupportedSpanError(
                f"span {span.code!r} is not offered by {adapter_cls.name}; it offers {', '.join(cap.spans)}"
            )
    if not req.symbols:
        raise BadDateError("name at least one symbol, e.g. BTC-USDT")
    symbols = [check_symbol(s) for s in req.symbols]
    local_now = now_ns()
    start = None if req.start == "origin" else parse_time(req.start, now=local_now, what="start")
    end = local_now if req.end in (None, "now") else parse_time(req.end, now=local_now, what="end")
    if start is not None and start >= end:
        raise BadDateError(f"start {format_ns(start)} is not before end {format_ns(end)}; give --start earlier than --end")
    out = check_output_dir(req.out)
    return _Plan(adapter_cls, cap, span, symbols, out)


def _limit_history(cap: Capability, span: Span | None, start: int, now: int, series: SeriesResult) -> int:
    """Clamp a start to what a recent-only exchange serves, saying so; refuse if nothing is."""
    if cap.history == "full":
        return start
    earliest = start
    if cap.recent_bars is not None and span is not None:
        earliest = span.add(span.floor(now), -(cap.recent_bars - 1))
    elif cap.recent_ns is not None:
        earliest = now - cap.recent_ns
    if start >= earliest:
        return start
    if series.end_ns <= earliest:
        raise UnsupportedRangeError(
            f"{series.exchange} serves {series.kind} only from {format_ns(earliest)} over REST; "
            f"the range asked ends before that. {cap.note}".strip()
        )
    series.notes.append(
        f"{series.exchange} serves {series.kind} only from {format_ns(earliest)}; "
        f"{format_ns(start)}..{format_ns(earliest)} cannot be fetched. {cap.note}".strip()
    )
    return earliest


async def _run_series(
    adapter: Adapter,
    plan: _Plan,
    req: DownloadRequest,
    market: Market,
    start: int,
    end: int,
    progress: ProgressSink,
) -> SeriesResult:
    kind, cap, span = req.kind, plan.cap, plan.span
    result = SeriesResult(
        exchange=adapter.name, symbol=market.symbol, native_symbol=market.native, kind=kind,
        span=span.code if span else None, start_ns=start, end_ns=end,
    )
    key = SeriesKey(kind="ohlc" if kind == "ohlc" else "trades", exchange=adapter.name, symbol=market.symbol, span=result.span)
    missing = Ledger.load(key.dir(plan.out)).missing(start, end)
    if not missing:
        result.already_stored = True
        return result
    total = sum(e - s for s, e in missing)
    task = progress.start(result.label, total)
    done_before = 0

    def emit(done: int, _total: int) -> None:
        progress.advance(task, done_before + done)

    async def fetch_ohlc(w0: int, w1: int, limit: int) -> Any:
        result.requests += 1
        assert span is not None
        return await adapter.fetch_ohlc_page(market, span.code, w0, w1, limit)

    async def fetch_trades(w0: int, w1: int, limit: int, cursor: Any) -> Any:
        result.requests += 1
        return await adapter.fetch_trades_page(market, w0, w1, limit, cursor)

    writer = SeriesWriter(plan.out, key, native_symbol=market.native, version=__version__)
    try:
        for s, e in missing:
            pieces: AsyncIterator[Piece]
            if kind == "ohlc":
                assert span is not None
                pieces = paginate_ohlc(fetch_ohlc, cap.max_per_request, s, e, span,
                                       emit_progress=emit, concurrency=cap.concurrency)
            else:
                pieces = paginate_trades(fetch_trades, cap.max_per_request, s, e,
                                         emit_progress=emit, concurrency=cap.concurrency,
                                         direction=cap.page_direction)
            try:
                async for piece in pieces:
                    if isinstance(piece, FailedRange):
                        result.failed.append(FailedSpan(piece.start_ns, piece.end_ns, piece.error))
                    writer.add(piece)
            except BannedError as exc:
                result.error = str(exc)
                break
            done_before += e - s
    except BaseException:
        writer.abort()
        raise
    stats = writer.close()
    result.rows_added = stats.rows_added
    result.rows_written = stats.rows_written
    result.files = [str(p) for p in stats.files_touched]
    progress.finish(task, result)
    return result


async def _exchange_now(adapter: Adapter) -> int:
    """'Now' by the exchange's clock, which decides what an unfinished bar is.

    Adapters with a time endpoint answer directly; the others read the ``Date`` header of
    the latest reply — and when the market list came from the cache there is none yet, so
    the list is asked for once (cheap, and the reply carries the header).
    """
    now = await adapter.server_time_ns()
    if now is None:
        await adapter.load_markets()
        now = await adapter.server_time_ns()
    if now is None:
        log.warning("%s sent no clock; using the local clock", adapter.name)
        now = now_ns()
    return now


async def run_download(req: DownloadRequest, progress: ProgressSink | None = None) -> RunResult:
    """Run one ``dccd ohlc`` / ``dccd trades`` command and say what it did."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    plan = validate(req)
    progress = progress or NoProgress()
    adapter_cls = plan.adapter_cls
    base_url = (req.base_url or adapter_cls.default_base_url).rstrip("/")
    run = RunResult(command=req.kind, out=str(plan.out))
    async with AsyncHTTPClient.shared(
        adapter_cls.name, base_url, adapter_cls.rate_limit, check=adapter_cls.check
    ) as http:
        adapter = adapter_cls(http)
        markets = await resolve(adapter, base_url, plan.symbols)
        server_now = await _exchange_now(adapter)
        span = plan.span
        jobs = []
        for market in markets:
            start = (
                await adapter.first_data_ns(market, req.kind, span.code if span else None)
                if req.start == "origin"
                else parse_time(req.start, now=server_now, what="start")
            )
            end = server_now if req.end in (None, "now") else parse_time(req.end, now=server_now, what="end")
            # 'now' is the exchange's clock: bars still forming then are not stored.
            limit = server_now if (span is None or req.include_partial) else span.floor(server_now)
            end = min(end, limit)
            if start is None:
                run.series.append(SeriesResult(adapter.name, market.symbol, market.native, req.kind,
                                               span.code if span else None, end, end,
                                               notes=["the exchange has no data for this market"]))
                continue
            if span is not None:
                start = span.ceil(start)
            if start >= end:
                raise BadDateError(
                    f"nothing to fetch for {market.symbol}: start {format_ns(start)} is not before "
                    f"{format_ns(end)} (the exchange's now, less any unfinished bar)"
                )
            probe = SeriesResult(adapter.name, market.symbol, market.native, req.kind,
                                 span.code if span else None, start, end)
            start = _limit_history(plan.cap, span, start, server_now, probe)
            jobs.append((market, start, end, probe.notes))
        results = await asyncio.gather(
            *(_run_series(adapter, plan, req, m, s, e, progress) for m, s, e, _ in jobs)
        )
        for res, (_, _, _, notes) in zip(results, jobs):
            res.notes[:0] = notes
            run.series.append(res)
        run.retries = http.stats.retries
        run.rate_limited = http.stats.rate_limited
    run.seconds = loop.time() - t0
    return run
