"""Bitstamp adapter on ``httpx.MockTransport``: real recorded replies, ``end`` + ``limit``
paging, the one-request day of trades shared by every window, and error bodies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pyarrow as pa
import pytest
from adapter_kit import Handler, ints, make_adapter, replies

from dccd_cli.adapters.bitstamp import BitstampAdapter
from dccd_cli.errors import ExchangeError, UnknownSymbolError
from dccd_cli.exchange.adapter import Market
from dccd_cli.pieces import Chunk
from dccd_cli.sources.rest.ohlc import paginate_ohlc
from dccd_cli.sources.rest.trades import paginate_trades
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS, NS, Span

# Real replies recorded by ccxt (ccxt/ccxt ts/src/test/static/response/bitstamp.json,
# fetchOHLCV and fetchTrades for BTC/USDT), verbatim.
OHLC = """{"data": {"pair": "BTC/USDT", "ohlc": [{"timestamp": "1710327600", "open": "73241",
 "high": "73293", "low": "73240", "close": "73285", "volume": "0.01076655"}]}}"""
TRANSACTIONS = """[{"amount": "0.00055284", "date": "1710327533", "price": "73254",
 "tid": "326595342", "type": "0"}]"""
# The market list in the shape ccxt's loader needs (docs/ccxt.md#bitstamp).
MARKETS = """[{"market_symbol":"btcusdt","base_currency":"BTC","counter_currency":"USDT",
 "base_decimals":8,"counter_decimals":2,"trading":"Enabled","market_type":"SPOT",
 "description":"Bitcoin / Tether","minimum_order_value":"10"}]"""

T0 = 1_704_067_200 * NS  # 2024-01-01T00:00Z
BTC = Market(symbol="BTC-USDT", native="btcusdt", base="BTC", quote="USDT")


def adapter(handler: Handler) -> BitstampAdapter:
    return make_adapter(BitstampAdapter, handler, "https://bitstamp.test")[0]


class FakeBitstamp:
    """/ohlc: with ``end``, the ``limit`` bars opening at or before it (``start`` ignored
    when ``end`` is given, as documented); /transactions?time=day: newest first."""

    def __init__(self, opens_s: list[int], trades: list[tuple[int, int]] | None = None) -> None:
        self.opens = sorted(opens_s)
        self.trades = trades or []
        self.requests: list[httpx.URL] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        q = request.url.params
        if "/btcusdt/" not in request.url.path:
            return httpx.Response(404, text="Not found")
        if request.url.path.startswith("/api/v2/transactions/"):
            return httpx.Response(200, text=json.dumps([
                {"date": str(ts), "tid": str(tid), "price": "100.5", "amount": "0.25",
                 "type": str(tid % 2)} for ts, tid in sorted(self.trades, reverse=True)]))
        limit = int(q["limit"])
        if "end" in q:
            rows = [t for t in self.opens if t <= int(q["end"])][-limit:]
        else:
            rows = self.opens[-limit:]
        return httpx.Response(200, text=json.dumps({"data": {"pair": "BTC/USDT", "ohlc": [
            {"timestamp": str(t), "open": "1", "high": "2", "low": "0.5", "close": "1.5",
             "volume": "3"} for t in rows]}}))


async def test_ohlc_sample_and_request() -> None:
    handler, seen = replies((200, OHLC))
    bitstamp = adapter(handler)
    start = 1_710_327_600 * NS
    table = await bitstamp.fetch_ohlc_page(BTC, "1h", start, start + HOUR_NS, 1)
    url = seen[0].url
    assert url.path == "/api/v2/ohlc/btcusdt/"
    q = url.params
    assert (q["step"], q["limit"], q["exclude_current_candle"]) == ("3600", "1", "true")
    assert int(q["end"]) == 1_710_327_600 + 3600 - 1 and "start" not in q  # end wins anyway
    assert ints(table, "ts") == [1_710_327_600 * NS]
    assert table.column("open").to_pylist() == [73241.0]
    assert table.column("high").to_pylist() == [73293.0]
    assert table.column("low").to_pylist() == [73240.0]
    assert table.column("close").to_pylist() == [73285.0]
    assert table.column("volume").to_pylist() == [0.01076655]
    for col in ("quote_volume", "vwap", "trades"):
        assert table.column(col).null_count == 1


async def test_transactions_sample() -> None:
    handler, seen = replies((200, TRANSACTIONS))
    bitstamp = adapter(handler)
    t = 1_710_327_533 * NS
    table, cursor = await bitstamp.fetch_trades_page(BTC, t - HOUR_NS, t + HOUR_NS, 1000, None)
    assert seen[0].url.path == "/api/v2/transactions/btcusdt/"
    assert seen[0].url.params["time"] == "day"
    assert cursor is None
    assert table.to_pylist()[0] | {"ts": None} == {
        "ts": None, "id": "326595342", "price": 73254.0, "amount": 0.00055284, "side": "buy"}
    assert ints(table, "ts") == [t]


async def test_load_markets() -> None:
    handler, seen = replies((200, MARKETS))
    [m] = await adapter(handler).load_markets()
    assert seen[0].url.path == "/api/v2/markets/"
    assert (m.symbol, m.native, m.base, m.quote) == ("BTC-USDT", "btcusdt", "BTC", "USDT")


def test_capabilities() -> None:
    ohlc, trades = BitstampAdapter.ohlc, BitstampAdapter.trades
    assert ohlc is not None and trades is not None
    assert ohlc.spans["1m"] == "60" and ohlc.spans["3d"] == "259200" and len(ohlc.spans) == 12
    assert ohlc.max_per_request == 1000
    assert trades.history == "recent" and trades.recent_ns is not None
    assert trades.recent_ns < DAY_NS  # inside the list's 24 h, with room for the run's time
    assert BitstampAdapter.rate_limit.capacity / BitstampAdapter.rate_limit.window_s <= 8000 / 600


async def test_ohlc_paging_by_end_gets_every_bar_once_even_with_missing_bars() -> None:
    t0 = T0 // NS
    opens = [t0 + i * 60 for i in range(-5, 2505) if i % 97 != 13]  # a quiet minute now and then
    fake = FakeBitstamp(opens)
    bitstamp = adapter(fake)

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        return await bitstamp.fetch_ohlc_page(BTC, "1m", w0, w1, limit)

    pieces = [p async for p in paginate_ohlc(fetch, 1000, T0, T0 + 2500 * MINUTE_NS, Span.parse("1m"))]
    assert all(isinstance(p, Chunk) for p in pieces)
    ts = [t for p in pieces for t in ints(p.table, "ts")]
    assert ts == [t * NS for t in opens if t0 <= t < t0 + 2500 * 60]
    assert len(fake.requests) == 3


async def test_one_day_list_serves_every_window() -> None:
    """The range is split into hourly windows drained concurrently; they all read the one
    reply of ``time=day`` rather than downloading the day 23 times."""
    t0 = T0 // NS
    trades = [(t0 + k * 61, 5000 + k) for k in range(-100, 24 * 59)]
    fake = FakeBitstamp([], trades)
    bitstamp = adapter(fake)

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        return await bitstamp.fetch_trades_page(BTC, w0, w1, limit, cursor)

    end = T0 + 23 * HOUR_NS
    pieces = [p async for p in paginate_trades(fetch, 1_000_000, T0, end, concurrency=8)]
    assert all(isinstance(p, Chunk) for p in pieces)
    got = [int(i) for p in pieces for i in p.table.column("id").to_pylist()]
    assert got == [tid for ts, tid in trades if t0 <= ts < t0 + 23 * 3600]
    sides = {s for p in pieces for s in p.table.column("side").to_pylist()}
    assert sides == {"buy", "sell"}
    assert len(fake.requests) == 1


async def test_first_data_pages_back_by_end() -> None:
    step = 259_200
    opens = [1_313_000_000 // step * step + i * step for i in range(1800)]  # from 2011
    fake = FakeBitstamp(opens)
    first = await adapter(fake).first_data_ns(BTC, "ohlc", "1d")
    assert first == opens[0] * NS
    assert len(fake.requests) == 2 and "end" not in fake.requests[0].params
    assert int(fake.requests[1].params["end"]) == opens[800] - 1


async def test_unknown_pair_is_404() -> None:
    bitstamp = adapter(FakeBitstamp([]))
    other = Market(symbol="FOO-USD", native="foousd", base="FOO", quote="USD")
    with pytest.raises(UnknownSymbolError):
        await bitstamp.fetch_ohlc_page(other, "1h", T0, T0 + DAY_NS, 24)
    with pytest.raises(UnknownSymbolError):
        await bitstamp.fetch_trades_page(other, T0, T0 + HOUR_NS, 1000, None)


async def test_field_error_is_an_exchange_error_not_retried() -> None:
    body = '{"status": "error", "reason": {"step": ["Not a valid choice."]}, "code": "400.001"}'
    handler, seen = replies((400, body))
    with pytest.raises(ExchangeError, match="step: Not a valid choice.") as info:
        await adapter(handler).fetch_ohlc_page(BTC, "1h", T0, T0 + DAY_NS, 24)
    assert not isinstance(info.value, UnknownSymbolError) and len(seen) == 1


@pytest.mark.parametrize("status", [200, 400, 429])
async def test_rate_limit_reply_is_retried(status: int) -> None:
    body = ('{"status": "error", "reason": "Request rejected due to exceeded rate limit", '
            '"code": "400.002"}')
    handler, seen = replies((status, body), (200, OHLC))
    bitstamp = adapter(handler)
    assert (await bitstamp.fetch_ohlc_page(BTC, "1h", T0, T0 + DAY_NS, 24)).num_rows == 1
    assert len(seen) == 2 and bitstamp.http.stats.rate_limited == 1


async def test_failed_day_list_is_asked_again() -> None:
    handler, seen = replies((400, '{"status": "error", "reason": "oops", "code": "400.009"}'),
                            (200, TRANSACTIONS))
    bitstamp = adapter(handler)
    t = 1_710_327_533 * NS
    with pytest.raises(ExchangeError):
        await bitstamp.fetch_trades_page(BTC, t - HOUR_NS, t + HOUR_NS, 1000, None)
    table, _ = await bitstamp.fetch_trades_page(BTC, t - HOUR_NS, t + HOUR_NS, 1000, None)
    assert table.num_rows == 1 and len(seen) == 2
