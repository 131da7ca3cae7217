"""The Bybit v5 venue over real loopback HTTP: kline anchoring and bounds, the forming
candle, recent trades as the candles' source, errors inside HTTP 200, the 403 IP block,
and a stock ccxt client."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from venue_client import VenueClient, venue_server

from dccd_cli.emulator import EmulatorServer
from dccd_cli.timeutil import parse_time

H, M = 3_600_000, 60_000


def ms(text: str) -> int:
    return parse_time(text, now=0) // 1_000_000


T0 = ms("2024-01-02")
MARCH = parse_time("2024-03-01", now=0)  # the frozen 'now' of servers with their own settings


class Bybit(VenueClient):
    """Raw client of ``/bybit/v5/market``; ``get`` asserts the success envelope."""

    venue, prefix = "bybit", "/v5/market"

    def unwrap(self, body: Any) -> Any:
        assert (body["retCode"], body["retMsg"], body["retExtInfo"]) == (0, "OK", {}), body
        assert body["time"] == self.now
        return body["result"]


@pytest.fixture(scope="module")
def bybit(server: EmulatorServer) -> Iterator[Bybit]:
    with Bybit(server) as api:  # 600 requests / 5 s is plenty for these tests
        yield api


def kline(api: Bybit, **params: Any) -> list[list[str]]:
    result = api.get("/kline", category="spot", symbol="BTCUSDT", **params)
    assert (result["symbol"], result["category"]) == ("BTCUSDT", "spot")
    return result["list"]  # type: ignore[no-any-return]


def starts(rows: list[list[str]]) -> list[int]:
    return [int(r[0]) for r in rows]


def test_instruments_info_and_time(bybit: Bybit) -> None:
    spot = {i["symbol"]: i for i in bybit.get("/instruments-info", category="spot")["list"]}
    assert set(spot) == {"BTCUSDT", "ETHUSDT", "SOLEUR"}
    btc = spot["BTCUSDT"]
    assert (btc["baseCoin"], btc["quoteCoin"], btc["status"]) == ("BTC", "USDT", "Trading")
    assert btc["lotSizeFilter"]["basePrecision"] == "0.00001"
    assert btc["priceFilter"]["tickSize"] == "0.01"
    assert bybit.get("/instruments-info", category="linear")["list"] == []
    now = bybit.get("/time")
    assert int(now["timeNano"]) // 1_000_000 == bybit.now
    assert int(now["timeSecond"]) == bybit.now // 1000


def test_kline_bounds_anchoring_and_limits(bybit: Bybit) -> None:
    k = dict(interval="60")
    # start only: from the candle that holds start, newest first.
    assert starts(kline(bybit, **k, start=T0 + 1, limit=3)) == [T0 + 2 * H, T0 + H, T0]
    # start and end over more than limit: the newest page, anchored at end (inclusive).
    assert starts(kline(bybit, **k, start=T0, end=T0 + 10 * H, limit=3)) == \
        [T0 + 10 * H, T0 + 9 * H, T0 + 8 * H]
    assert starts(kline(bybit, **k, start=T0, end=T0 + 2 * H - 1)) == [T0 + H, T0]
    assert starts(kline(bybit, **k, end=T0, limit=2)) == [T0, T0 - H]
    assert len(kline(bybit, **k, end=T0)) == 200  # default limit
    assert len(kline(bybit, interval="1", end=T0, limit=1000)) == 1000
    assert len(kline(bybit, interval="1", end=T0, limit=5000)) == 1000  # clamped
    # Paging back by end = oldest start - 1 is gapless.
    seen: list[int] = []
    end = T0
    for _ in range(3):
        rows = kline(bybit, interval="1", start=T0 - 3000 * M, end=end, limit=1000)
        seen += starts(rows)
        end = int(rows[-1][0]) - 1
    assert seen == [T0 - i * M for i in range(3000)]


def test_intervals(bybit: Bybit) -> None:
    assert starts(kline(bybit, interval="D", start=ms("2024-01-10T05:00Z"), limit=1)) == \
        [ms("2024-01-10")]
    assert starts(kline(bybit, interval="W", start=ms("2024-01-10"), limit=1)) == \
        [ms("2024-01-08")]  # weeks open on Monday
    assert starts(kline(bybit, interval="M", start=ms("2024-01-10"), limit=1)) == \
        [ms("2024-01-01")]
    day = kline(bybit, interval="D", start=ms("2024-01-10"), limit=1)[0]
    hours = kline(bybit, interval="60", start=ms("2024-01-10"), end=ms("2024-01-10T23:00Z"))
    assert len(hours) == 24 and Decimal(day[5]) == sum(Decimal(h[5]) for h in hours)
    assert Decimal(day[6]) == sum(Decimal(h[6]) for h in hours)
    assert (day[1], day[4]) == (hours[-1][1], hours[0][4])
    for interval in ("3", "5", "15", "30", "120", "240", "360", "720"):
        rows = kline(bybit, interval=interval, limit=3)
        assert len(rows) == 3 and int(rows[0][0]) > int(rows[1][0]) > int(rows[2][0])


def test_forming_candle_and_recent_trades_make_the_candles(bybit: Bybit) -> None:
    rows = kline(bybit, interval="1", limit=6)
    assert all(len(r) == 7 and all(isinstance(x, str) for x in r) for r in rows)
    assert int(rows[0][0]) == bybit.now // M * M  # the forming candle comes first
    trades = bybit.get("/recent-trade", category="spot", symbol="BTCUSDT")["list"]
    assert len(trades) == 60 and all(int(t["time"]) < bybit.now for t in trades)
    ids = [int(t["execId"]) for t in trades]
    assert ids == list(range(ids[0], ids[0] - 60, -1))  # newest first, contiguous
    by_minute: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in trades:
        by_minute[int(t["time"]) // M * M].append(t)
    covered = sorted(by_minute)[1:]  # the oldest minute may be cut off
    assert covered and covered[-1] == bybit.now // M * M
    candle = {int(r[0]): r for r in rows}
    for minute in covered:
        mine, row = by_minute[minute], candle[minute]
        assert Decimal(row[5]) == sum(Decimal(t["size"]) for t in mine)
        assert Decimal(row[6]) == sum(Decimal(t["size"]) * Decimal(t["price"]) for t in mine)
        assert (row[1], row[4]) == (mine[-1]["price"], mine[0]["price"])
        assert Decimal(row[2]) == max(Decimal(t["price"]) for t in mine)


def test_recent_trade_items_and_limits(bybit: Bybit) -> None:
    trades = bybit.get("/recent-trade", category="spot", symbol="ETHUSDT", limit=3)["list"]
    assert len(trades) == 3
    t = trades[0]
    assert set(t) == {"execId", "symbol", "price", "size", "side", "time", "isBlockTrade",
                      "isRPITrade", "seq"}
    assert t["symbol"] == "ETHUSDT" and t["side"] in ("Buy", "Sell")
    assert t["isBlockTrade"] is False
    assert len(bybit.get("/recent-trade", category="spot", symbol="ETHUSDT",
                         limit=500)["list"]) == 60


@pytest.mark.parametrize(("path", "params", "msg"), [
    ("/kline", {"category": "spot", "symbol": "BTCUSDX", "interval": "1"},
     "Not supported symbols"),
    ("/kline", {"symbol": "BTCUSDT", "interval": "1"}, "Not supported symbols"),  # linear
    ("/kline", {"category": "spot", "symbol": "BTCUSDT", "interval": "2"}, "Invalid period!"),
    ("/kline", {"category": "spot", "symbol": "BTCUSDT", "interval": "1h"}, "Invalid period!"),
    ("/recent-trade", {"category": "inverse", "symbol": "BTCUSDT"}, "Not supported symbols"),
])
def test_errors_come_inside_http_200(bybit: Bybit, path: str, params: dict[str, str],
                                     msg: str) -> None:
    r = bybit.raw(path, **params)
    assert r.status_code == 200
    assert r.json() == {"retCode": 10001, "retMsg": msg, "result": {}, "retExtInfo": {},
                        "time": bybit.now}


def test_believed_behaviour_is_settable() -> None:
    believed = {"kline_anchor": "start", "kline_contains_start": False,
                "kline_limit_out_of_range": "error"}
    with venue_server("bybit", believed, now=MARCH) as emu, Bybit(emu) as api:
        assert starts(kline(api, interval="60", start=T0 + 1, end=T0 + 10 * H, limit=2)) == \
            [T0 + 2 * H, T0 + H]
        assert api.raw("/kline", category="spot", symbol="BTCUSDT", interval="1",
                       limit=1001).json()["retCode"] == 10001


def test_ip_limit_403_and_the_ip_stays_blocked() -> None:
    ip_limit = {"ip_limit": 3, "ip_window_s": 60, "ip_ban_s": 60}
    with venue_server("bybit", ip_limit, now=MARCH) as emu, Bybit(emu) as api:
        assert [api.raw("/time").status_code for _ in range(4)] == [200, 200, 200, 403]
        blocked = api.raw("/kline", category="spot", symbol="BTCUSDT", interval="1")
        assert (blocked.status_code, blocked.text) == (403, "access too frequent")
        httpx.post(emu.base_url + "/_emulator/reset")  # forget the block
        assert api.raw("/time").status_code == 200


# -- a stock ccxt client ---------------------------------------------------------------

ccxt = pytest.importorskip("ccxt")


@pytest.fixture(scope="module")
def ccxt_bybit(server: EmulatorServer) -> Any:
    ex = ccxt.bybit({"enableRateLimit": False,
                     "options": {"fetchMarkets": {"types": ["spot"]}}})
    ex.urls["api"]["public"] = server.venue_url("bybit")
    return ex


def test_ccxt_loads_markets_and_fetches_what_the_venue_serves(ccxt_bybit: Any,
                                                              bybit: Bybit) -> None:
    btc = ccxt_bybit.load_markets()["BTC/USDT"]
    assert (btc["id"], btc["spot"], btc["active"]) == ("BTCUSDT", True, True)
    candles = ccxt_bybit.fetch_ohlcv("BTC/USDT", "1h", since=T0, limit=24)
    rows = kline(bybit, interval="60", start=T0, limit=24)[::-1]
    assert [c[0] for c in candles] == starts(rows) == [T0 + i * H for i in range(24)]
    assert [c[1:6] for c in candles] == [[float(x) for x in r[1:6]] for r in rows]
    trades = ccxt_bybit.fetch_trades("BTC/USDT", limit=30)
    raw = bybit.get("/recent-trade", category="spot", symbol="BTCUSDT", limit=30)["list"][::-1]
    assert [t["id"] for t in trades] == [r["execId"] for r in raw]
    assert [(t["timestamp"], t["price"], t["amount"], t["side"]) for t in trades] == \
        [(int(r["time"]), float(r["price"]), float(r["size"]), r["side"].lower()) for r in raw]
