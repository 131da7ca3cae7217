"""BitMEX adapter on ``httpx.MockTransport``: the real samples (bucket END timestamps ->
bar opens, notional units), trades sharing one millisecond across page seams, and errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pytest
from adapter_kit import FakeClock, Handler, ints, make_adapter, replies

from dccd_cli.adapters.bitmex import BitmexAdapter
from dccd_cli.errors import ExchangeError, UnknownSymbolError
from dccd_cli.exchange.adapter import Market
from dccd_cli.pieces import Chunk
from dccd_cli.sources.rest.ohlc import paginate_ohlc
from dccd_cli.sources.rest.trades import paginate_trades
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS, MS, Span

# Real samples, verbatim from tests/fixtures/samples/bitmex/ (a real /trade/bucketed reply
# quoted in ExchangeSharp, a real /trade row from BitMEX's delta-server README).
TRADE_BUCKETED = """[
{"timestamp":"2017-01-01T00:00:00.000Z","symbol":"XBTUSD","open":968.29,"high":968.29,"low":968.29,"close":968.29,"trades":0,"volume":0,"vwap":null,"lastSize":null,"turnover":0,"homeNotional":0,"foreignNotional":0},
{"timestamp":"2017-01-01T00:01:00.000Z","symbol":"XBTUSD","open":968.29,"high":968.76,"low":968.49,"close":968.7,"trades":17,"volume":12993,"vwap":968.72,"lastSize":2000,"turnover":1341256747,"homeNotional":13.412567469999997,"foreignNotional":12993}
]"""
TRADE = """[{"timestamp": "2019-01-05T21:45:31.597Z", "symbol": "XBTUSD", "side": "Sell",
 "size": 180, "price": 3838, "tickDirection": "ZeroMinusTick",
 "trdMatchID": "cb96e6d2-0bc9-d921-dafe-f96857773931", "grossValue": 4689900,
 "homeNotional": 0.046899, "foreignNotional": 180}]"""
# The instrument in the shape ccxt's loader needs (docs/ccxt.md#bitmex), plus an inverse perp.
INSTRUMENTS = """[
 {"symbol":"XBT_USDT","typ":"IFXXXP","underlying":"XBT","quoteCurrency":"USDT","state":"Open",
  "lotSize":1000,"tickSize":0.5,"listing":"2022-10-04T12:00:00.000Z"},
 {"symbol":"XBTUSD","typ":"FFWCSX","underlying":"XBT","quoteCurrency":"USD","state":"Open"}]"""

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z, ms
BTC = Market(symbol="BTC-USDT", native="XBT_USDT", base="BTC", quote="USDT")


def adapter(handler: Handler) -> tuple[BitmexAdapter, FakeClock]:
    return make_adapter(BitmexAdapter, handler, "https://bitmex.test")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class FakeBitmex:
    """/trade and /trade/bucketed: oldest first, ``startTime``/``endTime`` inclusive,
    ``start`` a row offset, at most 1000 rows (``count``)."""

    def __init__(self, trades: list[tuple[int, str]] = (), bucket_ends: list[int] = ()) -> None:  # type: ignore[assignment]
        self.trades = list(trades)  # (ts ms, id) in BitMEX's own order
        self.bucket_ends = sorted(bucket_ends)
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        self.requests.append(q)
        lo = parse_iso(q["startTime"]) if "startTime" in q else -1
        hi = parse_iso(q["endTime"]) if "endTime" in q else 2**62
        skip, count = int(q.get("start", 0)), min(int(q.get("count", 100)), 1000)
        if request.url.path == "/api/v1/trade":
            rows = [t for t in self.trades if lo <= t[0] <= hi][skip: skip + count]
            return httpx.Response(200, text=json.dumps([
                {"timestamp": iso(ts), "symbol": "XBT_USDT", "side": "Buy" if n % 3 else "Sell",
                 "size": 1000, "price": 42000.5, "trdMatchID": tid, "homeNotional": 0.001,
                 "foreignNotional": 42.0005} for n, (ts, tid) in enumerate(rows)]))
        ends = [t for t in self.bucket_ends if lo <= t <= hi][skip: skip + count]
        return httpx.Response(200, text=json.dumps([
            {"timestamp": iso(t), "symbol": "XBT_USDT", "open": 1, "high": 2, "low": 0.5,
             "close": 1.5, "trades": 3, "volume": 3000, "vwap": 1.2, "homeNotional": 3.0,
             "foreignNotional": 3.6} for t in ends]))


# -- the real samples ------------------------------------------------------------------------


async def test_bucketed_sample_end_timestamps_become_bar_opens() -> None:
    handler, seen = replies((200, TRADE_BUCKETED))
    bitmex, _ = adapter(handler)
    start = datetime(2016, 12, 31, 23, 59, tzinfo=UTC)
    start_ns = int(start.timestamp()) * 10**9
    table = await bitmex.fetch_ohlc_page(BTC, "1m", start_ns, start_ns + 2 * MINUTE_NS, 2)
    q = seen[0].url.params
    assert seen[0].url.path == "/api/v1/trade/bucketed"
    assert (q["binSize"], q["symbol"], q["partial"], q["reverse"], q["count"]) == (
        "1m", "XBT_USDT", "false", "false", "2")
    # bars opening in [23:59, 00:01) end in [00:00, 00:02): asked one ms inside that range
    assert q["startTime"] == "2016-12-31T23:59:59.999Z"
    assert q["endTime"] == "2017-01-01T00:01:59.999Z"
    assert ints(table, "ts") == [start_ns, start_ns + MINUTE_NS]  # bucket END - 1m
    assert table.column("open").to_pylist() == [968.29, 968.29]
    assert table.column("high").to_pylist() == [968.29, 968.76]
    assert table.column("low").to_pylist() == [968.29, 968.49]
    assert table.column("close").to_pylist() == [968.29, 968.7]
    # volume in base units (homeNotional), not contracts (volume 12993)
    assert table.column("volume").to_pylist() == [0.0, 13.412567469999997]
    assert table.column("quote_volume").to_pylist() == [0.0, 12993.0]
    assert table.column("vwap").to_pylist() == [None, 968.72]
    assert table.column("trades").to_pylist() == [0, 17]


async def test_trade_sample_amount_in_base_units() -> None:
    handler, seen = replies((200, TRADE))
    bitmex, _ = adapter(handler)
    t = parse_iso("2019-01-05T21:45:31.597Z")
    table, cursor = await bitmex.fetch_trades_page(BTC, t * MS, (t + 1000) * MS, 1000, None)
    q = seen[0].url.params
    assert (q["symbol"], q["count"], q["reverse"]) == ("XBT_USDT", "1000", "false")
    assert (q["startTime"], q["endTime"]) == ("2019-01-05T21:45:31.597Z", "2019-01-05T21:45:32.597Z")
    assert "start" not in q and cursor is None
    assert table.to_pylist()[0] | {"ts": None} == {
        "ts": None, "id": "cb96e6d2-0bc9-d921-dafe-f96857773931", "price": 3838.0,
        "amount": 0.046899, "side": "sell"}  # 180 USD contracts = 0.046899 XBT
    assert ints(table, "ts") == [t * MS]


async def test_load_markets_keeps_spot_and_renames_xbt() -> None:
    handler, seen = replies((200, INSTRUMENTS))
    bitmex, _ = adapter(handler)
    [m] = await bitmex.load_markets()
    assert seen[0].url.path == "/api/v1/instrument/active"
    assert (m.symbol, m.native, m.base, m.quote) == ("BTC-USDT", "XBT_USDT", "BTC", "USDT")
    assert m.listed_ns == parse_iso("2022-10-04T12:00:00.000Z") * MS


def test_capabilities() -> None:
    ohlc, trades = BitmexAdapter.ohlc, BitmexAdapter.trades
    assert ohlc is not None and trades is not None
    assert dict(ohlc.spans) == {"1m": "1m", "5m": "5m", "1h": "1h", "1d": "1d"}
    assert ohlc.max_per_request == trades.max_per_request == 1000
    assert trades.page_direction == "forward" and trades.history == "full"
    assert BitmexAdapter.rate_limit.capacity / BitmexAdapter.rate_limit.window_s <= 0.5


# -- paging ---------------------------------------------------------------------------------


async def test_ohlc_paging_by_bucket_end() -> None:
    fake = FakeBitmex(bucket_ends=[T0 + i * 3_600_000 for i in range(-5, 2505)])
    bitmex, _ = adapter(fake)

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        return await bitmex.fetch_ohlc_page(BTC, "1h", w0, w1, limit)

    start = T0 * MS
    pieces = [p async for p in paginate_ohlc(fetch, 1000, start, start + 2400 * HOUR_NS, Span.parse("1h"))]
    ts = [t for p in pieces for t in ints(p.table, "ts")]
    assert ts == [start + i * HOUR_NS for i in range(2400)]  # the bucket ending at T0 is left out
    assert len(fake.requests) == 3


async def test_trades_sharing_one_millisecond_across_page_seams() -> None:
    """2500 fills in one millisecond (more than two pages) and 1001 in another: resuming AT
    the newest millisecond repeats trades the paginator drops by id, and a page that is all
    one millisecond moves on by row offset. Every trade comes once, none is lost."""
    trades: list[tuple[int, str]] = []
    for k in range(0, 3_600_000, 997):
        n = 2500 if k == 997 * 1000 else 1001 if k == 997 * 2000 else 1 + k % 3
        trades += [(T0 + k, f"{k}-{j}") for j in range(n)]
    trades.append((T0 + 3_600_000, "at-the-end"))  # excluded: the window is [start, end)
    fake = FakeBitmex(trades)
    bitmex, _ = adapter(fake)

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        return await bitmex.fetch_trades_page(BTC, w0, w1, limit, cursor)

    pieces = [p async for p in paginate_trades(fetch, 1000, T0 * MS, (T0 + 3_600_000) * MS)]
    assert all(isinstance(p, Chunk) for p in pieces)
    got = [i for p in pieces for i in p.table.column("id").to_pylist()]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(tid for ts, tid in trades if ts < T0 + 3_600_000)
    offsets = [int(r["start"]) for r in fake.requests if "start" in r]
    # only where a page was one millisecond whole: twice for the 2500, once for the 1001
    assert offsets == [1000, 2000, 1000]
    sides = {s for p in pieces for s in p.table.column("side").to_pylist()}
    assert sides == {"buy", "sell"}


async def test_first_data_is_one_request_from_the_start() -> None:
    fake = FakeBitmex([(T0 + 5, "a"), (T0 + 9, "b")], [T0 + 3_600_000, T0 + 7_200_000])
    bitmex, _ = adapter(fake)
    assert await bitmex.first_data_ns(BTC, "ohlc", "1h") == T0 * MS  # end 01:00 -> open 00:00
    assert await bitmex.first_data_ns(BTC, "trades", None) == (T0 + 5) * MS
    assert all(r["count"] == "1" and r["reverse"] == "false" for r in fake.requests)


# -- errors ---------------------------------------------------------------------------------


async def test_429_waits_retry_after() -> None:
    body = '{"error": {"message": "Rate limit exceeded, retry in 7 seconds.", "name": "RateLimitError"}}'
    handler, seen = replies((429, body, {"Retry-After": "7", "X-RateLimit-Remaining": "0"}),
                            (200, TRADE))
    bitmex, clock = adapter(handler)
    table, _ = await bitmex.fetch_trades_page(BTC, 0, DAY_NS * 20000, 1000, None)
    assert table.num_rows == 1 and len(seen) == 2
    assert bitmex.http.stats.rate_limited == 1 and sum(clock.sleeps) >= 7


async def test_503_overloaded_is_retried_after_half_a_second() -> None:
    body = '{"error": {"message": "The system is currently overloaded. Please try again later.", "name": "HTTPError"}}'
    handler, seen = replies((503, body), (200, TRADE))
    bitmex, clock = adapter(handler)
    table, _ = await bitmex.fetch_trades_page(BTC, 0, DAY_NS * 20000, 1000, None)
    assert table.num_rows == 1 and len(seen) == 2 and bitmex.http.stats.retries == 1
    assert max(clock.sleeps) >= 0.5


async def test_error_about_the_symbol_is_unknown_symbol() -> None:
    handler, _ = replies((400, '{"error": {"message": "Invalid symbol FOO_USDT", "name": "HTTPError"}}'))
    bitmex, _ = adapter(handler)
    with pytest.raises(UnknownSymbolError, match="Invalid symbol"):
        await bitmex.fetch_ohlc_page(BTC, "1m", T0 * MS, T0 * MS + HOUR_NS, 60)


async def test_other_errors_keep_bitmex_words() -> None:
    handler, seen = replies((400, '{"error": {"message": "binSize is invalid", "name": "ValidationError"}}'))
    bitmex, _ = adapter(handler)
    with pytest.raises(ExchangeError, match="binSize is invalid"):
        await bitmex.fetch_ohlc_page(BTC, "1m", T0 * MS, T0 * MS + HOUR_NS, 60)
    assert len(seen) == 1
