"""A third reader: stock ccxt pointed at the emulator gets the rows dccd stores.

ccxt was written by others from the real exchange; if it and dccd agree on what the venue
serves, both the venue and our adapter read the exchange's spec the same way.
"""

from __future__ import annotations

from pathlib import Path

import ccxt
import pyarrow as pa
import pyarrow.dataset as ds
from dccd_testing import run_cli

from dccd_cli.emulator import EmulatorServer

JAN1_MS = 1_704_067_200_000
FEB1_MS = 1_706_745_600_000


def ccxt_binance(emulator: EmulatorServer) -> ccxt.binance:
    ex = ccxt.binance({"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["spot"]}}})
    ex.urls["api"]["public"] = emulator.venue_url("binance") + "/api/v3"
    return ex


def test_ccxt_fetches_the_same_candles(emulator: EmulatorServer, tmp_path: Path) -> None:
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-01-01", "--end", "2024-02-01",
                "--base-url", emulator.venue_url("binance"), "--out", str(tmp_path), "--quiet")
    assert r.code == 0, r.stderr
    ours = ds.dataset(tmp_path / "ohlc", partitioning="hive").to_table().sort_by("ts")

    ex = ccxt_binance(emulator)
    markets = ex.load_markets()
    assert "BTC/USDT" in markets and markets["BTC/USDT"]["id"] == "BTCUSDT"
    theirs = ex.fetch_ohlcv("BTC/USDT", "1h", since=JAN1_MS, limit=1000, params={"endTime": FEB1_MS - 1})
    assert len(theirs) == ours.num_rows == 744
    assert [row[0] * 1_000_000 for row in theirs] == ours.column("ts").cast(pa.int64()).to_pylist()
    for i, name in enumerate(["open", "high", "low", "close", "volume"], start=1):
        assert [row[i] for row in theirs] == ours.column(name).to_pylist(), name


def test_ccxt_fetches_the_same_trades(emulator: EmulatorServer, tmp_path: Path) -> None:
    start, end = JAN1_MS, JAN1_MS + 3 * 3_600_000
    r = run_cli("trades", "binance", "BTC-USDT", "--start", "2024-01-01T00:00", "--end", "2024-01-01T03:00",
                "--base-url", emulator.venue_url("binance"), "--out", str(tmp_path), "--quiet")
    assert r.code == 0, r.stderr
    ours = ds.dataset(tmp_path / "trades", partitioning="hive").to_table()

    ex = ccxt_binance(emulator)
    trades = ex.fetch_trades("BTC/USDT", since=start, limit=1000, params={"endTime": end - 1})
    collected = list(trades)
    while len(trades) == 1000:  # follow the venue's fromId cursor through ccxt
        trades = ex.fetch_trades("BTC/USDT", limit=1000, params={"fromId": int(trades[-1]["id"]) + 1})
        collected.extend(t for t in trades if t["timestamp"] < end)
        if trades and trades[-1]["timestamp"] >= end:
            break
    assert len(collected) == ours.num_rows > 100
    by_id = {t["id"]: t for t in collected}
    assert set(by_id) == set(ours.column("id").to_pylist())
    ts = ours.column("ts").cast(pa.int64()).to_pylist()
    for i, row in enumerate(ours.drop_columns(["ts"]).to_pylist()):
        t = by_id[row["id"]]
        assert (t["price"], t["amount"], t["side"]) == (row["price"], row["amount"], row["side"])
        assert t["timestamp"] * 1_000_000 == ts[i]
