"""A third, independent reader: stock ccxt 4.5.90 pointed at the Binance venue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dccd_cli.emulator import EmulatorServer
from dccd_cli.timeutil import parse_time

ccxt = pytest.importorskip("ccxt")


@pytest.fixture(scope="module")
def binance(server: EmulatorServer) -> Iterator[Any]:
    ex = ccxt.binance({"enableRateLimit": False,
                       "options": {"fetchMarkets": {"types": ["spot"]}}})
    ex.urls["api"]["public"] = server.venue_url("binance") + "/api/v3"
    yield ex


def test_ccxt_loads_markets(binance: Any) -> None:
    markets = binance.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "SOL/EUR"} <= set(markets)
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["spot"], btc["active"]) == ("BTCUSDT", True, True)
    assert btc["precision"]["price"] == 0.01 and btc["precision"]["amount"] == 0.00001


def test_ccxt_fetch_ohlcv_matches_the_venue(binance: Any, api: Any) -> None:
    since = api.t0 // 1_000_000
    candles = binance.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=24)
    rows = api.get("klines", symbol="BTCUSDT", interval="1h", startTime=since, limit=24)
    assert len(candles) == 24
    assert [c[0] for c in candles] == [r[0] for r in rows]
    assert [c[1:6] for c in candles] == [[float(x) for x in r[1:6]] for r in rows]
    monthly = binance.fetch_ohlcv("ETH/USDT", "1M", since=since, limit=2)
    assert monthly[0][0] == parse_time("2024-02-01", now=0) // 1_000_000  # first open >= since


def test_ccxt_fetch_trades_matches_agg_trades(binance: Any, api: Any) -> None:
    since = api.t0 // 1_000_000
    trades = binance.fetch_trades("BTC/USDT", since=since, limit=50)
    raw = api.get("aggTrades", symbol="BTCUSDT", startTime=since, endTime=since + 3_600_000,
                  limit=50)
    assert [int(t["id"]) for t in trades] == [r["a"] for r in raw]
    assert [t["price"] for t in trades] == [float(r["p"]) for r in raw]
    assert [t["side"] for t in trades] == ["sell" if r["m"] else "buy" for r in raw]
    assert all(t["timestamp"] >= since for t in trades)
