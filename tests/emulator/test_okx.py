"""The OKX venue over real loopback HTTP: cursors, bar codes, the forming bar, trade-id
paging, the 3-month window, errors inside HTTP 200, per-endpoint rate limits, ccxt."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from venue_client import VenueClient, venue_server

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.timeutil import parse_time

H, M = 3_600_000, 60_000


def ms(text: str) -> int:
    return parse_time(text, now=0) // 1_000_000


T0 = ms("2024-01-02")  # inside the 3-month trade window


class Okx(VenueClient):
    """Raw client of ``/okx/api/v5``; ``get`` asserts the success envelope."""

    venue, prefix = "okx", "/api/v5"

    def unwrap(self, body: Any) -> Any:
        assert (body["code"], body["msg"]) == ("0", ""), body
        return body["data"]


@pytest.fixture(scope="module")
def unlimited() -> Iterator[EmulatorServer]:
    """The market of the conftest server, without OKX's 20 requests / 2 s per endpoint."""
    with venue_server("okx", {"rate_limits": {}}) as emu:
        yield emu


@pytest.fixture(scope="module")
def okx(unlimited: EmulatorServer) -> Iterator[Okx]:
    with Okx(unlimited) as api:
        yield api


def candles(okx: Okx, path: str = "/market/history-candles", **params: Any) -> list[list[str]]:
    return okx.get(path, instId="BTC-USDT", **params)  # type: ignore[no-any-return]


def ts(rows: list[list[str]]) -> list[int]:
    return [int(r[0]) for r in rows]


def test_instruments_and_time(okx: Okx) -> None:
    spot = {i["instId"]: i for i in okx.get("/public/instruments", instType="SPOT")}
    assert set(spot) == {"BTC-USDT", "ETH-USDT", "SOL-EUR"}
    btc = spot["BTC-USDT"]
    assert (btc["instType"], btc["baseCcy"], btc["quoteCcy"], btc["state"]) == \
        ("SPOT", "BTC", "USDT", "live")
    assert (btc["tickSz"], btc["lotSz"], btc["minSz"]) == ("0.01", "0.00001", "0.00001")
    assert okx.get("/public/instruments", instType="SWAP") == []
    assert okx.raw("/public/instruments").json()["code"] == "50014"
    assert okx.get("/public/time") == [{"ts": str(okx.now)}]


def test_history_candle_cursors_are_exclusive_newest_first(okx: Okx) -> None:
    k = dict(bar="1H")
    # ccxt's window: before=since-1, after=since+L*bar gives exactly L bars from since.
    assert ts(candles(okx, **k, before=T0 - 1, after=T0 + 5 * H)) == \
        [T0 + i * H for i in (4, 3, 2, 1, 0)]
    assert ts(candles(okx, **k, before=T0, after=T0 + 3 * H)) == [T0 + 2 * H, T0 + H]
    # A window wider than the limit gives its newest page.
    assert ts(candles(okx, **k, before=T0 - 1, after=T0 + 50 * H, limit=2)) == \
        [T0 + 49 * H, T0 + 48 * H]
    assert len(candles(okx, **k, after=T0)) == 100  # default limit
    assert len(candles(okx, bar="1m", after=T0, limit=300)) == 300
    assert len(candles(okx, bar="1m", after=T0, limit=1000)) == 300  # capped
    # Paging back by the oldest ts is gapless.
    seen: list[int] = []
    after = T0
    for _ in range(3):
        rows = candles(okx, bar="1m", after=after, limit=300)
        seen += ts(rows)
        after = int(rows[-1][0])
    assert seen == [T0 - (i + 1) * M for i in range(900)]


def test_rows_are_strings_and_the_forming_bar_is_unconfirmed(okx: Okx) -> None:
    rows = candles(okx, "/market/candles", bar="1m", limit=3)
    assert all(len(r) == 9 and all(isinstance(x, str) for x in r) for r in rows)
    assert ts(rows) == [okx.now // M * M - i * M for i in range(3)]
    assert [r[8] for r in rows] == ["0", "1", "1"]
    # The forming bar holds exactly the trades before now.
    trades = okx.get("/market/history-trades", instId="BTC-USDT", type=2, after=okx.now + 1)
    mine = [t for t in trades if int(t["ts"]) >= int(rows[0][0])]
    assert 0 < len(mine) < len(trades)
    assert Decimal(rows[0][5]) == sum(Decimal(t["sz"]) for t in mine)
    assert rows[0][4] == mine[0]["px"] and rows[0][1] == mine[-1]["px"]
    assert rows[0][6] == rows[0][7]  # spot: volCcy and volCcyQuote are both quote units
    hour = candles(okx, "/market/candles", bar="1H", limit=1)[0]
    assert (int(hour[0]), hour[8]) == (okx.now // H * H, "0")


def test_market_candles_keep_only_the_latest_1440(okx: Okx) -> None:
    newest = okx.now // M * M
    oldest = ts(candles(okx, "/market/candles", bar="1m", after=newest - 1439 * M + 1, limit=5))
    assert oldest == [newest - 1439 * M]
    assert candles(okx, "/market/candles", bar="1m", after=newest - 1439 * M) == []
    assert len(candles(okx, bar="1m", after=newest - 1439 * M, limit=5)) == 5


def test_bar_codes_hong_kong_and_utc(okx: Okx) -> None:
    day = candles(okx, bar="1D", after=ms("2024-01-11"), limit=1)[0]
    assert int(day[0]) == ms("2024-01-10T16:00Z")  # midnight in UTC+8
    assert ts(candles(okx, bar="1Dutc", after=ms("2024-01-11"), limit=1)) == [ms("2024-01-10")]
    hours = candles(okx, bar="1H", before=int(day[0]) - 1, after=int(day[0]) + 24 * H, limit=24)
    assert len(hours) == 24
    assert Decimal(day[5]) == sum(Decimal(h[5]) for h in hours)
    assert (day[1], day[4]) == (hours[-1][1], hours[0][4])
    assert max(Decimal(h[2]) for h in hours) == Decimal(day[2])
    assert ts(candles(okx, bar="6H", after=ms("2024-01-11"), limit=4)) == \
        [ms("2024-01-10T22:00Z"), ms("2024-01-10T16:00Z"), ms("2024-01-10T10:00Z"),
         ms("2024-01-10T04:00Z")]
    assert ts(candles(okx, bar="1W", after=ms("2024-01-11"), limit=1)) == [ms("2024-01-07T16:00Z")]
    assert ts(candles(okx, bar="1Wutc", after=ms("2024-01-11"), limit=1)) == [ms("2024-01-08")]
    assert ts(candles(okx, bar="1M", after=ms("2024-02-10"), limit=1)) == [ms("2024-01-31T16:00Z")]
    assert ts(candles(okx, bar="3Mutc", after=ms("2024-02-10"), limit=1)) == [ms("2024-01-01")]
    for bar in ("1s", "3m", "5m", "15m", "30m", "2H", "4H", "12H", "2D", "3D", "6Hutc"):
        rows = candles(okx, bar=bar, limit=3)
        assert len(rows) == 3 and int(rows[0][0]) > int(rows[1][0]) > int(rows[2][0])


def test_one_second_bars_only_for_three_months(okx: Okx) -> None:
    assert len(candles(okx, bar="1s", after=okx.now - 80 * 86_400_000, limit=5)) == 5
    assert candles(okx, bar="1s", after=okx.now - 91 * 86_400_000, limit=5) == []


def test_minute_candle_is_the_aggregate_of_its_trades(okx: Okx) -> None:
    start = T0 + 7 * M
    bar = candles(okx, bar="1m", before=start - 1, after=start + M)[0]
    # Page back from the end of the minute by trade id until the minute is covered.
    page = okx.get("/market/history-trades", instId="BTC-USDT", type=2, after=start + M)
    trades = list(page)
    while int(trades[-1]["ts"]) >= start:
        trades += okx.get("/market/history-trades", instId="BTC-USDT",
                          after=trades[-1]["tradeId"])
    mine = [t for t in trades if int(t["ts"]) >= start]
    assert Decimal(bar[5]) == sum(Decimal(t["sz"]) for t in mine)
    assert Decimal(bar[6]) == sum(Decimal(t["sz"]) * Decimal(t["px"]) for t in mine)
    assert (bar[1], bar[4]) == (mine[-1]["px"], mine[0]["px"])
    assert Decimal(bar[2]) == max(Decimal(t["px"]) for t in mine)
    assert Decimal(bar[3]) == min(Decimal(t["px"]) for t in mine)


def test_history_trades_paging_by_trade_id_has_no_gap_or_duplicate(okx: Okx) -> None:
    first = okx.get("/market/history-trades", instId="BTC-USDT", type=2, after=T0)
    assert len(first) == 100  # default and maximum
    assert all(int(t["ts"]) < T0 for t in first)
    ids = [int(t["tradeId"]) for t in first]
    for _ in range(4):
        page = okx.get("/market/history-trades", instId="BTC-USDT", after=ids[-1])
        ids += [int(t["tradeId"]) for t in page]
    assert ids == list(range(ids[0], ids[0] - 500, -1))
    item = first[0]
    assert set(item) == {"instId", "side", "sz", "source", "px", "tradeId", "ts"}
    assert item["side"] in ("buy", "sell") and item["source"] == "0"
    # before: newer than the id (the latest page when alone); both: between, exclusive.
    newer = okx.get("/market/history-trades", instId="BTC-USDT", before=ids[0] - 3,
                    after=ids[0] + 1)
    assert [int(t["tradeId"]) for t in newer] == [ids[0], ids[0] - 1, ids[0] - 2]
    latest = okx.get("/market/history-trades", instId="BTC-USDT", before=ids[0], limit=3)
    assert latest == okx.get("/market/history-trades", instId="BTC-USDT", limit=3)
    recent = okx.get("/market/trades", instId="BTC-USDT", limit=1000)
    assert len(recent) == 500 and recent[:3] == latest


def test_history_trades_cover_only_three_months(okx: Okx) -> None:
    old = okx.now - 91 * 86_400_000
    assert okx.get("/market/history-trades", instId="BTC-USDT", type=2, after=old) == []
    edge = okx.get("/market/history-trades", instId="BTC-USDT", type=2,
                   after=okx.now - 89 * 86_400_000)
    assert len(edge) == 100
    assert okx.get("/market/history-trades", instId="BTC-USDT", after=5) == []


@pytest.mark.parametrize(("params", "code", "msg"), [
    ({"instId": "BTC-USDX"}, "51001", "Instrument ID does not exist"),
    ({"instId": "BTCUSDT"}, "51001", "Instrument ID does not exist"),
    ({"instId": "BTC-USDT", "bar": "1h"}, "51000", "Parameter bar error"),
    ({"instId": "BTC-USDT", "bar": "7m"}, "51000", "Parameter bar error"),
    ({"instId": "BTC-USDT", "limit": "abc"}, "51000", "Parameter limit error"),
    ({}, "50014", "Parameter instId can not be empty."),
])
def test_errors_come_inside_http_200(okx: Okx, params: dict[str, str], code: str,
                                     msg: str) -> None:
    r = okx.raw("/market/history-candles", **params)
    assert r.status_code == 200
    assert r.json() == {"code": code, "data": [], "msg": msg}


def test_believed_behaviour_is_settable(okx: Okx) -> None:
    flat = okx.get("/market/history-candles", instId="SOL-EUR", bar="1m", after=T0, limit=300)
    assert any(r[5] == "0" for r in flat)  # the illiquid pair has empty minutes
    believed = {"rate_limits": {}, "candles_limit_max": 100, "limit_over_max": "error",
                "empty_candles": "omit", "candles_newest_first": False}
    with venue_server("okx", believed) as emu, Okx(emu) as api:
        rows = api.get("/market/history-candles", instId="SOL-EUR", bar="1m", after=T0,
                       limit=100)
        assert len(rows) == 100 and all(r[5] != "0" for r in rows)
        assert ts(rows) == sorted(ts(rows))
        assert api.raw("/market/history-candles", instId="BTC-USDT", limit=101).json() == \
            {"code": "51000", "data": [], "msg": "Parameter limit error"}
    with pytest.raises(ValueError, match="empty_candles"):
        EmulatorServer(EmulatorSettings(venues={"okx": {"empty_candles": "zero"}}))


def test_rate_limit_is_per_endpoint() -> None:
    limits = {"/market/candles": (3, 60), "/market/history-candles": (5, 60)}
    with venue_server("okx", {"rate_limits": limits}, now=parse_time("2024-03-01", now=0)) \
            as emu, Okx(emu) as api:
        k = dict(instId="BTC-USDT", limit=1)
        assert [api.raw("/market/candles", **k).status_code for _ in range(4)] == \
            [200, 200, 200, 429]
        limited = api.raw("/market/candles", **k)
        assert limited.json() == {"msg": "Too Many Requests", "code": "50011"}
        assert api.raw("/market/history-candles", **k).status_code == 200  # its own budget
        assert api.raw("/public/time").status_code == 200  # no limit configured
        httpx.post(emu.base_url + "/_emulator/reset")
        assert api.raw("/market/candles", **k).status_code == 200


# -- a stock ccxt client ---------------------------------------------------------------

ccxt = pytest.importorskip("ccxt")


@pytest.fixture(scope="module")
def ccxt_okx(unlimited: EmulatorServer) -> Any:
    ex = ccxt.okx({"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["spot"]}}})
    ex.urls["api"]["rest"] = unlimited.venue_url("okx")
    return ex


def test_ccxt_loads_markets_and_fetches_what_the_venue_serves(ccxt_okx: Any, okx: Okx) -> None:
    markets = ccxt_okx.load_markets()
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["spot"], btc["active"]) == ("BTC-USDT", True, True)
    candles_ = ccxt_okx.fetch_ohlcv("BTC/USDT", "1h", since=T0, limit=24)
    rows = candles(okx, bar="1H", before=T0 - 1, after=T0 + 24 * H)[::-1]
    assert [c[0] for c in candles_] == ts(rows) == [T0 + i * H for i in range(24)]
    assert [c[1:6] for c in candles_] == [[float(x) for x in r[1:6]] for r in rows]
    trades = ccxt_okx.fetch_trades("BTC/USDT", limit=50)
    raw = okx.get("/market/trades", instId="BTC-USDT", limit=50)[::-1]
    assert [t["id"] for t in trades] == [r["tradeId"] for r in raw]
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == \
        [(float(r["px"]), float(r["sz"]), r["side"]) for r in raw]
