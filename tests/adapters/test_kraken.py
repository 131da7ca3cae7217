"""Kraken adapter on ``httpx.MockTransport``: the real samples (result keyed by the internal
pair name, vwap and count kept, float-second trade times), asset names unified, the
720-bar horizon, forward trade paging across instants shared by many trades (with
``since`` inclusive or exclusive), and errors inside HTTP 200."""

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

from dccd_cli.adapters.kraken import KrakenAdapter
from dccd_cli.errors import (
    ExchangeError,
    RateLimitedError,
    ServerError,
    UnknownSymbolError,
)
from dccd_cli.exchange.adapter import Market
from dccd_cli.pieces import Chunk
from dccd_cli.sources.rest.trades import paginate_trades
from dccd_cli.timeutil import HOUR_NS, MINUTE_NS, NS

# Real samples, verbatim from tests/fixtures/samples/kraken/ (provenance in SOURCES.md):
# Kraken's API reference examples and the error bodies its docs and clients quote.
OHLC = {"error": [], "result": {"XXBTZUSD": [
    [1688671200, "30306.1", "30306.2", "30305.7", "30305.7", "30306.1", "3.39243896", 23],
    [1688671260, "30304.5", "30304.5", "30300.0", "30300.0", "30300.0", "4.42996871", 18],
    [1688671320, "30300.3", "30300.4", "30291.4", "30291.4", "30294.7", "2.13024789", 25],
    [1688671380, "30291.8", "30295.1", "30291.8", "30295.0", "30293.8", "1.01836275", 9]],
    "last": 1688672160}}
TRADES = {"error": [], "result": {"XXBTZUSD": [
    ["30243.40000", "0.34507674", 1688669597.8277369, "b", "m", "", 61044952],
    ["30243.30000", "0.00376960", 1688669598.2804112, "s", "l", "", 61044953],
    ["30243.30000", "0.01235716", 1688669602.698379, "s", "m", "", 61044956]],
    "last": "1688671969993150842"}}
ERROR_RATE_LIMIT = '{"error":["EAPI:Rate limit exceeded"]}'
ERROR_UNKNOWN_PAIR = '{"error":["EQuery:Unknown asset pair"]}'
SAMPLES = samples_dir / "kraken"

XBT = Market(symbol="BTC-USD", native="XBTUSD", base="BTC", quote="USD")


def adapter(handler: Handler) -> tuple[KrakenAdapter, FakeClock]:
    return make_adapter(KrakenAdapter, handler, "https://kraken.test")


def test_embedded_samples_are_verbatim() -> None:
    assert json.loads((SAMPLES / "OHLC.json").read_text()) == OHLC
    assert json.loads((SAMPLES / "Trades.json").read_text()) == TRADES
    assert (SAMPLES / "error_rate_limit.json").read_text().strip() == ERROR_RATE_LIMIT
    assert (SAMPLES / "error_unknown_pair.json").read_text().strip() == ERROR_UNKNOWN_PAIR


async def test_markets_unify_kraken_asset_names() -> None:
    pairs = {
        "XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD", "base": "XXBT", "quote": "ZUSD",
                     "status": "online"},
        "XXBTZUSD.d": {"altname": "XBTUSD.d", "base": "XXBT", "quote": "ZUSD"},
        "XDGUSD": {"altname": "XDGUSD", "wsname": "XDG/USD", "base": "XXDG", "quote": "ZUSD"},
        "XETHZEUR": {"altname": "ETHEUR", "base": "XETH", "quote": "ZEUR"},  # no wsname
        "XBTUSDT": {"altname": "XBTUSDT", "wsname": "XBT/USDT", "base": "XXBT", "quote": "USDT"},
        "ZETAUSD": {"altname": "ZETAUSD", "wsname": "ZETA/USD", "base": "ZETA", "quote": "ZUSD"},
        "ETH2.SETH": {"altname": "ETH2.SETH", "wsname": "ETH2.S/ETH", "base": "XETH2.S",
                      "quote": "XETH"},
    }
    ex, _ = adapter(replies((200, {"error": [], "result": pairs}))[0])
    got = {m.symbol: (m.native, m.extra["key"]) for m in await ex.load_markets()}
    assert got == {
        "BTC-USD": ("XBTUSD", "XXBTZUSD"),
        "DOGE-USD": ("XDGUSD", "XDGUSD"),
        "ETH-EUR": ("ETHEUR", "XETHZEUR"),
        "BTC-USDT": ("XBTUSDT", "XBTUSDT"),
        "ZETA-USD": ("ZETAUSD", "ZETAUSD"),  # a 4-letter code that is not a legacy one
    }
    await ex.http.aclose()


async def test_ohlc_sample_keeps_vwap_and_count_whatever_the_result_key() -> None:
    handler, seen = replies((200, OHLC))
    ex, _ = adapter(handler)
    start = 1688671200 * NS
    table = await ex.fetch_ohlc_page(XBT, "1m", start, start + 3 * MINUTE_NS, 720)
    q = seen[0].url.params
    assert (q["pair"], q["interval"], q["since"]) == ("XBTUSD", "1", str(1688671200 - 60))
    rows = table.to_pylist()  # the core filters the 4th bar, past the window
    assert [r["ts"] for r in rows][:2] == [datetime(2023, 7, 6, 19, 20, tzinfo=UTC),
                                           datetime(2023, 7, 6, 19, 21, tzinfo=UTC)]
    first = rows[0]
    assert (first["open"], first["high"], first["low"], first["close"]) == (30306.1, 30306.2, 30305.7, 30305.7)
    assert (first["vwap"], first["volume"], first["trades"]) == (30306.1, 3.39243896, 23)
    assert first["quote_volume"] is None
    await ex.http.aclose()


def ohlc_rows(first_s: int, n: int, step_s: int) -> list[list[Any]]:
    return [[first_s + i * step_s, "1", "2", "0.5", "1.5", "1.2", "3", 4] for i in range(n)]


async def test_ohlc_beyond_the_720_bar_horizon_fails_the_window_not_silently() -> None:
    now_s = 1_704_067_200
    served = ohlc_rows(now_s - 719 * 60, 720, 60)  # the oldest bar rolled off meanwhile
    ex, _ = adapter(replies((200, {"error": [], "result": {"XXBTZUSD": served, "last": now_s}}))[0])
    start = (now_s - 720 * 60) * NS
    with pytest.raises(ExchangeError, match="only from"):
        await ex.fetch_ohlc_page(XBT, "1m", start, start + 100 * MINUTE_NS, 100)
    # Inside the horizon the same reply is fine.
    table = await ex.fetch_ohlc_page(XBT, "1m", start + MINUTE_NS, start + 100 * MINUTE_NS, 99)
    assert table.column("ts")[0].value == start + MINUTE_NS
    await ex.http.aclose()
    assert KrakenAdapter.ohlc is not None and KrakenAdapter.ohlc.history == "recent"
    # 720 entries, the last still forming and one of slack: 718 finished bars to fetch.
    assert KrakenAdapter.ohlc.recent_bars == 718 and "OHLCVT" in KrakenAdapter.ohlc.note



async def test_trades_sample_float_seconds_taker_side_and_cursor() -> None:
    handler, seen = replies((200, TRADES))
    ex, _ = adapter(handler)
    start = 1688669597 * NS
    table, cursor = await ex.fetch_trades_page(XBT, start, start + HOUR_NS, 1000, None)
    assert seen[0].url.params["since"] == str(start - 1)
    assert cursor is None  # 3 trades of 1000 asked: nothing newer exists yet
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == ["61044952", "61044953", "61044956"]
    assert table.column("ts").cast("int64").to_pylist()[:2] == [1688669597827737000, 1688669598280411000]
    assert [r["side"] for r in rows] == ["buy", "sell", "sell"]  # b/s is the taker's side
    assert (rows[0]["price"], rows[0]["amount"]) == (30243.4, 0.34507674)
    # A full page hands back a cursor 1 µs before its newest trade, never `last`.
    _, cursor = await ex.fetch_trades_page(XBT, start, start + HOUR_NS, 3, None)
    assert cursor == 1688669602698379000 - 1000
    await ex.http.aclose()


class FakeTrades:
    """Kraken's Trades over a synthetic history with runs of trades at one instant;
    ``since`` (ns) is inclusive or exclusive as asked, ``last`` the newest trade's ns."""

    def __init__(self, n: int, inclusive: bool, seed: int = 3) -> None:
        rng = random.Random(seed)
        self.inclusive = inclusive
        self.rows: list[tuple[int, int]] = []  # (ns, trade id)
        t = 1_704_067_200 * NS
        for i in range(n):
            if rng.random() > 0.4:  # else: the same instant as the previous trade
                t += rng.randrange(1, 90_000_000) * 1000
            self.rows.append((t, 100_000 + i))
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        q = request.url.params
        since, count = int(q["since"]), int(q.get("count", "1000"))
        page = [r for r in self.rows if (r[0] >= since if self.inclusive else r[0] > since)][:count]
        out = [[f"{40000 + i % 7}.1", "0.5", t / 1e9, "bs"[i % 2], "l", "", i] for t, i in page]
        last = str(page[-1][0] if page else since)
        return httpx.Response(200, json={"error": [], "result": {"XXBTZUSD": out, "last": last}})


@pytest.mark.parametrize("inclusive", [True, False])
async def test_trades_paged_forward_across_shared_instants(inclusive: bool) -> None:
    server = FakeTrades(6_000, inclusive)
    ex, _ = adapter(server)

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        return await ex.fetch_trades_page(XBT, w0, w1, 100, cursor)  # small pages: many seams

    start, end = server.rows[250][0], server.rows[5_500][0]
    pieces = [p async for p in paginate_trades(fetch, 100, start, end)]
    assert all(isinstance(p, Chunk) for p in pieces)
    got = [i for p in pieces for i in p.table.column("id").to_pylist()]
    assert got == [str(i) for t, i in server.rows if start <= t < end]
    await ex.http.aclose()


@pytest.mark.parametrize(("error", "kind"), [
    ("EQuery:Unknown asset pair", UnknownSymbolError),
    ("EAPI:Rate limit exceeded", RateLimitedError),
    ("EGeneral:Too many requests", RateLimitedError),
    ("EService:Throttled: 1704067230", RateLimitedError),
    ("EService:Unavailable", ServerError),
    ("EService:Busy", ServerError),
    ("EGeneral:Invalid arguments", ExchangeError),
])
def test_check_maps_errors_inside_http_200(error: str, kind: type[Exception]) -> None:
    headers = {"date": "Mon, 01 Jan 2024 00:00:00 GMT"}
    verdict = KrakenAdapter.check(200, headers, {"error": [error]})
    assert type(verdict) is kind
    if error.startswith("EService:Throttled"):
        assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 30
    assert KrakenAdapter.check(200, headers, {"error": ["WGeneral:Something"], "result": {}}) is None


async def test_rate_limit_and_unavailable_replies_are_retried_then_succeed() -> None:
    handler, seen = replies((200, ERROR_RATE_LIMIT), (200, '{"error":["EService:Unavailable"]}'),
                            (200, OHLC))
    ex, clock = adapter(handler)
    table = await ex.fetch_ohlc_page(XBT, "1m", 1688671200 * NS, 1688671320 * NS, 2)
    assert table.num_rows == 4 and len(seen) == 3
    assert ex.http.stats.rate_limited == 1 and ex.http.stats.retries == 1
    assert max(clock.sleeps) >= 5.0
    await ex.http.aclose()


async def test_unknown_pair_is_a_usage_error() -> None:
    handler, seen = replies((200, ERROR_UNKNOWN_PAIR))
    ex, _ = adapter(handler)
    with pytest.raises(UnknownSymbolError):
        await ex.fetch_trades_page(XBT, 0, HOUR_NS, 1000, None)
    assert len(seen) == 1  # never retried
    await ex.http.aclose()


async def test_first_data() -> None:
    server = FakeTrades(10, inclusive=True)
    ex, _ = adapter(server)
    assert await ex.first_data_ns(XBT, "trades", None) == server.rows[0][0]
    await ex.http.aclose()
    now_s = 1_704_067_200
    body = {"error": [], "result": {"XXBTZUSD": ohlc_rows(now_s - 719 * 3600, 720, 3600), "last": 0}}
    ex, _ = adapter(replies((200, body))[0])
    # The oldest of 720 is about to roll off: origin is the one after it.
    assert await ex.first_data_ns(XBT, "ohlc", "1h") == (now_s - 718 * 3600) * NS
    await ex.http.aclose()


async def test_server_clock() -> None:
    body = {"error": [], "result": {"unixtime": 1688669448, "rfc1123": "Thu, 06 Jul 23 18:50:48 +0000"}}
    handler, seen = replies((200, body))
    ex, _ = adapter(handler)
    assert await ex.server_time_ns() == 1688669448 * NS
    assert seen[0].url.path == "/0/public/Time"
    await ex.http.aclose()
