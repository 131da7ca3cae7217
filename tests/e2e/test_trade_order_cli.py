"""Trades sharing a millisecond, through the real CLI: BitMEX's ids are UUIDs that say
nothing about order, so its trades must be stored as BitMEX lists them — in execution
order — through the paginator, a fresh day, a merge of an overlapping run and the
check of inventory --verify."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dccd_testing import FROZEN_NOW, run_cli

from dccd_cli.emulator import EmulatorServer
from dccd_cli.emulator.venues.bitmex_format import match_id, symbol_of
from dccd_cli.storage import SeriesKey, read_series, verify_series
from dccd_cli.timeutil import HOUR_NS

SYMBOL = "BTC-USDT"
KEY = SeriesKey("trades", "bitmex", SYMBOL)


def download(emulator: EmulatorServer, out: Path, start: int, end: int) -> None:
    r = run_cli("trades", "bitmex", SYMBOL, "--start", str(start // 10**9), "--end", str(end // 10**9),
                "--base-url", emulator.venue_url("bitmex"), "--out", str(out), "--quiet")
    assert r.code == 0, r.stderr + r.stdout


def executed(emulator: EmulatorServer, start: int, end: int) -> list[str]:
    """The trdMatchIDs of the emulator's trades in ``[start, end)``, in execution order."""
    market = emulator.market
    symbol = symbol_of(market.instrument(SYMBOL))
    return [match_id(symbol, int(i)) for i in market.trades(SYMBOL, start, end).id]


def test_bitmex_trades_of_one_instant_are_stored_in_execution_order(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    start = FROZEN_NOW - 20 * HOUR_NS  # 2024-02-29 04:30, inside one UTC day
    download(emulator, tmp_path, start, start + HOUR_NS)
    stored = read_series(tmp_path, KEY)
    want = executed(emulator, start, start + HOUR_NS)
    # The hour holds bursts of trades in one millisecond, whose UUIDs a sort would reorder.
    ts = stored.column("ts").cast("int64").to_pylist()
    bursts = [t for t, n in Counter(ts).items() if n >= 5]
    assert bursts and any(
        [i for t, i in zip(ts, want) if t == b] != sorted(i for t, i in zip(ts, want) if t == b)
        for b in bursts)
    assert stored.column("id").to_pylist() == want
    # A second run overlapping the first is merged into the same day's file.
    download(emulator, tmp_path, start + HOUR_NS // 2, start + 2 * HOUR_NS)
    assert read_series(tmp_path, KEY).column("id").to_pylist() == executed(
        emulator, start, start + 2 * HOUR_NS)
    assert verify_series(tmp_path, KEY) == []  # what inventory --verify runs
