"""``download()``: what ``dccd ohlc`` and ``dccd trades`` do, from Python."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace

from dccd_cli.api._args import TimeArg, texts, time_text
from dccd_cli.api._loop import run_blocking
from dccd_cli.api.emulate import emulated
from dccd_cli.api.paths import out_path
from dccd_cli.errors import UsageError
from dccd_cli.run.download import ProgressSink, run_download
from dccd_cli.run.request import DownloadRequest, validate
from dccd_cli.run.results import RunResult

log = logging.getLogger("dccd")
KINDS = ("ohlc", "trades")


def download_request(
    exchange: str, symbols: str | Sequence[str], *, kind: str = "ohlc",
    span: str | Sequence[str] | None = None, start: TimeArg, end: TimeArg | None = None,
    out: str | os.PathLike[str] | None = None, base_url: str | None = None,
    include_partial: bool = False, refetch: bool = False, dry_run: bool = False,
    names: tuple[str, str] = ("start", "end"),
) -> DownloadRequest:
    """The request ``download()`` runs, its arguments checked for type (the run checks the
    rest, still before any request)."""
    if kind not in KINDS:
        raise UsageError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    spans = texts(span, "span", '"1h" or ["1h", "1d"]')
    if kind == "trades" and spans:
        raise UsageError(f"trades have no span; drop span={span!r}, or ask for kind='ohlc'")
    if not isinstance(exchange, str):
        raise UsageError(f"exchange {exchange!r} is not a text, e.g. 'binance'")
    return DownloadRequest(
        kind=kind, exchange=exchange, symbols=texts(symbols, "symbols", '"BTC-USDT" or ["BTC-USDT", "*-USDC"]'),
        start=time_text(start, names[0]), end=None if end is None else time_text(end, names[1]),
        out=out_path(out, what="out"), spans=spans, base_url=base_url, include_partial=include_partial,
        refetch=refetch, dry_run=dry_run, names=names,
    )


async def run_request(req: DownloadRequest, *, emulate: bool = False,
                      progress: ProgressSink | None = None) -> RunResult:
    """Run a checked request; with ``emulate``, against an in-process emulator, started
    only once the request has passed every check that needs no network."""
    if emulate and req.base_url is not None:
        raise UsageError("give base_url or emulate, not both")
    validate(replace(req, symbols=list(req.symbols)))  # bad input: nothing started or written
    async with emulated(emulate, req.exchange) as url:
        return await run_download(replace(req, base_url=url or req.base_url), progress)


async def download_async(
    exchange: str, symbols: str | Sequence[str], *, kind: str = "ohlc",
    span: str | Sequence[str] | None = None, start: TimeArg, end: TimeArg | None = None,
    out: str | os.PathLike[str] | None = None, base_url: str | None = None,
    include_partial: bool = False, refetch: bool = False, dry_run: bool = False,
    progress: ProgressSink | None = None, emulate: bool = False,
) -> RunResult:
    """Download OHLC candles (``kind="ohlc"``, one series per symbol and ``span``) or every
    trade (``kind="trades"``) of ``exchange`` into the dataset ``out``, as ``dccd ohlc`` /
    ``dccd trades`` do; return what was done (``RunResult``; its ``to_json()`` is the
    CLI's ``--json`` object).

    ``symbols``: one or a list, each a unified symbol (``BTC-USDT``), ``BTC/USDT``, the
    exchange's own name or a pattern (``*-USDT``). ``span``: one or a list (``"1h"``,
    ``["1h", "1d"]``; ohlc only). ``start``/``end`` (end exclusive, default the exchange's
    now): text as the CLI takes it (``2024-01-01``, ``-90d``, ``origin``, ``now``), a
    ``datetime`` — an aware one, or a naive one, which is read as UTC — or a ``date``
    (its midnight UTC). ``out``: the dataset directory, default ``$DCCD_DATA_DIR``, else
    the platform's user data directory. ``base_url``: another endpoint for the exchange;
    ``emulate=True`` downloads from an in-process offline emulator instead (as the CLI's
    ``--emulate``). ``progress``: a ``ProgressSink`` told of each series' progress.

    Bad input raises a ``UsageError`` before any request, and nothing is written. Data that
    could not be fetched does not raise: the result says what is missing, and
    ``result.raise_for_failures()`` raises ``PartialDownloadError`` naming it. An exchange
    that cannot be reached at all raises a ``FetchError``. Nothing is printed; warnings go
    to ``logging.getLogger("dccd")``.
    """
    req = download_request(exchange, symbols, kind=kind, span=span, start=start, end=end, out=out,
                           base_url=base_url, include_partial=include_partial, refetch=refetch,
                           dry_run=dry_run)
    result = await run_request(req, emulate=emulate, progress=progress)
    log.info("%s %s: %d series, %d not complete", req.kind, req.exchange, len(result.series),
             sum(1 for s in result.series if not s.ok))
    return result


def download(
    exchange: str, symbols: str | Sequence[str], *, kind: str = "ohlc",
    span: str | Sequence[str] | None = None, start: TimeArg, end: TimeArg | None = None,
    out: str | os.PathLike[str] | None = None, base_url: str | None = None,
    include_partial: bool = False, refetch: bool = False, dry_run: bool = False,
    progress: ProgressSink | None = None, emulate: bool = False,
) -> RunResult:
    """``download_async`` run to its end: from a plain script, and from inside a running
    event loop too (a Jupyter cell), where it runs on a thread of its own. Same arguments,
    result and errors as ``download_async``."""
    return run_blocking(lambda: download_async(
        exchange, symbols, kind=kind, span=span, start=start, end=end, out=out, base_url=base_url,
        include_partial=include_partial, refetch=refetch, dry_run=dry_run, progress=progress,
        emulate=emulate))
