"""The Binance venue over real loopback HTTP: paging semantics, exactness, ids, errors."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.timeutil import parse_time

Api = Any  # the conftest client; see its docstring

H = 3_600_000  # one hour in ms
M = 60_000


def ms(text: str) -> int:
    return parse_time(text, now=0) // 1_000_000


def opens(rows: list[list[Any]]) -> list[int]:
    return [r[0] for r in rows]


def rollup(rows: list[list[Any]]) -> dict[str, Any]:
    """Aggregate kline rows the way a client would (empty rows carry no price)."""
    traded = [r for r in rows if r[8] > 0]
    return {
        "open": traded[0][1], "close": traded[-1][4],
        "high": max(Decimal(r[2]) for r in traded), "low": min(Decimal(r[3]) for r in traded),
        "volume": sum(Decimal(r[5]) for r in rows), "quote": sum(Decimal(r[7]) for r in rows),
        "trades": sum(r[8] for r in rows), "buy": sum(Decimal(r[9]) for r in rows),
        "buy_quote": sum(Decimal(r[10]) for r in rows),
    }


def as_agg(row: list[Any]) -> dict[str, Any]:
    return {"open": row[1], "close": row[4], "high": Decimal(row[2]), "low": Decimal(row[3]),
            "volume": Decimal(row[5]), "quote": Decimal(row[7]), "trades": row[8],
            "buy": Decimal(row[9]), "buy_quote": Decimal(row[10])}


# -- klines -------------------------------------------------------------------------------


def test_klines_bounds_and_limits(api: Api) -> None:
    t0 = api.t0 // 1_000_000
    k = dict(symbol="BTCUSDT", interval="1h")
    assert opens(api.get("klines", **k, startTime=t0, limit=5)) == [t0 + i * H for i in range(5)]
    # Klines are identified by open time: a start inside a bar skips it.
    assert api.get("klines", **k, startTime=t0 + 1, limit=1)[0][0] == t0 + H
    # endTime only: the newest bars whose open is <= endTime.
    assert opens(api.get("klines", **k, endTime=t0 + 10 * H, limit=3)) == \
        [t0 + 8 * H, t0 + 9 * H, t0 + 10 * H]
    # Both: from the start, never past the end (inclusive).
    assert opens(api.get("klines", **k, startTime=t0, endTime=t0 + 2 * H)) == \
        [t0, t0 + H, t0 + 2 * H]
    assert len(api.get("klines", **k, startTime=t0, endTime=t0 + 100 * H, limit=10)) == 10
    assert len(api.get("klines", **k, startTime=t0)) == 500  # default limit
    assert len(api.get("klines", **k, startTime=t0, limit=1000)) == 1000
    assert api.get("klines", **k, startTime=t0 + H, endTime=t0) == []
    for bad in (1001, 0):
        r = api.raw("klines", **k, startTime=t0, limit=bad)
        assert r.status_code == 400
        assert r.json() == {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}


def test_klines_row_format_and_close_times(api: Api) -> None:
    row = api.get("klines", symbol="BTCUSDT", interval="1m", startTime=api.t0 // 1_000_000,
                  limit=1)[0]
    assert len(row) == 12 and row[11] == "0"
    assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int)
    assert all(isinstance(row[i], str) and len(row[i].split(".")[1]) == 8
               for i in (1, 2, 3, 4, 5, 7, 9, 10))
    assert row[6] == row[0] + M - 1
    month = api.get("klines", symbol="BTCUSDT", interval="1M", startTime=ms("2024-02-01"),
                    limit=1)[0]
    assert (month[0], month[6]) == (ms("2024-02-01"), ms("2024-03-01") - 1)
    week = api.get("klines", symbol="BTCUSDT", interval="1w", startTime=ms("2024-01-02"),
                   limit=1)[0]
    assert week[0] == ms("2024-01-08")  # the first Monday at or after the start
    for interval in ("1s", "3m", "5m", "15m", "30m", "2h", "4h", "6h", "8h", "12h", "3d"):
        rows = api.get("klines", symbol="ETHUSDT", interval=interval, limit=3)
        assert len(rows) == 3 and rows[0][0] < rows[1][0] < rows[2][0]


def test_paging_by_last_open_plus_one_is_gapless(api: Api) -> None:
    start, seen = api.t0 // 1_000_000, []
    for _ in range(3):
        rows = api.get("klines", symbol="BTCUSDT", interval="1m", startTime=start, limit=1000)
        seen += opens(rows)
        start = rows[-1][0] + 1
    assert seen == [api.t0 // 1_000_000 + i * M for i in range(3000)]


def test_still_forming_last_candle(api: Api) -> None:
    now_ms = api.now // 1_000_000
    rows = api.get("klines", symbol="BTCUSDT", interval="1m", limit=2)
    last = rows[-1]
    assert last[0] == now_ms // M * M and last[6] > now_ms  # closes in the future
    trades = api.get("aggTrades", symbol="BTCUSDT", startTime=last[0], limit=1000)
    assert all(t["T"] < now_ms for t in trades)
    assert last[8] == sum(t["l"] - t["f"] + 1 for t in trades)
    assert api.get("klines", symbol="BTCUSDT", interval="1m", limit=2) == rows  # frozen now
    hour = api.get("klines", symbol="BTCUSDT", interval="1h", limit=1)[0]
    assert hour[0] == now_ms // H * H and hour[6] == hour[0] + H - 1


def test_longer_klines_are_exact_aggregates(api: Api) -> None:
    k = dict(symbol="BTCUSDT")
    day = ms("2024-01-10")
    d = api.get("klines", **k, interval="1d", startTime=day, limit=1)[0]
    hours = api.get("klines", **k, interval="1h", startTime=day, endTime=day + 23 * H)
    assert len(hours) == 24 and rollup(hours) == as_agg(d)
    h = hours[5]
    minutes = api.get("klines", **k, interval="1m", startTime=h[0], endTime=h[0] + H - M)
    assert len(minutes) == 60 and rollup(minutes) == as_agg(h)
    week = api.get("klines", **k, interval="1w", startTime=ms("2024-01-08"), limit=1)[0]
    days = api.get("klines", **k, interval="1d", startTime=ms("2024-01-08"), limit=7)
    assert rollup(days) == as_agg(week)
    month = api.get("klines", **k, interval="1M", startTime=ms("2024-02-01"), limit=1)[0]
    feb = api.get("klines", **k, interval="1d", startTime=ms("2024-02-01"),
                  endTime=ms("2024-02-29"))
    assert len(feb) == 29 and rollup(feb) == as_agg(month)


def test_minute_kline_is_the_aggregate_of_its_agg_trades(api: Api) -> None:
    for minute in (ms("2024-01-15T09:31Z"), ms("2019-06-03T17:02Z")):
        k = api.get("klines", symbol="BTCUSDT", interval="1m", startTime=minute, limit=1)[0]
        tr = api.get("aggTrades", symbol="BTCUSDT", startTime=minute,
                     endTime=minute + M - 1, limit=1000)
        assert 0 < len(tr) < 1000
        buys = [t for t in tr if not t["m"]]  # buyer is the taker
        assert k[1] == tr[0]["p"] and k[4] == tr[-1]["p"]
        assert Decimal(k[2]) == max(Decimal(t["p"]) for t in tr)
        assert Decimal(k[3]) == min(Decimal(t["p"]) for t in tr)
        assert Decimal(k[5]) == sum(Decimal(t["q"]) for t in tr)
        assert Decimal(k[7]) == sum(Decimal(t["p"]) * Decimal(t["q"]) for t in tr)
        assert k[8] == sum(t["l"] - t["f"] + 1 for t in tr)
        assert Decimal(k[9]) == sum(Decimal(t["q"]) for t in buys)
        assert Decimal(k[10]) == sum(Decimal(t["p"]) * Decimal(t["q"]) for t in buys)


def test_listing_date(api: Api) -> None:
    first = api.get("klines", symbol="BTCUSDT", interval="1m", startTime=0, limit=1)[0]
    assert first[0] == ms("2017-08-17T04:00Z")
    for interval, expect in (("1d", "2017-08-17"), ("1w", "2017-08-14"), ("1M", "2017-08-01")):
        assert api.get("klines", symbol="BTCUSDT", interval=interval, startTime=0,
                       limit=1)[0][0] == ms(expect)
    assert api.get("klines", symbol="BTCUSDT", interval="1h", endTime=ms("2017-08-01")) == []
    assert api.get("aggTrades", symbol="BTCUSDT", fromId=0, limit=1)[0]["f"] == 0


def test_illiquid_pair_has_flat_empty_klines_or_omits_them(busy_api: Api, api_for: Any) -> None:
    k = dict(symbol="SOLEUR", interval="1m", startTime=ms("2024-01-03"), limit=1000)
    rows = busy_api.get("klines", **k)
    empty = [r for r in rows if r[8] == 0]
    assert len(rows) == 1000 and len(empty) > 500
    prev = {r[0] + M: r[4] for r in rows}
    for r in empty[1:]:
        assert r[1] == r[2] == r[3] == r[4] == prev[r[0]]
        assert r[5] == r[7] == r[9] == r[10] == "0.00000000"
    settings = EmulatorSettings(seed=11, now=busy_api.now,
                                venues={"binance": {"empty_klines": "omit"}})
    with EmulatorServer(settings) as emu, api_for(emu) as api:
        omit = api.get("klines", **k)
    assert len(omit) == 1000 and all(r[8] > 0 for r in omit)
    assert {r[0] for r in omit} >= {r[0] for r in rows if r[8] > 0}


# -- trades -------------------------------------------------------------------------------


def test_agg_trades_from_id_paging_is_contiguous_across_days(api: Api) -> None:
    first = api.get("aggTrades", symbol="BTCUSDT", startTime=api.t0 // 1_000_000 - 20 * M,
                    limit=1)[0]
    items, cursor = [], first["a"]
    while not items or items[-1]["T"] < api.t0 // 1_000_000 + 20 * M:
        page = api.get("aggTrades", symbol="BTCUSDT", fromId=cursor, limit=137)
        assert page[0]["a"] == cursor
        items += page
        cursor = page[-1]["a"] + 1
    assert [t["a"] for t in items] == list(range(first["a"], first["a"] + len(items)))
    assert all(b["f"] == a["l"] + 1 for a, b in zip(items, items[1:], strict=False))
    assert all(a["T"] <= b["T"] for a, b in zip(items, items[1:], strict=False))
    assert items[0]["T"] < api.t0 // 1_000_000 < items[-1]["T"]


def test_agg_trades_time_windows(api: Api) -> None:
    t0 = api.t0 // 1_000_000
    # Since 2022 a start/end pair may span more than an hour; the oldest items come back.
    wide = api.get("aggTrades", symbol="BTCUSDT", startTime=t0, endTime=t0 + 30 * H, limit=50)
    assert len(wide) == 50 and wide[0]["T"] >= t0
    alone = api.get("aggTrades", symbol="BTCUSDT", startTime=t0, limit=50)
    assert alone == wide
    before = api.get("aggTrades", symbol="BTCUSDT", endTime=t0, limit=10)
    assert before[-1]["T"] <= t0 and before[-1]["a"] + 1 == wide[0]["a"]
    recent = api.get("aggTrades", symbol="BTCUSDT")
    assert len(recent) == 500 and recent[-1]["T"] < api.now // 1_000_000
    assert {"a", "p", "q", "f", "l", "T", "m", "M"} == set(recent[0])
    r = api.raw("aggTrades", symbol="BTCUSDT", fromId=5, startTime=t0)
    assert r.status_code == 400 and r.json()["code"] == -1128


def test_historical_trades(api: Api) -> None:
    recent = api.get("historicalTrades", symbol="BTCUSDT", limit=5)
    assert len(recent) == 5 and recent[-1]["time"] < api.now // 1_000_000
    ids = [t["id"] for t in recent]
    assert ids == list(range(ids[0], ids[0] + 5))
    page1 = api.get("historicalTrades", symbol="BTCUSDT", fromId=1000, limit=300)
    page2 = api.get("historicalTrades", symbol="BTCUSDT", fromId=page1[-1]["id"] + 1)
    assert [t["id"] for t in page1 + page2] == list(range(1000, 1800))
    t = page1[0]
    assert set(t) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
    assert Decimal(t["quoteQty"]) == Decimal(t["price"]) * Decimal(t["qty"])
    agg = api.get("aggTrades", symbol="BTCUSDT", startTime=page1[0]["time"], limit=5)
    assert agg[0]["f"] <= page1[0]["id"] + 5


def test_many_trades_share_one_millisecond(busy_api: Api) -> None:
    start = ms("2024-01-16T15:00Z")
    tr = busy_api.get("aggTrades", symbol="BTCUSDT", startTime=start, limit=1000)
    per_ms: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in tr:
        per_ms[t["T"]].append(t)
    busiest = max(per_ms.values(), key=lambda g: sum(t["l"] - t["f"] + 1 for t in g))
    assert sum(t["l"] - t["f"] + 1 for t in busiest) >= 10
    assert len({t["p"] for t in busiest}) > 1
    # Paging by time would get stuck or skip here; paging by id does not.
    page = busy_api.get("aggTrades", symbol="BTCUSDT", fromId=busiest[3]["a"], limit=2)
    assert [t["a"] for t in page] == [busiest[3]["a"], busiest[3]["a"] + 1]


# -- errors, limits, plumbing -------------------------------------------------------------


@pytest.mark.parametrize(("params", "code", "msg"), [
    ({"symbol": "BTCUSDX", "interval": "1m"}, -1121, "Invalid symbol."),
    ({"symbol": "BTCUSDT", "interval": "2m"}, -1120, "Invalid interval."),
    ({"symbol": "BTCUSDT", "interval": "1H"}, -1120, "Invalid interval."),
    ({"interval": "1m"}, -1102,
     "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
    ({"symbol": "BTCUSDT"}, -1102,
     "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."),
    ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "abc"}, -1100,
     "Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'."),
    ({"symbol": "btcusdt", "interval": "1m"}, -1100,
     "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."),
])
def test_error_bodies(api: Api, params: dict[str, str], code: int, msg: str) -> None:
    r = api.raw("klines", **params)
    assert r.status_code == 400
    assert r.json() == {"code": code, "msg": msg}
    assert "x-mbx-used-weight-1m" in r.headers


def test_exchange_info(api: Api) -> None:
    info = api.get("exchangeInfo")
    assert info["timezone"] == "UTC" and info["serverTime"] == api.now // 1_000_000
    assert {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
            "limit": 6000} in info["rateLimits"]
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    assert (btc["status"], btc["baseAsset"], btc["quoteAsset"]) == ("TRADING", "BTC", "USDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert [s["symbol"] for s in api.get("exchangeInfo", symbol="SOLEUR")["symbols"]] == ["SOLEUR"]
    two = api.get("exchangeInfo", symbols='["ETHUSDT","BTCUSDT"]')["symbols"]
    assert [s["symbol"] for s in two] == ["ETHUSDT", "BTCUSDT"]
    assert api.raw("exchangeInfo", symbol="NOPE").json() == {"code": -1121,
                                                             "msg": "Invalid symbol."}


def test_weight_429_then_418_ban(api_for: Any) -> None:
    settings = EmulatorSettings(seed=11, now=parse_time("2024-03-01", now=0), trades_scale=0.02,
                                venues={"binance": {"weight_limit": 10, "ban_after": 2,
                                                    "ban_s": 30}})
    with EmulatorServer(settings) as emu, api_for(emu) as api:
        k = dict(symbol="BTCUSDT", interval="1h", limit=2)
        used = [api.raw("klines", **k).headers["X-MBX-USED-WEIGHT-1M"] for _ in range(5)]
        assert used == ["2", "4", "6", "8", "10"]
        limited = api.raw("klines", **k)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json() == {"code": -1003, "msg": (
            "Too much request weight used; current limit is 10 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.")}
        assert api.raw("klines", **k).status_code == 429
        banned = api.raw("klines", **k)  # third rejection > ban_after
        assert banned.status_code == 418 and banned.headers["Retry-After"] == "30"
        assert banned.json()["msg"].startswith("Way too much request weight used; IP banned")
        assert api.raw("ping").status_code == 418  # everything, until it lifts
        api.admin("reset", {})
        assert api.raw("ping").status_code == 200


def test_date_header_and_admin_clock(api_for: Any) -> None:
    start = parse_time("2024-03-01T00:00Z", now=0)
    with EmulatorServer(EmulatorSettings(now=start, trades_scale=0.02)) as emu, \
            api_for(emu) as api:
        assert api.raw("time").headers["date"] == "Fri, 01 Mar 2024 00:00:00 GMT"
        before = api.get("klines", symbol="BTCUSDT", interval="1d", limit=1)[0]
        assert before[0] == start // 1_000_000 and before[8] == 0  # opens at now: empty
        assert api.admin("clock", {"advance_s": 86400})["now_ns"] == start + 86_400 * 10**9
        assert api.get("time")["serverTime"] == start // 1_000_000 + 86_400_000
        after = api.get("klines", symbol="BTCUSDT", interval="1d", limit=2)
        assert after[0][0] == before[0] and after[0][8] > 0
        api.admin("clock", {"now_ns": start})
        assert api.admin("clock")["now_ns"] == start
        assert api.admin("health")["status"] == "ok"
        r = httpx.get(emu.base_url + "/nowhere/api")
        assert r.status_code == 404


def test_time_zone_days(api: Api) -> None:
    rows = api.get("klines", symbol="BTCUSDT", interval="1d", timeZone="8",
                   startTime=ms("2024-01-10"), limit=1)
    assert rows[0][0] == ms("2024-01-10T16:00Z")  # local midnight of Jan 11 in UTC+8
    hours = api.get("klines", symbol="BTCUSDT", interval="1h", startTime=rows[0][0], limit=24)
    assert rollup(hours) == as_agg(rows[0])
    assert api.raw("klines", symbol="BTCUSDT", interval="1d", timeZone="15").status_code == 400


def test_maintenance_and_future_listing(api_for: Any) -> None:
    a, b = parse_time("2024-02-10T02:00Z", now=0), parse_time("2024-02-10T04:00Z", now=0)
    settings = EmulatorSettings(now=a + 30 * 60 * 10**9, trades_scale=0.02, maintenance=[(a, b)])
    with EmulatorServer(settings) as emu, api_for(emu) as api:
        btc = api.get("exchangeInfo", symbol="BTCUSDT")["symbols"][0]
        assert btc["status"] == "BREAK"
        rows = api.get("klines", symbol="BTCUSDT", interval="1m", limit=5)
        assert rows[-1][0] == a // 1_000_000 - M  # no bars in the window
    with EmulatorServer(EmulatorSettings(now=parse_time("2020-01-01", now=0))) as emu, \
            api_for(emu) as api:
        assert "SOLEUR" not in [s["symbol"] for s in api.get("exchangeInfo")["symbols"]]
        assert api.raw("klines", symbol="SOLEUR", interval="1m").json()["code"] == -1121
