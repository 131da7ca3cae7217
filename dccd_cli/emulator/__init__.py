"""dccd's offline exchanges: a deterministic synthetic market served as faithful replicas
of each venue's public REST API on loopback (``dccd emulator``, ``--emulate``, tests).

Layout: :mod:`.rng` (counter-based randomness) → :mod:`.minutes` (per-minute decisions)
→ :mod:`.trades` (trades expanded from a minute) → :mod:`.cache` / :mod:`.market` (the
venue-neutral :class:`MarketModel`) → :mod:`.venues` (wire formats, registered through the
``dccd.venues`` entry points) → :mod:`.server`, which wraps each venue in the faults of
:mod:`.faults` (5xx, 429, bans, resets, stalls, bad bodies on demand), applied by
:mod:`.injector`.
"""

from __future__ import annotations

from dccd_cli.emulator.bars import Bars
from dccd_cli.emulator.faults import FaultPlan, FaultRule, FaultSpecError, parse_faults
from dccd_cli.emulator.injector import FaultInjector
from dccd_cli.emulator.instruments import DEFAULT_INSTRUMENTS, Instrument
from dccd_cli.emulator.market import MarketModel, UnknownInstrumentError
from dccd_cli.emulator.server import EmulatorApp, EmulatorServer, EmulatorSettings, serve
from dccd_cli.emulator.trades import AggTrades, Trades
from dccd_cli.emulator.venue import Clock, Request, Response, Venue
from dccd_cli.emulator.venues import venues

__all__ = [
    "DEFAULT_INSTRUMENTS", "venues", "AggTrades", "Bars", "Clock", "EmulatorApp",
    "FaultInjector", "FaultPlan", "FaultRule", "FaultSpecError", "parse_faults",
    "EmulatorServer", "EmulatorSettings", "Instrument", "MarketModel", "Request",
    "Response", "Trades", "UnknownInstrumentError", "Venue", "serve",
]
