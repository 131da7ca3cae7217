"""Coinbase adapter on ``httpx.MockTransport``: the real samples, candles asked for exactly
a window's bars (both bounds inclusive, never 301), the trade-id search and the backward
walk over a synthetic product, the maker side inverted, and Coinbase's error replies."""

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

from dccd_cli.adapters.coinbase import CoinbaseAdapter
from dccd_cli.errors import ExchangeError, UnknownSymbolError
from dccd_cli.exchange.adapter import Market
from dccd_cli.pieces import Chunk
from dccd_cli.sources.rest.ohlc import paginate_ohlc
from dccd_cli.sources.rest.trades import paginate_trades
from dccd_cli.timeutil import HOUR_NS, MINUTE_NS, NS, Span

# Real samples, verbatim from tests/fixtures/samples/coinbase/ (provenance in SOURCES.md).
TRADES_DOCS_EXAMPLE = """[
  {
    "time": "2020-03-20T00:36:59.860Z",
    "trade_id": 86327327,
    "price": "6225.32000000",
    "size": "0.06469797",
    "side": "sell"
  }
]
"""
ERROR_TOO_MANY_CANDLES = (
    '{"message":"granularity too small for the requested time range. '
    'Count of aggregations requested exceeds 300"}\n'
)
SAMPLES = samples_dir / "coinbase"

T0 = 1_704_067_200 * NS  # 2024-01-01T00:00Z
BTC = Market(symbol="BTC-USD", native="BTC-USD", base="BTC", quote="USD")


def adapter(handler: Handler) -> tuple[CoinbaseAdapter, FakeClock]:
    return make_adapter(CoinbaseAdapter, handler, "https://coinbase.test")


def iso_s(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def iso(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // NS, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % NS // 1000:06d}Z"


def test_embedded_samples_are_verbatim() -> None:
    assert (SAMPLES / "trades_docs_example.json").read_text() == TRADES_DOCS_EXAMPLE
    assert (SAMPLES / "error_too_many_candles.json").read_text() == ERROR_TOO_MANY_CANDLES


async def test_trades_sample_parsed_with_the_taker_side() -> None:
    handler, seen = replies((200, TRADES_DOCS_EXAMPLE))
    ex, _ = adapter(handler)
    # A window around the sample's trade; the cursor search sees it as the newest trade.
    start = iso_s("2020-03-20T00:00:00+00:00") * NS
    table, cursor = await ex.fetch_trades_page(BTC, start, start + HOUR_NS, 1000, None)
    assert cursor is None  # one trade, fewer than a page: the product's history is drained
    row = table.to_pylist()[0]
    assert row["id"] == "86327327"
    assert row["ts"] == datetime(2020, 3, 20, 0, 36, 59, 860000, tzinfo=UTC)
    assert (row["price"], row["amount"]) == (6225.32, 0.06469797)
    assert row["side"] == "buy"  # Coinbase's side is the maker's: a maker sell is a taker buy
    assert seen[-1].url.params["after"] == "86327328"
    await ex.http.aclose()


async def test_markets() -> None:
    body = json.dumps([
        {"id": "BTC-USDT", "base_currency": "BTC", "quote_currency": "USDT", "status": "online"},
        {"id": "ETH-EUR", "base_currency": "ETH", "quote_currency": "EUR", "status": "delisted"},
    ])
    ex, _ = adapter(replies((200, body))[0])
    markets = await ex.load_markets()
    assert [(m.symbol, m.native) for m in markets] == [("BTC-USDT", "BTC-USDT"), ("ETH-EUR", "ETH-EUR")]
    assert markets[1].extra["status"] == "delisted"
    await ex.http.aclose()


def candle_server(missing: set[int]) -> tuple[Handler, list[int]]:
    """Candles like Coinbase's: inclusive bounds, > 300 rejected, newest first, gaps."""
    counts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        g = int(q["granularity"])
        start, end = iso_s(q["start"].replace("Z", "+00:00")), iso_s(q["end"].replace("Z", "+00:00"))
        opens = list(range(-(-start // g) * g, end + 1, g))
        counts.append(len(opens))
        if len(opens) > 300:
            return httpx.Response(400, text=ERROR_TOO_MANY_CANDLES)
        rows = [[t, 1.0, 4.0, 2.0, 3.0, float(t % 97)] for t in reversed(opens) if t not in missing]
        return httpx.Response(200, json=rows)

    return handler, counts


async def test_candles_exact_window_columns_and_order() -> None:
    handler, counts = candle_server(missing=set())
    ex, _ = adapter(handler)
    table = await ex.fetch_ohlc_page(BTC, "1h", T0, T0 + 3 * HOUR_NS, 300)
    assert counts == [3]  # end is the last bar's open: inclusive bounds, no extra bar
    rows = table.to_pylist()
    assert [r["ts"].timestamp() for r in rows] == [T0 // NS + i * 3600 for i in range(3)]
    assert (rows[0]["open"], rows[0]["high"], rows[0]["low"], rows[0]["close"]) == (2.0, 4.0, 1.0, 3.0)
    assert rows[0]["vwap"] is None and rows[0]["trades"] is None
    # A window shorter than a bar asks nothing.
    assert (await ex.fetch_ohlc_page(BTC, "1h", T0 + 1, T0 + HOUR_NS, 300)).num_rows == 0
    assert counts == [3]
    await ex.http.aclose()


async def test_candles_paged_by_300_never_301() -> None:
    gaps = {T0 // NS + 3600 * k for k in (5, 299, 300, 301, 777)}
    handler, counts = candle_server(missing=gaps)
    ex, _ = adapter(handler)

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        return await ex.fetch_ohlc_page(BTC, "1h", w0, w1, limit)

    pieces = [p async for p in paginate_ohlc(fetch, 300, T0, T0 + 1000 * HOUR_NS, Span.parse("1h"))]
    assert all(isinstance(p, Chunk) for p in pieces)
    got = [t.value // NS for p in pieces for t in p.table.column("ts")]
    assert got == [T0 // NS + 3600 * k for k in range(1000) if T0 // NS + 3600 * k not in gaps]
    assert max(counts) == 300
    await ex.http.aclose()


async def test_errors_unknown_product_too_many_candles_and_rate_limit() -> None:
    ex, _ = adapter(replies((404, '{"message":"NotFound"}'))[0])
    with pytest.raises(UnknownSymbolError):
        await ex.fetch_ohlc_page(BTC, "1h", T0, T0 + HOUR_NS, 300)
    await ex.http.aclose()

    ex, _ = adapter(replies((400, ERROR_TOO_MANY_CANDLES))[0])
    with pytest.raises(ExchangeError, match="exceeds 300"):
        await ex.fetch_ohlc_page(BTC, "1h", T0, T0 + HOUR_NS, 300)
    await ex.http.aclose()

    handler, seen = replies((429, '{"message":"Public rate limit exceeded"}'), (200, "[[1704067200, 1, 4, 2, 3, 5]]"))
    ex, clock = adapter(handler)
    table = await ex.fetch_ohlc_page(BTC, "1h", T0, T0 + HOUR_NS, 300)
    assert table.num_rows == 1 and len(seen) == 2
    assert ex.http.stats.rate_limited == 1
    assert sum(clock.sleeps) >= 1.0  # the whole exchange paused for Coinbase's 1 s window
    await ex.http.aclose()


class FakeTrades:
    """A product's trade history behind ``/trades``: dense ids from 1, newest first,
    ``after=X`` for ids below X. Times are bursty: runs of equal instants, busy and
    quiet stretches, and one silent hour."""

    def __init__(self, n: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.ts: list[int] = []
        t = T0
        for i in range(n):
            r = rng.random()
            if i == n // 2:
                t += HOUR_NS  # nothing traded for an hour
            elif r < 0.25:
                pass  # same microsecond as the previous trade
            elif r < 0.9:
                t += rng.randrange(1, 5_000) * 1_000_000
            else:
                t += rng.randrange(1, 600) * NS
            self.ts.append(t // 1000 * 1000)
        self.probes = 0
        self.pages = 0

    def item(self, trade_id: int) -> dict[str, Any]:
        side = "buy" if trade_id % 3 else "sell"
        return {"time": iso(self.ts[trade_id - 1]), "trade_id": trade_id,
                "price": f"{40000 + trade_id % 50}.00", "size": "0.01", "side": side}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = request.url.params
        limit = int(q.get("limit", "1000"))
        top = min(len(self.ts), int(q["after"]) - 1) if "after" in q else len(self.ts)
        if limit == 1:
            self.probes += 1
        else:
            self.pages += 1
        return httpx.Response(200, json=[self.item(i) for i in range(top, max(0, top - limit), -1)])


async def test_trades_id_search_and_backward_walk_drain_every_window() -> None:
    server = FakeTrades(30_000)
    ex, _ = adapter(server)

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        return await ex.fetch_trades_page(BTC, w0, w1, limit, cursor)

    start = server.ts[1234] + 1  # mid-history, between two instants
    end = server.ts[27_000]  # trade 27001 and those at its instant fall outside
    pieces = [p async for p in paginate_trades(fetch, 1000, start, end, direction="backward")]
    assert all(isinstance(p, Chunk) for p in pieces)
    got = [i for p in pieces for i in p.table.column("id").to_pylist()]
    want = [str(i + 1) for i, t in enumerate(server.ts) if start <= t < end]
    assert sorted(got, key=int) == want  # every trade of the range, once
    # Cheap id search: a handful of limit=1 probes per window, not a bisection of all ids.
    windows = len(pieces)
    assert server.probes <= 8 * windows, (server.probes, windows)
    await ex.http.aclose()


async def test_trades_cursor_none_only_when_the_window_is_drained() -> None:
    server = FakeTrades(5_000)
    ex, _ = adapter(server)
    start, end = server.ts[999] + 1, server.ts[3_500]
    cursor, seen = None, []
    for _ in range(10):
        table, cursor = await ex.fetch_trades_page(BTC, start, end, 1000, cursor)
        seen += [t.value for t in table.column("ts")]
        if cursor is None:
            break
        assert isinstance(cursor, int) and table.num_rows == 1000  # a full page never ends it
    assert cursor is None and min(seen) < start  # stopped by a trade older than the window
    # A window before the first trade: walked to id 1 and done.
    table, cursor = await ex.fetch_trades_page(BTC, T0 - HOUR_NS, T0 - 1, 1000, None)
    assert cursor is None and all(t.value >= T0 for t in table.column("ts"))
    await ex.http.aclose()


async def test_first_data_is_trade_id_one() -> None:
    server = FakeTrades(3_000)
    ex, _ = adapter(server)
    assert await ex.first_data_ns(BTC, "trades", None) == server.ts[0]
    assert await ex.first_data_ns(BTC, "ohlc", "1h") == server.ts[0] // HOUR_NS * HOUR_NS
    assert await ex.first_data_ns(BTC, "ohlc", "1m") == server.ts[0] // MINUTE_NS * MINUTE_NS
    await ex.http.aclose()


async def test_server_clock_from_time_endpoint_else_the_date_header() -> None:
    handler, seen = replies((200, '{"iso":"2015-01-07T23:47:25.201Z","epoch":1420674445.201}'))
    ex, _ = adapter(handler)
    assert await ex.server_time_ns() == 1_420_674_445_201_000_000
    assert seen[0].url.path == "/time"
    await ex.http.aclose()

    def missing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": "NotFound"},
                              headers={"date": "Fri, 01 Mar 2024 00:30:00 GMT"})

    ex, _ = adapter(missing)  # an emulator without /time: its Date header still tells
    assert await ex.server_time_ns() == 1_709_253_000 * NS
    await ex.http.aclose()
