"""Every registered adapter against its emulator venue, through the real CLI.

The expectation comes from the emulator's market model itself — not from the venue's wire
format and not from the adapter — so this checks that adapter and venue, two independent
readings of one exchange's documentation, agree on every row: no gap, no duplicate, no
unfinished bar, values intact.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from dccd_testing import FROZEN_NOW, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings, MarketModel
from dccd_cli.exchange.registry import adapters
from dccd_cli.timeutil import HOUR_NS, Span

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTC-USDT"
EXCHANGES = list(adapters())


def expected_bars(
    market: MarketModel, span: Span, start: int, end: int, exchange: str
) -> dict[str, list[float]]:
    inst = market.instrument(SYMBOL)
    tick, lot = Decimal(inst.tick), Decimal(inst.lot)
    bars = market.bars(SYMBOL, span, start, end, FROZEN_NOW)
    opens = [int(v) for v in bars.open]
    if exchange == "bitmex":
        # BitMEX documents that a bucket's open is the previous bucket's close [C].
        before = market.bars(SYMBOL, span, span.add(start, -1), start, FROZEN_NOW)
        opens = [int(before.close[-1])] + [int(v) for v in bars.close[:-1]]
    return {
        "ts": [int(t) for t in bars.open_ns],
        "open": [float(v * tick) for v in opens],
        "high": [float(int(v) * tick) for v in bars.high],
        "low": [float(int(v) * tick) for v in bars.low],
        "close": [float(int(v) * tick) for v in bars.close],
        "volume": [float(int(v) * lot) for v in bars.volume],
    }


def ohlc_cases() -> list[tuple[str, str, int]]:
    """(exchange, span, bars): several spans each, long enough to need several pages."""
    cases = []
    for name, cls in adapters().items():
        cap = cls.ohlc
        if cap is None:
            continue
        for span, bars in (("1m", min(int(cap.max_per_request * 2.5), 2500)), ("1h", 120), ("1d", 30)):
            if span not in cap.spans:
                continue
            if cap.recent_bars is not None:
                bars = min(bars, cap.recent_bars - 2)
            cases.append((name, span, bars))
    return cases


@pytest.mark.parametrize("exchange,span,bars", ohlc_cases())
def test_ohlc_stores_exactly_the_venues_bars(
    emulator: EmulatorServer, tmp_path: Path, exchange: str, span: str, bars: int
) -> None:
    sp = Span.parse(span)
    end = sp.floor(FROZEN_NOW)  # the forming bar is excluded by the default end (now)
    start = sp.add(end, -bars)
    r = run_cli("ohlc", exchange, SYMBOL, "--span", span, "--start", str(start // 10**9),
                "--base-url", emulator.venue_url(exchange), "--out", str(tmp_path), "--json")
    assert r.code == 0, r.stderr + r.stdout
    table = ds.dataset(tmp_path / "ohlc", partitioning="hive").to_table().sort_by("ts")
    want = expected_bars(emulator.market, sp, start, end, exchange)
    assert len(want["ts"]) == bars
    assert table.column("ts").cast(pa.int64()).to_pylist() == want["ts"]
    for col in ("open", "high", "low", "close", "volume"):
        assert table.column(col).to_pylist() == pytest.approx(want[col], rel=1e-9), col


def trade_exchanges() -> list[str]:
    return [name for name, cls in adapters().items() if cls.trades is not None]


@pytest.fixture(scope="module")
def busy_emulator() -> Iterator[EmulatorServer]:
    """Enough trades that three hours take several pages on every venue."""
    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, trades_scale=0.08)) as server:
        yield server


@pytest.mark.parametrize("exchange", trade_exchanges())
def test_trades_store_exactly_the_venues_trades(busy_emulator: EmulatorServer, tmp_path: Path, exchange: str) -> None:
    emulator = busy_emulator
    # Inside every exchange's served history (Bitstamp: the last day; OKX: three months).
    start, end = FROZEN_NOW - 20 * HOUR_NS, FROZEN_NOW - 17 * HOUR_NS
    r = run_cli("trades", exchange, SYMBOL, "--start", str(start // 10**9), "--end", str(end // 10**9),
                "--base-url", emulator.venue_url(exchange), "--out", str(tmp_path), "--json")
    assert r.code == 0, r.stderr + r.stdout
    table = ds.dataset(tmp_path / "trades", partitioning="hive").to_table()
    market = emulator.market
    inst = market.instrument(SYMBOL)
    tick, lot = Decimal(inst.tick), Decimal(inst.lot)
    if exchange == "binance":  # Binance serves aggregate trades
        want = market.agg_trades(SYMBOL, start, end, 10**9)
    else:
        want = market.trades(SYMBOL, start, end)
    # Bitstamp reports trade times in whole seconds [C].
    unit = 10**9 if exchange == "bitstamp" else 1
    expected = [(int(t) // unit * unit, float(int(p) * tick), float(int(q) * lot))
                for t, p, q in zip(want.ts_ns, want.price, want.qty)]
    got = list(zip(table.column("ts").cast(pa.int64()).to_pylist(), table.column("price").to_pylist(),
                   table.column("amount").to_pylist()))
    assert table.num_rows == len(want) > 2500
    assert Counter(got) == Counter(expected)
    # in the venue's execution order, trades sharing a timestamp included (one file: a
    # dataset read keeps each file's row order)
    assert len(list((tmp_path / "trades").rglob("*.parquet"))) == 1
    assert got == expected
    ids = table.column("id")
    assert len(pc.unique(ids)) == table.num_rows
    # the range holds bursts of many trades in one millisecond, and none was lost
    assert max(Counter(table.column("ts").cast(pa.int64()).to_pylist()).values()) >= 10
    sides = set(table.column("side").to_pylist())
    assert sides <= {"buy", "sell", None} and sides & {"buy", "sell"}


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_unknown_symbol_and_unsupported_span_exit_2(emulator: EmulatorServer, tmp_path: Path, exchange: str) -> None:
    out = tmp_path / "out"
    r = run_cli("ohlc", exchange, "NOPE-USDT", "--span", "1h", "--start", "-2d",
                "--base-url", emulator.venue_url(exchange), "--out", str(out))
    assert r.code == 2 and "unknown symbol 'NOPE-USDT'" in r.stderr, r.stderr
    r = run_cli("ohlc", exchange, SYMBOL, "--span", "7m", "--start", "-2d",
                "--base-url", emulator.venue_url(exchange), "--out", str(out))
    assert r.code == 2 and f"not offered by {exchange}" in r.stderr, r.stderr
    assert not out.exists()


@pytest.mark.parametrize("exchange", [n for n, c in adapters().items() if c.trades is None])
def test_exchanges_without_trade_history_refuse_before_any_request(tmp_path: Path, exchange: str) -> None:
    # No emulator at all: the refusal must come before any request.
    r = run_cli("trades", exchange, SYMBOL, "--start", "-1d", "--base-url", "http://127.0.0.1:9",
                "--out", str(tmp_path / "out"))
    assert r.code == 2, r.stderr
    assert "does not serve trades history" in r.stderr
    assert not (tmp_path / "out").exists()


def test_exchanges_lists_every_registered_exchange_with_json() -> None:
    # Every adapter has a venue and every venue an adapter; the project's own (pyproject)
    # are all installed: entry points refresh only with `pip install -e .`.
    r = run_cli("exchanges", "--json")
    assert r.code == 0
    listed = {e["name"] for e in json.loads(r.stdout)}
    adapter_names = {ep.name for ep in entry_points(group="dccd.adapters")}
    venue_names = {ep.name for ep in entry_points(group="dccd.venues")}
    assert listed == adapter_names == venue_names
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert set(declared["dccd.adapters"]) == set(declared["dccd.venues"]) <= listed
