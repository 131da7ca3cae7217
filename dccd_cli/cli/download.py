"""``dccd ohlc`` and ``dccd trades``: the API's download, its progress, and its summary."""

from __future__ import annotations

from typing import Annotated

import typer

from dccd_cli.api.download import download_request, run_request
from dccd_cli.api.paths import out_path
from dccd_cli.cli import signals
from dccd_cli.cli.options import (
    BaseUrlOpt,
    DryRunOpt,
    EmulateOpt,
    EndOpt,
    JsonOpt,
    OutOpt,
    QuietOpt,
    RefetchOpt,
    StartOpt,
    SymbolsArg,
)
from dccd_cli.cli.outcome import recording, reported
from dccd_cli.cli.render import progress_for, render_run


def _download(kind: str, out: str | None, emulate: bool, json_mode: bool, quiet: bool, *, exchange: str,
              symbols: list[str], start: str, end: str | None, span: list[str] | None = None,
              base_url: str | None, include_partial: bool = False, refetch: bool, dry_run: bool) -> None:
    with reported(kind, json_mode, series=[]) as done:
        where = out_path(out)
        done["out"] = str(where)
        req = download_request(exchange, symbols, kind=kind, span=span, start=start, end=end, out=where,
                               base_url=base_url, include_partial=include_partial, refetch=refetch,
                               dry_run=dry_run, names=("--start", "--end"))
        with progress_for(quiet=quiet or dry_run, json_mode=json_mode) as progress:
            progress, done["series"] = recording(progress)
            result = signals.run(run_request(req, emulate=emulate, progress=progress))
        render_run(result, json_mode=json_mode, quiet=quiet)
    raise typer.Exit(result.exit_code)


def ohlc(
    exchange: Annotated[str, typer.Argument(help="Exchange name, e.g. binance (see `dccd exchanges`).")],
    symbols: SymbolsArg,
    span: Annotated[list[str], typer.Option("--span", help="Bar length, e.g. 1m, 1h, 1d (see `dccd exchanges`); several, one series each: --span 1h --span 1d, or --span 1h,1d.")],
    start: StartOpt,
    end: EndOpt = None,
    out: OutOpt = None,
    base_url: BaseUrlOpt = None,
    emulate: EmulateOpt = False,
    include_partial: Annotated[bool, typer.Option("--include-partial", help="Also store the bar still forming at the exchange's 'now'.")] = False,
    refetch: RefetchOpt = False,
    dry_run: DryRunOpt = False,
    json_mode: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download OHLC candles into OUT/ohlc/exchange=…/symbol=…/span=…/YYYY-MM.parquet
    (spans of a day and longer: YYYY.parquet; months are span=1mo)."""
    _download("ohlc", out, emulate, json_mode, quiet, exchange=exchange, symbols=symbols, span=span,
              start=start, end=end, base_url=base_url, include_partial=include_partial, refetch=refetch,
              dry_run=dry_run)


def trades(
    exchange: Annotated[str, typer.Argument(help="Exchange name, e.g. binance.")],
    symbols: SymbolsArg,
    start: StartOpt,
    end: EndOpt = None,
    out: OutOpt = None,
    base_url: BaseUrlOpt = None,
    emulate: EmulateOpt = False,
    refetch: RefetchOpt = False,
    dry_run: DryRunOpt = False,
    json_mode: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download every trade into OUT/trades/exchange=…/symbol=…/YYYY-MM-DD.parquet."""
    _download("trades", out, emulate, json_mode, quiet, exchange=exchange, symbols=symbols, start=start,
              end=end, base_url=base_url, refetch=refetch, dry_run=dry_run)
