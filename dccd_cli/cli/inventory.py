"""``dccd inventory``: the API's inventory, drawn as strips or printed as JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from dccd_cli.api.info import inventory_of
from dccd_cli.cli.options import JsonOpt
from dccd_cli.cli.outcome import reported
from dccd_cli.cli.render import render_inventory


def inventory(
    directory: Annotated[str | None, typer.Argument(help="Dataset directory (default: $DCCD_DATA_DIR, else the user data directory).", show_default=False)] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Re-read every file: schema, order, uniqueness, no unfinished bar, ledger consistent with the files.")] = False,
    width: Annotated[int, typer.Option("--width", help="Characters of the coverage strip.")] = 60,
    ascii_only: Annotated[bool, typer.Option("--ascii", help="Draw the strips in ASCII (the default when the output is not UTF-8).")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """What a dataset holds: per series its range, rows, files, size, coverage and gaps
    (no data at the exchange, failed, never fetched), drawn as a strip."""
    with reported("inventory", json_mode):
        result = inventory_of(directory, verify=verify, width=width, what="DIR")
        render_inventory(result, json_mode=json_mode, charset="ascii" if ascii_only else None)
    raise typer.Exit(result.exit_code)
