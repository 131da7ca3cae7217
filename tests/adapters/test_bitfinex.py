"""Bitfinex adapter on ``httpx.MockTransport``: pair names, the [MTS, O, C, H, L, V] column
order, the amount's sign as the side, trades paged *at* the newest millisecond (many trades
share one) with repeats dropped by id, the fallback from a refused 10000 limit, and the
``["error", code, msg]`` replies."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pytest
from adapter_kit import FakeClock, Handler, make_adapter, replies
from dccd_testing import SAMPLES as samples_dir

from dccd_cli.adapters.bitfinex import BitfinexAdapter
from dccd_cli.errors import ExchangeError, ProtocolError, RateLimitedError, ServerError
from dccd_cli.exchange.adapter import Market
from dccd_cli.pieces import Chunk
from dccd_cli.sources.rest.ohlc import paginate_ohlc
from dccd_cli.sources.rest.trades import paginate_trades
from dccd_cli.timeutil import DAY_NS, MINUTE_NS, MS, Span

# Real sample, verbatim from tests/fixtures/samples/bitfinex/ (provenance in SOURCES.md).
ERROR_RATELIMIT = '["error",11010,"ratelimit: error"]'
# Rows quoted by Bitfinex's candles docs (WebSocket snapshot, same row layout as REST).
DOC_CANDLES = [[1574698260000, 7379.785503, 7383.8, 7388.3, 7379.785503, 1.68829482],
               [1574698200000, 7399.9, 7379.7, 7399.9, 7371.8, 41.63633658]]
SAMPLES = samples_dir / "bitfinex"

T0 = 1_704_067_200_000  # 2024-01-01T00:00Z, in ms
BTC = Market(symbol="BTC-USD", native="tBTCUSD", base="BTC", quote="USD")


def adapter(handler: Handler) -> tuple[BitfinexAdapter, FakeClock]:
    return make_adapter(BitfinexAdapter, handler, "https://bitfinex.test")


def test_embedded_sample_is_verbatim() -> None:
    assert (SAMPLES / "error_ratelimit.json").read_text().strip() == ERROR_RATELIMIT


async def test_markets_split_pairs_and_rename_ust() -> None:
    body = [["BTCUSD", "BTCUST", "ETHUDC", "TESTBTC:TESTUSD", "AVAX:USD", "ODD"]]
    handler, seen = replies((200, body))
    ex, _ = adapter(handler)
    got = {m.symbol: m.native for m in await ex.load_markets()}
    assert seen[0].url.path == "/v2/conf/pub:list:pair:exchange"
    assert got == {"BTC-USD": "tBTCUSD", "BTC-USDT": "tBTCUST", "ETH-USDC": "tETHUDC",
                   "TESTBTC-TESTUSD": "tTESTBTC:TESTUSD", "AVAX-USD": "tAVAX:USD"}
    await ex.http.aclose()


async def test_candles_column_order_and_request() -> None:
    handler, seen = replies((200, list(reversed(DOC_CANDLES))))  # sort=1: oldest first
    ex, _ = adapter(handler)
    start = 1574698200000 * MS
    table = await ex.fetch_ohlc_page(BTC, "1m", start, start + 2 * MINUTE_NS, 2)
    assert seen[0].url.path == "/v2/candles/trade:1m:tBTCUSD/hist"
    q = seen[0].url.params
    assert (q["start"], q["end"], q["limit"], q["sort"]) == ("1574698200000", "1574698320000", "2", "1")
    rows = table.to_pylist()
    assert rows[1]["ts"] == datetime(2019, 11, 25, 16, 11, tzinfo=UTC)
    # [MTS, OPEN, CLOSE, HIGH, LOW, VOLUME]: close comes before high and low.
    assert (rows[1]["open"], rows[1]["high"], rows[1]["low"], rows[1]["close"]) == (
        7379.785503, 7388.3, 7379.785503, 7383.8)
    assert rows[1]["volume"] == 1.68829482 and rows[1]["vwap"] is None
    await ex.http.aclose()


def candle_server(max_limit: int, gaps: set[int]) -> tuple[Handler, list[int]]:
    """Candles with ``start``/``end`` inclusive, gaps for quiet minutes, and 500
    ``limit: invalid`` above ``max_limit`` (the older, measured cap)."""
    limits: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        limit, start, end = int(q["limit"]), int(q["start"]), int(q["end"])
        limits.append(limit)
        if limit > max_limit:
            return httpx.Response(500, json=["error", 10020, "limit: invalid"])
        first = -(-start // 60_000) * 60_000
        rows = [[t, 1, 3, 4, 0.5, 2] for t in range(first, end + 1, 60_000) if t not in gaps]
        return httpx.Response(200, json=rows[:limit])

    return handler, limits


async def test_refused_limit_falls_back_to_1000_and_pages_within_the_window() -> None:
    gaps = {T0 + k * 60_000 for k in (0, 999, 1000, 4321, 9999)}
    handler, limits = candle_server(1000, gaps)
    ex, _ = adapter(handler)

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        return await ex.fetch_ohlc_page(BTC, "1m", w0, w1, limit)

    end = T0 + 12_000 * 60_000
    pieces = [p async for p in paginate_ohlc(fetch, 10_000, T0 * MS, end * MS, Span.parse("1m"))]
    assert all(isinstance(p, Chunk) for p in pieces)
    got = [t.value // MS for p in pieces for t in p.table.column("ts")]
    assert got == [t for t in range(T0, end, 60_000) if t not in gaps]
    assert limits[0] == 10_000 and max(limits[1:]) == 1000  # refused once, then remembered
    assert limits.count(10_000) == 1
    await ex.http.aclose()


async def test_weeks_and_months_must_sit_on_our_grid() -> None:
    monday = 1_704_067_200_000  # 2024-01-01 was a Monday
    ex, _ = adapter(replies((200, [[monday, 1, 2, 3, 0.5, 9], [monday + 7 * 86_400_000, 1, 2, 3, 0.5, 9]]))[0])
    assert (await ex.fetch_ohlc_page(BTC, "1w", monday * MS, monday * MS + 14 * DAY_NS, 2)).num_rows == 2
    await ex.http.aclose()
    thursday = monday + 3 * 86_400_000
    ex, _ = adapter(replies((200, [[thursday, 1, 2, 3, 0.5, 9]]))[0])
    with pytest.raises(ProtocolError, match="off dccd's 1w grid"):
        await ex.fetch_ohlc_page(BTC, "1w", monday * MS, monday * MS + 14 * DAY_NS, 2)
    await ex.http.aclose()
    ex, _ = adapter(replies((200, [[monday, 1, 2, 3, 0.5, 9], [1_706_745_600_000, 1, 2, 3, 0.5, 9]]))[0])
    assert (await ex.fetch_ohlc_page(BTC, "1M", monday * MS, 1_709_251_200_000 * MS, 2)).num_rows == 2
    await ex.http.aclose()


async def test_trade_amount_sign_is_the_side_and_amounts_are_positive() -> None:
    # The first row is quoted by Bitfinex's trades docs; the second is the same as a sell.
    rows = [[401597393, 1574694475039, 0.005, 7244.9], [401597394, 1574694475039, -0.25, 7245]]
    handler, seen = replies((200, rows))
    ex, _ = adapter(handler)
    start = 1574694420000 * MS
    table, cursor = await ex.fetch_trades_page(BTC, start, start + MINUTE_NS, 10_000, None)
    assert cursor is None
    q = seen[0].url.params
    assert seen[0].url.path == "/v2/trades/tBTCUSD/hist"
    assert (q["start"], q["end"], q["limit"], q["sort"]) == ("1574694420000", "1574694480000", "10000", "1")
    got = table.to_pylist()
    assert [(r["id"], r["amount"], r["side"], r["price"]) for r in got] == [
        ("401597393", 0.005, "buy", 7244.9), ("401597394", 0.25, "sell", 7245.0)]
    assert got[0]["ts"] == datetime(2019, 11, 25, 15, 7, 55, 39000, tzinfo=UTC)
    await ex.http.aclose()


class FakeTrades:
    """``/trades/.../hist`` over a history where many trades share a millisecond."""

    def __init__(self, n: int, seed: int = 5) -> None:
        rng = random.Random(seed)
        self.rows: list[list[Any]] = []
        t = T0
        for i in range(n):
            if rng.random() > 0.6:
                t += rng.randrange(1, 30_000)
            amount = round(rng.uniform(0.001, 2), 6) * (-1 if rng.random() < 0.5 else 1)
            self.rows.append([9_000_000 + i, t, amount, 42_000.5])
        self.starts: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        start, end, limit = int(q["start"]), int(q["end"]), int(q["limit"])
        self.starts.append(start)
        page = [r for r in self.rows if start <= r[1] <= end][:limit]
        return httpx.Response(200, json=page)


async def test_trades_resume_at_the_newest_millisecond_and_drop_repeats() -> None:
    server = FakeTrades(5_000)
    # A run of 60 trades in one ms, placed so that a 100-row page seam cuts it.
    burst = server.rows[2_470][1]
    for r in server.rows[2_430:2_490]:
        r[1] = burst
    for r in server.rows[2_490:]:
        r[1] = max(r[1], burst + 1)
    ex, _ = adapter(server)

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        return await ex.fetch_trades_page(BTC, w0, w1, 100, cursor)

    start, end = server.rows[100][1] * MS, server.rows[4_900][1] * MS
    pieces = [p async for p in paginate_trades(fetch, 100, start, end)]
    assert all(isinstance(p, Chunk) for p in pieces)
    got = [i for p in pieces for i in p.table.column("id").to_pylist()]
    want = [str(r[0]) for r in server.rows if start <= r[1] * MS < end]
    assert sorted(got) == want and len(got) == len(set(got))
    assert burst in server.starts  # the page after the seam started AT the shared ms
    await ex.http.aclose()


async def test_more_trades_in_one_ms_than_a_page_is_an_error_not_a_loop() -> None:
    before = [[i, T0 - 1, 0.1, 1.0] for i in range(50)]
    burst = [[i, T0, 0.1, 1.0] for i in range(50, 150)]
    ex, _ = adapter(replies((200, before + burst[:50]), (200, burst[:100]))[0])
    table, cursor = await ex.fetch_trades_page(BTC, (T0 - 1) * MS, (T0 + 5) * MS, 100, None)
    assert cursor == T0  # a full page: resume at its newest ms
    with pytest.raises(ProtocolError, match="share the millisecond"):
        await ex.fetch_trades_page(BTC, T0 * MS, (T0 + 5) * MS, 100, cursor)
    await ex.http.aclose()


async def test_rate_limit_reply_waits_out_the_ip_block_then_succeeds() -> None:
    handler, seen = replies((429, ERROR_RATELIMIT), (200, [[1, T0, 1.0, 2.0]]))
    ex, clock = adapter(handler)
    table, _ = await ex.fetch_trades_page(BTC, T0 * MS, (T0 + 1000) * MS, 100, None)
    assert table.num_rows == 1 and len(seen) == 2
    assert ex.http.stats.rate_limited == 1 and sum(clock.sleeps) >= 60
    await ex.http.aclose()


@pytest.mark.parametrize(("status", "body", "kind"), [
    (429, ERROR_RATELIMIT, RateLimitedError),
    (500, ERROR_RATELIMIT, RateLimitedError),
    (500, '["error",10020,"symbol: invalid"]', ExchangeError),
    (500, '["error",10020,"time_interval: invalid"]', ExchangeError),
    (500, '["error",20060,"maintenance"]', ServerError),
    (500, '["error",10000,"unknown error"]', ServerError),
    (200, '{"error":"ERR_RATE_LIMIT"}', RateLimitedError),
])
def test_check_maps_error_arrays(status: int, body: str, kind: type[Exception]) -> None:
    verdict = BitfinexAdapter.check(status, {}, json.loads(body))
    assert type(verdict) is kind
    if kind is RateLimitedError:
        assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 60
    assert BitfinexAdapter.check(200, {}, [[1, T0, 1.0, 2.0]]) is None


async def test_bad_symbol_is_not_retried_and_maintenance_is() -> None:
    handler, seen = replies((500, '["error",10020,"symbol: invalid"]'))
    ex, _ = adapter(handler)
    with pytest.raises(ExchangeError, match="symbol: invalid"):
        await ex.fetch_trades_page(BTC, T0 * MS, (T0 + 1000) * MS, 100, None)
    assert len(seen) == 1
    await ex.http.aclose()
    handler, seen = replies((500, '["error",20060,"maintenance"]'), (200, []))
    ex, clock = adapter(handler)
    table, cursor = await ex.fetch_trades_page(BTC, T0 * MS, (T0 + 1000) * MS, 100, None)
    assert (table.num_rows, cursor, len(seen)) == (0, None, 2)
    assert max(clock.sleeps) >= 30
    await ex.http.aclose()


async def test_first_data_asks_for_the_oldest_row() -> None:
    handler, seen = replies((200, [[T0 + 37_000, 1, 2, 3, 0.5, 9]]), (200, [[1, T0 + 123, 1.0, 2.0]]))
    ex, _ = adapter(handler)
    assert await ex.first_data_ns(BTC, "ohlc", "1h") == (T0 + 37_000) * MS
    assert await ex.first_data_ns(BTC, "trades", None) == (T0 + 123) * MS
    assert [r.url.params["sort"] for r in seen] == ["1", "1"]
    assert seen[0].url.path == "/v2/candles/trade:1h:tBTCUSD/hist"
    await ex.http.aclose()


async def test_server_clock_is_the_date_header_of_platform_status() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[1], headers={"date": "Fri, 01 Mar 2024 00:30:00 GMT"})

    ex, _ = adapter(handler)
    assert await ex.server_time_ns() == 1_709_253_000 * 10**9
    assert seen[0].url.path == "/v2/platform/status"
    await ex.http.aclose()
