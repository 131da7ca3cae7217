"""The options several commands share, each written once."""

from __future__ import annotations

from typing import Annotated

import typer

# --out is taken as text: a Path would turn "s3://bucket/x" into the folder "s3:/bucket/x".
OutOpt = Annotated[str | None, typer.Option("--out", "-o", help="Dataset directory (default: $DCCD_DATA_DIR, else the user data directory).")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="The exchange's REST base URL, e.g. an emulator's http://127.0.0.1:8765/binance.")]
EmulateOpt = Annotated[bool, typer.Option("--emulate", help="Start the offline emulator in-process and download from it.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress; errors only.")]
StartOpt = Annotated[str, typer.Option("--start", help="First instant: a date (2024-01-01), a datetime, -90d, or 'origin' (the exchange's first data).")]
EndOpt = Annotated[str | None, typer.Option("--end", help="End (exclusive): a date, a datetime, -1d, or 'now' (default).")]
RefetchOpt = Annotated[bool, typer.Option("--refetch", help="Fetch the whole range again, even what the coverage ledger holds (repairs files damaged or lost).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print per series the ranges to fetch, requests, rows, bytes and time at the exchange's rate limit; fetch and write nothing (trades take a few requests to count).")]
SymbolsArg = Annotated[list[str], typer.Argument(help="Markets: BTC-USDT, BTC/USDT, the exchange's own name (BTCUSDT) or a pattern ('*-USDT'); see `dccd markets`.")]
