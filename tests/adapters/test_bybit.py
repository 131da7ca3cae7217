"""Bybit (spot) adapter on ``httpx.MockTransport``: the real kline sample, window paging,
errors inside HTTP 200, the 403 IP block, and trades declared unsupported before any
request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
from adapter_kit import FakeClock, Handler, ints, make_adapter, replies

from dccd_cli.adapters.bybit import BybitAdapter
from dccd_cli.errors import (
    BannedError,
    ExchangeError,
    UnknownSymbolError,
    UnsupportedRangeError,
)
from dccd_cli.exchange.adapter import Market
from dccd_cli.run import request
from dccd_cli.sources.rest.ohlc import paginate_ohlc
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MS, Span

# Real samples, verbatim from tests/fixtures/samples/bybit/ (Bybit's docs, ccxt's source,
# a third-party log; provenance in samples/SOURCES.md).
KLINE = """{"retCode": 0, "retMsg": "OK", "result": {"symbol": "BTCUSD", "category": "inverse",
 "list": [["1670608800000","17071","17073","17027","17055.5","268611","15.74462667"],
          ["1670605200000","17071.5","17071.5","17061","17071","4177","0.24469757"],
          ["1670601600000","17086.5","17088","16978","17071.5","6356","0.37288112"]]},
 "retExtInfo": {}, "time": 1672025956592}"""
RECENT_TRADE = """{"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [
 {"execId": "2100000000007764263", "symbol": "BTCUSDT", "price": "16618.49", "size": "0.00012",
  "side": "Buy", "time": "1672052955758", "isBlockTrade": false, "isRPITrade": true,
  "seq":"123456"}]}, "retExtInfo": {}, "time": 1672053054358}"""
ERROR_BAD_SYMBOL = ('{"retCode":10001,"retMsg":"Not supported symbols","result":{},'
                    '"retExtInfo":{},"time":1726147060461}')
ERROR_BAD_INTERVAL = ('{"retCode":10001,"retMsg":"Invalid period!","result":{},'
                      '"retExtInfo":{},"time":1762877810221}')

T0 = 1_704_067_200 * 10**9  # 2024-01-01T00:00Z
BTC = Market(symbol="BTC-USDT", native="BTCUSDT", base="BTC", quote="USDT")


def adapter(handler: Handler) -> tuple[BybitAdapter, FakeClock]:
    return make_adapter(BybitAdapter, handler, "https://bybit.test")


def ok(result: dict[str, Any]) -> str:
    return json.dumps({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                       "time": 1_704_067_200_000})


class FakeBybit:
    """/v5/market/kline: ``start``/``end`` inclusive on the open time (the candle containing
    ``start`` returned), newest first, anchored at ``end`` when over ``limit``."""

    def __init__(self, opens_ms: list[int]) -> None:
        self.opens = sorted(opens_ms)
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        self.requests.append(q)
        if q.get("category") != "spot":
            return httpx.Response(200, text=ERROR_BAD_SYMBOL)  # linear has no such symbol
        rows = [t for t in reversed(self.opens)
                if int(q.get("start", 0)) <= t <= int(q.get("end", 2**62))][: int(q["limit"])]
        return httpx.Response(200, text=ok({"symbol": q["symbol"], "category": "spot", "list": [
            [str(t), "1", "2", "0.5", "1.5", "10", "15"] for t in rows]}))


# -- the real sample -------------------------------------------------------------------------


async def test_kline_sample_columns_units_and_order() -> None:
    handler, seen = replies((200, KLINE))
    bybit, _ = adapter(handler)
    start = 1_670_601_600_000 * MS
    table = await bybit.fetch_ohlc_page(BTC, "1h", start, start + 3 * HOUR_NS, 3)
    q = seen[0].url.params
    assert seen[0].url.path == "/v5/market/kline"
    assert (q["category"], q["symbol"], q["interval"], q["limit"]) == ("spot", "BTCUSDT", "60", "3")
    assert int(q["start"]) == 1_670_601_600_000
    assert int(q["end"]) == 1_670_601_600_000 + 3 * 3_600_000 - 1  # the window's last ms
    # newest first on the wire -> oldest first out
    assert ints(table, "ts") == [t * MS for t in (1_670_601_600_000, 1_670_605_200_000, 1_670_608_800_000)]
    assert table.column("open").to_pylist() == [17086.5, 17071.5, 17071.0]
    assert table.column("high").to_pylist() == [17088.0, 17071.5, 17073.0]
    assert table.column("low").to_pylist() == [16978.0, 17061.0, 17027.0]
    assert table.column("close").to_pylist() == [17071.5, 17071.0, 17055.5]
    assert table.column("volume").to_pylist() == [6356.0, 4177.0, 268611.0]
    assert table.column("quote_volume").to_pylist() == [0.37288112, 0.24469757, 15.74462667]
    assert table.column("trades").null_count == 3 and table.column("vwap").null_count == 3


def test_capabilities() -> None:
    ohlc = BybitAdapter.ohlc
    assert ohlc is not None and ohlc.max_per_request == 1000
    assert dict(ohlc.spans) == {
        "1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "2h": "120",
        "4h": "240", "6h": "360", "12h": "720", "1d": "D", "1w": "W", "1M": "M",
    }
    assert (BybitAdapter.rate_limit.capacity, BybitAdapter.rate_limit.window_s) == (600, 5)


async def test_load_markets_follows_a_cursor() -> None:
    page1 = ok({"category": "spot", "nextPageCursor": "abc", "list": [
        {"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "status": "Trading"}]})
    page2 = ok({"category": "spot", "nextPageCursor": "", "list": [
        {"symbol": "ETHUSDT", "baseCoin": "ETH", "quoteCoin": "USDT", "status": "Trading"}]})
    handler, seen = replies((200, page1), (200, page2))
    bybit, _ = adapter(handler)
    markets = await bybit.load_markets()
    assert [(m.symbol, m.native) for m in markets] == [("BTC-USDT", "BTCUSDT"), ("ETH-USDT", "ETHUSDT")]
    assert seen[0].url.params["category"] == "spot" and seen[1].url.params["cursor"] == "abc"


# -- paging ---------------------------------------------------------------------------------


async def test_ohlc_paging_gets_every_bar_once() -> None:
    t0 = T0 // MS
    fake = FakeBybit([t0 + i * 3_600_000 for i in range(-10, 2510)])
    bybit, _ = adapter(fake)

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        return await bybit.fetch_ohlc_page(BTC, "1h", w0, w1, limit)

    pieces = [p async for p in paginate_ohlc(fetch, 1000, T0, T0 + 2500 * HOUR_NS, Span.parse("1h"))]
    ts = [t for p in pieces for t in ints(p.table, "ts")]
    assert ts == [T0 + i * HOUR_NS for i in range(2500)]
    assert len(fake.requests) == 3 and all(r["interval"] == "60" for r in fake.requests)


async def test_first_data_is_the_oldest_monthly_candle() -> None:
    t0 = T0 // MS
    fake = FakeBybit([t0 - 31 * 86_400_000, t0])
    bybit, _ = adapter(fake)
    assert await bybit.first_data_ns(BTC, "ohlc", "1h") == T0 - 31 * DAY_NS
    assert fake.requests[0]["interval"] == "M" and "start" not in fake.requests[0]


# -- errors ---------------------------------------------------------------------------------


async def test_unknown_symbol_inside_http_200() -> None:
    handler, seen = replies((200, ERROR_BAD_SYMBOL))
    bybit, _ = adapter(handler)
    with pytest.raises(UnknownSymbolError, match="Not supported symbols"):
        await bybit.fetch_ohlc_page(BTC, "1h", T0, T0 + DAY_NS, 24)
    assert len(seen) == 1


async def test_bad_interval_is_an_exchange_error_not_retried() -> None:
    handler, seen = replies((200, ERROR_BAD_INTERVAL))
    bybit, _ = adapter(handler)
    with pytest.raises(ExchangeError, match="Invalid period!"):
        await bybit.fetch_ohlc_page(BTC, "1h", T0, T0 + DAY_NS, 24)
    assert len(seen) == 1


async def test_too_many_visits_waits_until_the_reset_then_succeeds() -> None:
    body = '{"retCode":10006,"retMsg":"Too many visits!","result":{},"retExtInfo":{},"time":1704067200000}'
    handler, seen = replies(
        (200, body, {"X-Bapi-Limit-Reset-Timestamp": "1704067203000"}), (200, KLINE))
    bybit, clock = adapter(handler)
    table = await bybit.fetch_ohlc_page(BTC, "1h", T0, T0 + DAY_NS, 24)
    assert table.num_rows == 3 and len(seen) == 2
    assert bybit.http.stats.rate_limited == 1
    assert sum(clock.sleeps) >= 3.0  # until the reset the reply named


async def test_http_429_is_retried() -> None:
    handler, seen = replies((429, "", {"Retry-After": "1"}), (200, KLINE))
    bybit, _ = adapter(handler)
    assert (await bybit.fetch_ohlc_page(BTC, "1h", T0, T0 + DAY_NS, 24)).num_rows == 3
    assert len(seen) == 2 and bybit.http.stats.rate_limited == 1


async def test_http_403_is_a_ban_of_at_least_ten_minutes() -> None:
    handler, seen = replies((403, "access too frequent"), (200, KLINE))
    bybit, _ = adapter(handler)
    with pytest.raises(BannedError) as info:
        await bybit.fetch_ohlc_page(BTC, "1h", T0, T0 + DAY_NS, 24)
    assert info.value.retry_after == 600 and info.value.status == 403
    with pytest.raises(BannedError):  # later requests fail fast: asking would extend the block
        await bybit.fetch_ohlc_page(BTC, "1h", T0, T0 + DAY_NS, 24)
    assert len(seen) == 1


# -- trades ---------------------------------------------------------------------------------


def test_trades_are_declared_unsupported_with_what_bybit_offers_instead() -> None:
    # The sample shows why: recent-trade has no time or cursor, only the latest trades.
    assert set(json.loads(RECENT_TRADE)["result"]["list"][0]) >= {"execId", "time", "side"}
    assert BybitAdapter.trades is None and BybitAdapter.capability("trades") is None
    note = BybitAdapter.unsupported["trades"]
    assert "archive" in note and "not read yet" in note  # says what exists, offers no command that does not
    assert BybitAdapter.describe()["unsupported"]["trades"] == note


def test_trades_request_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(request, "get_adapter", lambda name: BybitAdapter)
    req = request.DownloadRequest(kind="trades", exchange="bybit", symbols=["BTC-USDT"],
                                  start="2024-01-01", end="2024-01-02", out=tmp_path)
    with pytest.raises(UnsupportedRangeError, match="archive"):
        request.validate(req)
