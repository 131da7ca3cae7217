"""``dccd exchanges`` and ``dccd markets``: what the API says of exchanges and markets."""

from __future__ import annotations

from typing import Annotated

import typer

from dccd_cli.api.info import exchanges as exchange_infos
from dccd_cli.api.info import markets_async
from dccd_cli.cli import signals
from dccd_cli.cli.options import BaseUrlOpt, EmulateOpt, JsonOpt
from dccd_cli.cli.outcome import reported
from dccd_cli.cli.render import render_exchanges, render_markets


def markets(
    exchange: Annotated[str, typer.Argument(help="Exchange name, e.g. binance (see `dccd exchanges`).")],
    pattern: Annotated[str | None, typer.Argument(help="Only the markets a pattern matches, e.g. '*-USDT' (any case), or one market's name.", show_default=False)] = None,
    base_url: BaseUrlOpt = None,
    emulate: EmulateOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """List the exchange's markets: unified symbol, its own name, listing date when known."""
    with reported("markets", json_mode):
        result = signals.run(markets_async(exchange, pattern, base_url=base_url, emulate=emulate))
        render_markets(result, json_mode=json_mode)
    raise typer.Exit(result.exit_code)


def exchanges(json_mode: JsonOpt = False) -> None:
    """List the supported exchanges: spans, page sizes, rate limits, history depth."""
    with reported("exchanges", json_mode):
        render_exchanges([info.to_json() for info in exchange_infos().values()], json_mode=json_mode)
