"""The ``dccd`` command line: thin. Each command builds a request, calls one async function
that returns a result object, and hands it to one renderer. Exit codes: 0 all done;
1 some data could not be fetched (the rest is stored and the summary names what is
missing); 2 bad usage or input (nothing fetched or written); 75 the dataset is locked by
another sync; 130 interrupted; 143 terminated (SIGTERM). How each ends — its line on
stderr, its ``--json`` object — is ``dccd_cli.cli.outcome``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from platformdirs import user_config_dir, user_data_dir

from dccd_cli.cli import signals
from dccd_cli.cli.outcome import recording, reported, run_app, stopped
from dccd_cli.cli.render import (
    configure_logging,
    notifier,
    progress_for,
    render_exchanges,
    render_inventory,
    render_markets,
    render_run,
    render_sync,
)
from dccd_cli.errors import BaseUrlError, ExchangeError, UsageError
from dccd_cli.exchange.registry import adapters
from dccd_cli.run.download import run_download
from dccd_cli.run.markets import run_markets
from dccd_cli.run.request import DownloadRequest, check_base_url, local_dir, not_an_api, shown_url
from dccd_cli.run.sync import SyncOptions, run_sync
from dccd_cli.storage.inventory import take_inventory

app = typer.Typer(
    name="dccd",
    help="Bulk downloader of historical crypto market data (OHLC and trades) into Parquet.",
    no_args_is_help=True,
    add_completion=False,
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


def default_out() -> Path:
    env = os.environ.get("DCCD_DATA_DIR")
    return local_dir(env, what="DCCD_DATA_DIR") if env else Path(user_data_dir("dccd"))


def out_dir(text: str | None) -> Path:
    """``--out`` as typed (a URL is refused), else the default dataset directory."""
    return local_dir(text) if text is not None else default_out()


def default_sync_file() -> Path:
    return Path(user_config_dir("dccd")) / "sync.toml"


@contextmanager
def _base_url(exchange: str, base_url: str | None, emulate: bool) -> Iterator[str | None]:
    """The exchange's base URL: as given, or an in-process emulator's venue (``--emulate``)."""
    if not emulate:
        yield base_url
        return
    from dccd_cli.emulator import EmulatorServer, EmulatorSettings

    with EmulatorServer(EmulatorSettings()) as server:
        yield server.venue_url(exchange.lower())


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


def _download(kind: str, out: str | None, emulate: bool, json_mode: bool, quiet: bool, **asked: object) -> None:
    with reported(kind, json_mode, series=[]) as done:
        req = DownloadRequest(kind=kind, out=out_dir(out), **asked)  # type: ignore[arg-type]
        done["out"] = str(req.out)
        with _base_url(req.exchange, req.base_url, emulate) as url:
            req.base_url = url
            with progress_for(quiet=quiet or req.dry_run, json_mode=json_mode) as progress:
                progress, done["series"] = recording(progress)
                result = signals.run(run_download(req, progress))
        render_run(result, json_mode=json_mode, quiet=quiet)
    raise typer.Exit(result.exit_code)


@app.command()
def ohlc(
    exchange: Annotated[str, typer.Argument(help="Exchange name, e.g. binance (see `dccd exchanges`).")],
    symbols: Annotated[list[str], typer.Argument(help="Markets: BTC-USDT, BTC/USDT, the exchange's own name (BTCUSDT) or a pattern ('*-USDT'); see `dccd markets`.")],
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
    _download("ohlc", out, emulate, json_mode, quiet, exchange=exchange, symbols=symbols, spans=span,
              start=start, end=end, base_url=base_url, include_partial=include_partial, refetch=refetch,
              dry_run=dry_run)


@app.command()
def trades(
    exchange: Annotated[str, typer.Argument(help="Exchange name, e.g. binance.")],
    symbols: Annotated[list[str], typer.Argument(help="Markets: BTC-USDT, BTC/USDT, the exchange's own name (BTCUSDT) or a pattern ('*-USDT'); see `dccd markets`.")],
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


@app.command()
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
        with _emulator_url(emulate) as url:
            opts.emulator_url = url
            with progress_for(quiet=quiet or dry_run, json_mode=json_mode) as progress:
                progress, done["series"] = recording(progress)
                result = signals.run(run_sync(opts, progress))
        render_sync(result, json_mode=json_mode, quiet=quiet)
    raise typer.Exit(result.exit_code)


@contextmanager
def _emulator_url(emulate: bool) -> Iterator[str | None]:
    if not emulate:
        yield None
        return
    from dccd_cli.emulator import EmulatorServer, EmulatorSettings

    with EmulatorServer(EmulatorSettings()) as server:
        yield server.base_url


@app.command()
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
        result = take_inventory(local_dir(directory, what="DIR") if directory is not None else default_out(),
                                verify=verify, width=width)
        render_inventory(result, json_mode=json_mode, charset="ascii" if ascii_only else None)
    raise typer.Exit(result.exit_code)


@app.command()
def markets(
    exchange: Annotated[str, typer.Argument(help="Exchange name, e.g. binance (see `dccd exchanges`).")],
    pattern: Annotated[str | None, typer.Argument(help="Only the markets a pattern matches, e.g. '*-USDT' (any case), or one market's name.", show_default=False)] = None,
    base_url: BaseUrlOpt = None,
    emulate: EmulateOpt = False,
    json_mode: JsonOpt = False,
) -> None:
    """List the exchange's markets: unified symbol, its own name, listing date when known."""
    with reported("markets", json_mode):
        given = check_base_url(base_url) if base_url is not None else None
        with _base_url(exchange, given, emulate) as url:
            try:
                result = signals.run(run_markets(exchange, pattern, url))
            except ExchangeError as exc:
                wrong = not_an_api(exc, exchange.lower(), f"--base-url {given}") if given else None
                if wrong is not None:
                    raise wrong from exc
                raise
        render_markets(result, json_mode=json_mode)
    raise typer.Exit(result.exit_code)


@app.command()
def exchanges(json_mode: JsonOpt = False) -> None:
    """List the supported exchanges: spans, page sizes, rate limits, history depth."""
    with reported("exchanges", json_mode):
        render_exchanges([cls.describe() for cls in adapters().values()], json_mode=json_mode)


@app.command()
def emulator(
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; loopback unless you say otherwise.")] = "127.0.0.1",
    now: Annotated[str | None, typer.Option("--now", help="Freeze the exchanges' clock at this instant (default: real time).")] = None,
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Delay added to every response.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic markets.")] = 1,
    trades_scale: Annotated[float, typer.Option("--trades-scale", help="Multiply every market's trade count (1.0 = realistic).")] = 1.0,
    faults: Annotated[list[str] | None, typer.Option("--faults", help="Inject faults, e.g. '5xx:0.05,reset:0.02,slow:0.01' or 'binance=429@3-7/aggTrades' (repeatable; see dccd_cli/emulator/faults.py).")] = None,
    fault_seed: Annotated[int, typer.Option("--fault-seed", help="Seed of the probabilistic faults (same seed, same faults).")] = 0,
    maintenance: Annotated[list[str] | None, typer.Option("--maintenance", help="A window START/END with no trades and no bars at all, e.g. 2024-01-01T02:00/2024-01-01T03:00 (repeatable).")] = None,
) -> None:
    """Serve offline replicas of the exchanges' public APIs (one path prefix per venue)."""
    from dccd_cli.emulator import EmulatorSettings, FaultSpecError, parse_faults, serve, venues
    from dccd_cli.timeutil import now_ns, parse_time

    with reported("emulator", False):
        fixed = None if now in (None, "real") else parse_time(now, now=now_ns(), what="--now")
        # A relative window is read against the emulator's clock: --now's, if frozen.
        clock = fixed if fixed is not None else now_ns()
        windows: list[tuple[int, int]] = []
        for text in maintenance or []:
            first, sep, last = text.partition("/")
            if not sep:
                raise UsageError(f"--maintenance {text!r} is not START/END, e.g. 2024-01-01T02:00/2024-01-01T03:00")
            lo = parse_time(first, now=clock, what="--maintenance start")
            hi = parse_time(last, now=clock, what="--maintenance end")
            if lo >= hi:
                raise UsageError(f"--maintenance {text!r} ends before it starts")
            windows.append((lo, hi))
        try:
            plans = parse_faults(faults or [], venues(), fault_seed)
        except FaultSpecError as exc:
            raise UsageError(f"--faults: {exc}") from None
    settings = EmulatorSettings(seed=seed, now=fixed, latency_ms=latency_ms, trades_scale=trades_scale,
                                maintenance=windows, faults=dict(plans), fault_seed=fault_seed)
    try:
        serve(settings, host=host, port=port)
    except signals.Terminated:
        stopped(signals.EXIT_TERMINATED, "emulator", False)
    except KeyboardInterrupt:  # Ctrl-C: the usual way to stop an emulator
        raise typer.Exit(0) from None


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
