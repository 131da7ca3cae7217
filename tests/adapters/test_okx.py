"""OKX adapter on ``httpx.MockTransport``: the real samples, newest-first paging with
exclusive bounds (candles anchored at ``after``; trades by time then by trade id), the
legacy 100-row cap, and OKX's error codes inside HTTP 200 and 429."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pyarrow as pa
import pytest
from adapter_kit import FakeClock, Handler, collect, ints, make_adapter, replies

from dccd_cli.adapters.okx import OkxAdapter
from dccd_cli.errors import ExchangeError, UnknownSymbolError
from dccd_cli.exchange.adapter import Market
from dccd_cli.pieces import Chunk
from dccd_cli.sources.rest.ohlc import paginate_ohlc
from dccd_cli.sources.rest.trades import paginate_trades
from dccd_cli.timeutil import DAY_NS, MINUTE_NS, MS, Span

# Real samples, verbatim from tests/fixtures/samples/okx/ (OKX docs-v5 examples and
# third-party logs; provenance in samples/SOURCES.md).
HISTORY_CANDLES = """{"code":"0","msg":"","data":[
 ["1597026383085","3.721","3.743","3.677","3.708","8422410","22698348.04828491","12698348.04828491","1"],
 ["1597026383085","3.731","3.799","3.494","3.72","24912403","67632347.24399722","37632347.24399722","1"]]}"""
HISTORY_TRADES = """{"code": "0", "msg": "", "data": [
 {"instId": "BTC-USDT", "side": "sell", "sz": "0.00001", "source": "0", "px": "29963.2",
  "tradeId": "242720720", "ts": "1654161646974"},
 {"instId": "BTC-USDT", "side": "sell", "sz": "0.00001", "source": "0", "px": "29964.1",
  "tradeId": "242720719", "ts": "1654161641568"}]}"""
ERROR_RATELIMIT = '{"msg":"Too Many Requests","code":"50011"}'
ERROR_BAD_INSTRUMENT = '{"code":"51001","data":[],"msg":"Instrument ID does not exist"}'

T0 = 1_704_067_200 * 10**9  # 2024-01-01T00:00Z
BTC = Market(symbol="BTC-USDT", native="BTC-USDT", base="BTC", quote="USDT")


def adapter(handler: Handler) -> tuple[OkxAdapter, FakeClock]:
    return make_adapter(OkxAdapter, handler, "https://okx.test")


def ok(data: list[Any]) -> str:
    return json.dumps({"code": "0", "msg": "", "data": data})


class FakeOkx:
    """OKX's history endpoints over in-memory series: newest first, exclusive ``after`` /
    ``before``, a settable candle cap (300 now, 100 in older docs)."""

    def __init__(self, candles: list[int], trades: list[tuple[int, int]], candle_cap: int = 300):
        self.candles = sorted(candles)  # open times, ms
        self.trades = sorted(trades)  # (ts ms, trade id); ids grow with time
        self.candle_cap = candle_cap
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        self.requests.append(q)
        if q.get("instId") != "BTC-USDT":
            return httpx.Response(200, text=ERROR_BAD_INSTRUMENT)
        if request.url.path.endswith("/history-candles"):
            after, before = int(q.get("after", 2**62)), int(q.get("before", -1))
            rows = [t for t in reversed(self.candles) if before < t < after]
            rows = rows[: min(int(q["limit"]), self.candle_cap)]
            return httpx.Response(200, text=ok([[str(t), "1", "2", "0.5", "1.5", "10", "15", "15", "1"]
                                                 for t in rows]))
        limit = min(int(q["limit"]), 100)
        after = int(q["after"])
        key = 0 if q["type"] == "2" else 1  # 2: by timestamp, 1: by trade id
        rows2 = [t for t in reversed(self.trades) if t[key] < after][:limit]
        return httpx.Response(200, text=ok([
            {"instId": "BTC-USDT", "side": "buy" if i % 2 else "sell", "sz": "0.5", "source": "0",
             "px": "100", "tradeId": str(i), "ts": str(ts)} for ts, i in rows2]))


# -- the real samples ------------------------------------------------------------------------


async def test_history_candles_sample_columns_units_and_order() -> None:
    handler, seen = replies((200, HISTORY_CANDLES))
    okx, _ = adapter(handler)
    start = 1_597_026_000_000 * MS
    table = await okx.fetch_ohlc_page(BTC, "1m", start, start + 300 * MINUTE_NS, 300)
    assert len(seen) == 1  # 2 rows < 100: the window is complete, no further page
    q = seen[0].url.params
    assert seen[0].url.path == "/api/v5/market/history-candles"
    assert (q["instId"], q["bar"], q["limit"]) == ("BTC-USDT", "1m", "300")
    # exclusive bounds: before = start - 1 ms, after = end
    assert int(q["before"]) == 1_597_026_000_000 - 1
    assert int(q["after"]) == 1_597_026_000_000 + 300 * 60_000
    assert ints(table, "ts") == [1_597_026_383_085 * MS] * 2
    # newest first on the wire -> oldest first out: the sample's second row comes first
    assert table.column("open").to_pylist() == [3.731, 3.721]
    assert table.column("close").to_pylist() == [3.72, 3.708]
    assert table.column("volume").to_pylist() == [24912403.0, 8422410.0]  # vol: base
    assert table.column("quote_volume").to_pylist() == [37632347.24399722, 12698348.04828491]
    assert table.column("vwap").null_count == 2 and table.column("trades").null_count == 2


async def test_history_trades_sample() -> None:
    handler, seen = replies((200, HISTORY_TRADES))
    okx, _ = adapter(handler)
    end = 1_654_161_700_000 * MS
    table, cursor = await okx.fetch_trades_page(BTC, end - DAY_NS, end, 100, None)
    q = seen[0].url.params
    assert (q["type"], q["after"], q["limit"]) == ("2", "1654161700000", "100")
    assert cursor is None  # 2 < 100: OKX has nothing older
    assert table.column("id").to_pylist() == ["242720719", "242720720"]
    assert ints(table, "ts") == [1_654_161_641_568 * MS, 1_654_161_646_974 * MS]
    assert table.column("price").to_pylist() == [29964.1, 29963.2]
    assert table.column("amount").to_pylist() == [0.00001, 0.00001]
    assert table.column("side").to_pylist() == ["sell", "sell"]


async def test_load_markets() -> None:
    body = ok([{"instType": "SPOT", "instId": "BTC-USDT", "baseCcy": "BTC", "quoteCcy": "USDT",
                "tickSz": "0.1", "lotSz": "0.00000001", "minSz": "0.00001", "state": "live",
                "listTime": "1548133413000"}])
    handler, seen = replies((200, body))
    okx, _ = adapter(handler)
    [m] = await okx.load_markets()
    assert seen[0].url.params["instType"] == "SPOT"
    assert (m.symbol, m.native, m.base, m.quote) == ("BTC-USDT", "BTC-USDT", "BTC", "USDT")
    assert m.listed_ns == 1_548_133_413_000 * MS


def test_capabilities() -> None:
    ohlc, trades = OkxAdapter.ohlc, OkxAdapter.trades
    assert ohlc is not None and trades is not None
    assert ohlc.spans["1h"] == "1H" and ohlc.spans["6h"] == "6Hutc" and ohlc.spans["1d"] == "1Dutc"
    assert ohlc.spans["1w"] == "1Wutc" and ohlc.spans["1M"] == "1Mutc" and "1s" not in ohlc.spans
    assert ohlc.max_per_request == 300 and trades.max_per_request == 100
    assert trades.page_direction == "backward" and trades.history == "recent"
    assert trades.recent_ns is not None and 85 * DAY_NS <= trades.recent_ns <= 90 * DAY_NS
    assert "3 months" in trades.note
    assert (OkxAdapter.rate_limit.capacity, OkxAdapter.rate_limit.window_s) == (20, 2)


# -- paging ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cap", [300, 100])
async def test_ohlc_windows_complete_whatever_the_real_cap(cap: int) -> None:
    """Pages are anchored at ``after``: a venue still capped at 100 returns a window's
    newest 100 bars, and the adapter continues below them instead of losing the rest."""
    t0 = T0 // MS
    fake = FakeOkx([t0 + i * 60_000 for i in range(-50, 1050)], [], candle_cap=cap)
    okx, _ = adapter(fake)

    async def fetch(w0: int, w1: int, limit: int) -> pa.Table:
        return await okx.fetch_ohlc_page(BTC, "1m", w0, w1, limit)

    pieces = await collect(paginate_ohlc(fetch, 300, T0, T0 + 1000 * MINUTE_NS, Span.parse("1m")))
    assert all(isinstance(p, Chunk) for p in pieces)
    ts = [t for p in pieces for t in ints(p.table, "ts")]
    assert ts == [T0 + i * MINUTE_NS for i in range(1000)]
    assert len(fake.requests) == (4 if cap == 300 else 10)  # 300+300+300+100 bars


async def test_ohlc_window_with_a_quiet_start_costs_one_extra_request_at_most() -> None:
    t0 = T0 // MS
    fake = FakeOkx([t0 + i * 60_000 for i in range(200, 300)], [])  # exactly 100 bars
    okx, _ = adapter(fake)
    table = await okx.fetch_ohlc_page(BTC, "1m", T0, T0 + 300 * MINUTE_NS, 300)
    assert table.num_rows == 100
    assert [r["limit"] for r in fake.requests] == ["300", "200"]
    assert fake.requests[1]["after"] == str(t0 + 200 * 60_000)


async def test_trades_backward_cursor_drains_each_window_to_its_start() -> None:
    """Time for the first page of a window, then trade ids: trades sharing a millisecond
    across a page seam (here 150 in one ms) are neither lost nor repeated, and the cursor
    stops as soon as a page reaches before the window."""
    t0 = T0 // MS
    trades: list[tuple[int, int]] = []
    tid = 1000
    for k in range(-30, 3 * 3600 + 30, 7):  # a trade every 7 s, from before to after
        n = 150 if k == 3600 + 1 else (3 if k % 5 == 0 else 1)
        for _ in range(n):
            trades.append((t0 + k * 1000, tid))
            tid += 1
    trades.append((t0 + 3 * 3_600_000, tid))  # exactly at the end: excluded
    fake = FakeOkx([], trades)
    okx, _ = adapter(fake)

    async def fetch(w0: int, w1: int, limit: int, cursor: Any) -> tuple[pa.Table, Any]:
        return await okx.fetch_trades_page(BTC, w0, w1, limit, cursor)

    end = T0 + 3 * 3600 * 10**9
    pieces = await collect(paginate_trades(fetch, 100, T0, end, concurrency=3, direction="backward"))
    got = [int(i) for p in pieces for i in p.table.column("id").to_pylist()]
    want = [i for ts, i in trades if t0 <= ts < t0 + 3 * 3_600_000]
    assert got == want
    first_pages = [r for r in fake.requests if r["type"] == "2"]
    assert sorted(int(r["after"]) for r in first_pages) == [t0 + h * 3_600_000 for h in (1, 2, 3)]
    assert all(r["limit"] == "100" for r in fake.requests)
    # Each window stops on the first page that reaches before its start: per window, the
    # trades inside plus at most one page of overshoot.
    assert len(fake.requests) <= len(want) // 100 + 2 * 3


async def test_trades_cursor_stops_when_okx_has_nothing_older() -> None:
    t0 = T0 // MS
    fake = FakeOkx([], [(t0 + i, i) for i in range(1, 11)])
    okx, _ = adapter(fake)
    table, cursor = await okx.fetch_trades_page(BTC, T0 - DAY_NS, T0 + DAY_NS, 100, None)
    assert table.num_rows == 10 and cursor is None


async def test_first_data_is_the_oldest_monthly_bar() -> None:
    t0 = T0 // MS
    fake = FakeOkx([t0 - 31 * 86_400_000, t0], [])
    okx, _ = adapter(fake)
    assert await okx.first_data_ns(BTC, "ohlc", "1h") == T0 - 31 * DAY_NS
    assert fake.requests[0]["bar"] == "1Mutc" and "after" not in fake.requests[0]


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 200])
async def test_rate_limit_is_waited_out_and_retried(status: int) -> None:
    handler, seen = replies((status, ERROR_RATELIMIT), (200, HISTORY_TRADES))
    okx, clock = adapter(handler)
    table, _ = await okx.fetch_trades_page(BTC, T0, T0 + DAY_NS, 100, None)
    assert table.num_rows == 2 and len(seen) == 2
    assert okx.http.stats.rate_limited == 1
    assert sum(clock.sleeps) >= 2.0  # OKX's 2 s window


async def test_unknown_instrument_in_http_200() -> None:
    okx, _ = adapter(FakeOkx([], []))
    other = Market(symbol="FOO-USDT", native="FOO-USDT", base="FOO", quote="USDT")
    with pytest.raises(UnknownSymbolError, match="Instrument ID does not exist"):
        await okx.fetch_ohlc_page(other, "1h", T0, T0 + DAY_NS, 24)


async def test_parameter_error_is_not_retried() -> None:
    handler, seen = replies((200, '{"code":"51000","data":[],"msg":"Parameter bar error"}'))
    okx, _ = adapter(handler)
    with pytest.raises(ExchangeError, match="Parameter bar error"):
        await okx.fetch_ohlc_page(BTC, "1h", T0, T0 + DAY_NS, 24)
    assert len(seen) == 1


async def test_busy_system_is_retried() -> None:
    busy = '{"code":"50013","data":[],"msg":"Systems are busy. Please try again later."}'
    handler, seen = replies((200, busy), (200, HISTORY_CANDLES))
    okx, _ = adapter(handler)
    table = await okx.fetch_ohlc_page(BTC, "1m", T0, T0 + 300 * MINUTE_NS, 300)
    assert table.num_rows == 2 and len(seen) == 2 and okx.http.stats.retries == 1
