"""``dccd emulator``: the offline exchanges in the foreground, until stopped."""

from __future__ import annotations

from typing import Annotated

import typer

from dccd_cli.cli import signals
from dccd_cli.cli.outcome import reported, stopped
from dccd_cli.errors import UsageError


def emulator(
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; loopback unless you say otherwise.")] = "127.0.0.1",
    now: Annotated[str | None, typer.Option("--now", help="Freeze the exchanges' clock at this instant (default: real time).")] = None,
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Delay added to every response.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic markets.")] = 1,
    trades_scale: Annotated[float, typer.Option("--trades-scale", help="Multiply every market's trade count (1.0 = realistic).")] = 1.0,
    faults: Annotated[list[str] | None, typer.Option("--faults", help="Inject faults, e.g. '5xx:0.05,reset:0.02,slow:0.01' or 'binance=429@3-7/aggTrades' (repeatable; kinds: 5xx 429 418 error200 reset stall truncated malformed empty dup shuffle; the grammar is in the project's docs/emulator.md).")] = None,
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
