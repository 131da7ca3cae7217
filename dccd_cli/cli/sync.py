"""``dccd sync``: the jobs of a TOML file, through the API's sync, its progress and summary."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from platformdirs import user_config_dir

from dccd_cli.api.paths import default_out
from dccd_cli.api.sync import run_options
from dccd_cli.cli import signals
from dccd_cli.cli.options import EmulateOpt, JsonOpt, QuietOpt
from dccd_cli.cli.outcome import recording, reported
from dccd_cli.cli.render import configure_logging, notifier, progress_for, render_sync
from dccd_cli.errors import BaseUrlError
from dccd_cli.run.request import check_base_url, local_dir, shown_url
from dccd_cli.run.sync import SyncOptions


def default_sync_file() -> Path:
    return Path(user_config_dir("dccd")) / "sync.toml"


def example_job_file() -> str:
    """The commented job file ``dccd sync --example`` prints: package data, so it is there
    for users who installed dccd without the repository (its jobs are configs/daily.toml's)."""
    return resources.files("dccd_cli").joinpath("sync_example.toml").read_text(encoding="utf-8")


def _base_urls(pairs: list[str] | None) -> dict[str, str]:
    urls: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, url = pair.partition("=")
        try:
            if not sep or not name.strip():
                raise BaseUrlError(pair)
            urls[name.strip().lower()] = check_base_url(url)
        except BaseUrlError:
            raise BaseUrlError(f"--base-url {shown_url(pair)!r} is not EXCHANGE=URL with an http(s) URL, "
                               "e.g. binance=http://127.0.0.1:8765/binance") from None
    return urls


def sync(
    config: Annotated[Path | None, typer.Argument(help="The TOML job file (default: sync.toml in the user config directory).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (series, ranges, estimated requests and time) and fetch nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="When another sync holds the dataset's lock: wait for it, or exit 75 at once.")] = False,
    wait_timeout: Annotated[float, typer.Option("--wait-timeout", help="Seconds --wait waits for the lock before exiting 75.")] = 3600.0,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Dataset directory for every job (overrides the file's out; default: the file's, else $DCCD_DATA_DIR, else the user data directory).")] = None,
    base_url: Annotated[list[str] | None, typer.Option("--base-url", help="EXCHANGE=URL: another endpoint for an exchange (repeatable).")] = None,
    emulate: EmulateOpt = False,
    json_mode: JsonOpt = False,
    quiet: QuietOpt = False,
    example: Annotated[bool, typer.Option("--example", help="Print a commented example job file (dccd sync --example > sync.toml) and exit.")] = False,
) -> None:
    """Run the jobs of a TOML file incrementally: only what is not stored yet, plus an
    overlap of the newest bars. Exit 0 all fetched; 1 some series failed; 2 bad file;
    75 the dataset is locked by another sync (--no-wait)."""
    if example:
        sys.stdout.write(example_job_file())
        raise typer.Exit(0)
    configure_logging(quiet=quiet)
    with reported("sync", json_mode, series=[]) as done:
        opts = SyncOptions(config=config or default_sync_file(), default_out=default_out(),
                           out=local_dir(out) if out is not None else None,
                           base_urls=_base_urls(base_url), dry_run=dry_run, wait=wait,
                           wait_timeout=wait_timeout, notify=notifier(quiet=quiet))
        done["config"] = str(opts.config)
        with progress_for(quiet=quiet or dry_run, json_mode=json_mode) as progress:
            progress, done["series"] = recording(progress)
            result = signals.run(run_options(opts, emulate=emulate, progress=progress))
        render_sync(result, json_mode=json_mode, quiet=quiet)
    raise typer.Exit(result.exit_code)
