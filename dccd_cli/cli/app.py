"""The ``dccd`` command line: thin. Each command (one module each: ``download``, ``sync``,
``inventory``, ``exchanges``, ``emulator``) calls one function of the Python API
(``dccd_cli.api``) and hands its result to one renderer. Exit codes: 0 all done;
1 some data could not be fetched (the rest is stored and the summary names what is
missing); 2 bad usage or input (nothing fetched or written); 75 the dataset is locked by
another sync; 130 interrupted; 143 terminated (SIGTERM). How each ends — its line on
stderr, its ``--json`` object — is ``dccd_cli.cli.outcome``.

Shell completion is typer's: ``dccd --install-completion`` installs it for the current
shell, ``dccd --show-completion [SHELL]`` prints the script.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dccd_cli.cli.download import ohlc, trades
from dccd_cli.cli.emulator import emulator
from dccd_cli.cli.exchanges import exchanges, markets
from dccd_cli.cli.inventory import inventory
from dccd_cli.cli.outcome import run_app
from dccd_cli.cli.sync import sync

app = typer.Typer(
    name="dccd",
    help="Bulk downloader of historical crypto market data (OHLC and trades) into Parquet.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from dccd_cli._version import __version__

        sys.stdout.write(f"dccd {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print dccd's version and exit.")] = False,
) -> None:
    """Bulk downloader of historical crypto market data (OHLC and trades) into Parquet."""


for _command in (ohlc, trades, sync, inventory, markets, exchanges, emulator):
    app.command()(_command)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
