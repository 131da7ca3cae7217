"""The Kraken venue over real loopback HTTP: pair names, the 720-bar OHLC window with its
forming bar, Trades paged forward by ``since=last`` (exact across a millisecond shared by
many trades), errors inside HTTP 200, the call counter, and a stock ccxt client."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from venue_client import NOW, T0, VenueClient, stock_ccxt, venue_server

from dccd_cli.emulator import EmulatorServer
from dccd_cli.timeutil import parse_time

S, MS = 1_000_000_000, 1_000_000
RELAXED = {"counter_max": 1e9}


class Kraken(VenueClient):
    """A raw client: ``kr.result("OHLC", pair="XBTUSDT")`` checks for an empty error list."""

    venue, prefix = "kraken", "/0/public"

    def unwrap(self, body: Any) -> Any:
        assert body["error"] == [], body
        return body["result"]

    result = VenueClient.get  # Kraken calls the payload "result"


def venue(settings: dict[str, Any] | None = None, now: int = NOW) -> EmulatorServer:
    return venue_server("kraken", {**RELAXED, **(settings or {})}, now)


@pytest.fixture(scope="module")
def kr() -> Iterator[Kraken]:
    with venue() as emu, Kraken(emu) as k:
        yield k


def stamp_ns(row: list[Any]) -> int:
    """A row's time float back to whole ms in ns (the model's resolution)."""
    return round(row[2] * 1000) * MS


# -- reference data ------------------------------------------------------------------------


def test_asset_pairs_assets_and_time(kr: Kraken) -> None:
    pairs = kr.result("AssetPairs")
    assert list(pairs) == ["XBTUSDT", "ETHUSDT", "SOLEUR"]
    btc = pairs["XBTUSDT"]
    assert (btc["altname"], btc["wsname"], btc["base"], btc["quote"]) == \
        ("XBTUSDT", "XBT/USDT", "XXBT", "USDT")
    assert (btc["pair_decimals"], btc["lot_decimals"], btc["status"]) == (2, 5, "online")
    assert (pairs["ETHUSDT"]["base"], pairs["SOLEUR"]["base"], pairs["SOLEUR"]["quote"]) == \
        ("XETH", "SOL", "ZEUR")
    assert list(kr.result("AssetPairs", pair="SOLEUR,XBTUSDT")) == ["SOLEUR", "XBTUSDT"]
    assets = kr.result("Assets")
    assert {"XXBT", "USDT", "XETH", "SOL", "ZEUR"} == set(assets)
    assert assets["XXBT"]["altname"] == "XBT"
    assert kr.result("Time") == {"unixtime": NOW // S, "rfc1123": "Fri, 01 Mar 24 12:34:56 +0000"}


@pytest.mark.parametrize(("endpoint", "params", "error"), [
    ("OHLC", {"pair": "XBTUSDX"}, "EQuery:Unknown asset pair"),
    ("Trades", {"pair": "BTC/USDT"}, "EQuery:Unknown asset pair"),
    ("AssetPairs", {"pair": "NOPE"}, "EQuery:Unknown asset pair"),
    ("OHLC", {"pair": "XBTUSDT", "interval": "2"}, "EGeneral:Invalid arguments"),
    ("OHLC", {"pair": "XBTUSDT", "interval": "1h"}, "EGeneral:Invalid arguments"),
    ("OHLC", {"pair": "XBTUSDT", "since": "yesterday"}, "EGeneral:Invalid arguments"),
    ("Trades", {"pair": "XBTUSDT", "count": "0"}, "EGeneral:Invalid arguments"),
    ("Trades", {"pair": "XBTUSDT", "since": "-5"}, "EGeneral:Invalid arguments"),
])
def test_errors_come_with_http_200(kr: Kraken, endpoint: str, params: dict[str, str],
                                   error: str) -> None:
    r = kr.raw(endpoint, **params)
    assert (r.status_code, r.json()) == (200, {"error": [error]})


# -- OHLC ----------------------------------------------------------------------------------


def test_ohlc_window_forming_bar_and_last(kr: Kraken) -> None:
    res = kr.result("OHLC", pair="XBTUSDT", interval=60)
    rows = res["XBTUSDT"]
    forming = NOW // S // 3600 * 3600
    assert len(rows) == 720 and rows[-1][0] == forming
    assert [r[0] for r in rows] == [forming - 3600 * k for k in range(719, -1, -1)]
    assert res["last"] == forming - 3600  # the last committed bar
    row = rows[0]
    assert len(row) == 8 and isinstance(row[0], int) and isinstance(row[7], int)
    assert all(isinstance(x, str) and len(x.split(".")[1]) == 2 for x in row[1:6])
    assert len(row[6].split(".")[1]) == 8
    assert Decimal(row[3]) <= Decimal(row[5]) <= Decimal(row[2])  # low <= vwap <= high
    # Altname or internal name: the key is the internal name, and `since` cannot reach
    # beyond the window.
    assert kr.result("OHLC", pair="xbtusdt", interval=60, since=0) == res
    assert list(kr.result("OHLC", pair="ETHUSDT"))[0] == "ETHUSDT"


def test_ohlc_since_is_exclusive_and_the_forming_bar_always_present(kr: Kraken) -> None:
    rows = kr.result("OHLC", pair="XBTUSDT", interval=5)["XBTUSDT"]
    since = rows[700][0]
    after = kr.result("OHLC", pair="XBTUSDT", interval=5, since=since)["XBTUSDT"]
    assert after == rows[701:]
    beyond = kr.result("OHLC", pair="XBTUSDT", interval=5, since=NOW // S + 10**6)
    assert beyond["XBTUSDT"] == rows[-1:]
    with venue({"ohlc_since": "inclusive"}) as emu:
        assert Kraken(emu).result("OHLC", pair="XBTUSDT", interval=5,
                                  since=since)["XBTUSDT"] == rows[700:]


@pytest.fixture(scope="module")
def short_kr() -> Iterator[Kraken]:
    """A venue keeping 12 bars, so that week-long bars do not walk back to 2017 cold."""
    with venue({"ohlc_entries": 12}) as emu:
        yield Kraken(emu)


@pytest.mark.parametrize("interval", [1, 5, 15, 30, 60, 240, 1440, 10080, 21600])
def test_every_interval(short_kr: Kraken, interval: int) -> None:
    rows = short_kr.result("OHLC", pair="ETHUSDT", interval=interval)["ETHUSDT"]
    step = interval * 60
    assert len(rows) == 12
    assert all(b[0] - a[0] == step for a, b in zip(rows, rows[1:], strict=False))
    assert rows[-1][0] <= NOW // S < rows[-1][0] + step
    assert rows[0][0] % step == 0  # 7- and 15-day bars open on epoch multiples [B]


def test_weekly_bars_can_open_on_monday() -> None:
    with venue({"week_anchor": "monday", "ohlc_entries": 12}) as emu:
        rows = Kraken(emu).result("OHLC", pair="ETHUSDT", interval=10080)["ETHUSDT"]
    assert rows[-1][0] == parse_time("2024-02-26", now=0) // S  # a Monday


def test_illiquid_pair_flat_bars_or_omitted(kr: Kraken) -> None:
    rows = kr.result("OHLC", pair="SOLEUR", interval=1)["SOLEUR"]
    empty = [r for r in rows if r[7] == 0]
    assert len(rows) == 720 and len(empty) > 600
    prev = {r[0] + 60: r[4] for r in rows}
    for r in empty[1:]:
        assert r[1] == r[2] == r[3] == r[4] == prev[r[0]]
        assert (r[5], r[6]) == ("0.00", "0.00000000")
    with venue({"ohlc_empty": "omit"}) as emu:
        kept = Kraken(emu).result("OHLC", pair="SOLEUR", interval=1)["SOLEUR"]
    assert [r for r in kept[:-1]] == [r for r in rows[:-1] if r[7] > 0]
    assert kept[-1] == rows[-1]  # the forming bar stays, traded or not


def test_ohlc_rows_are_aggregates_of_the_trades(kr: Kraken) -> None:
    bars = kr.result("OHLC", pair="XBTUSDT", interval=1)["XBTUSDT"]
    for bar in (bars[100], bars[-1]):  # a committed bar and the forming one
        trades = kr.result("Trades", pair="XBTUSDT", since=bar[0])["XBTUSDT"]
        tr = [t for t in trades if stamp_ns(t) < (bar[0] + 60) * S]
        assert 0 < len(tr) < len(trades) or bar is bars[-1]
        prices = [Decimal(t[0]) for t in tr]
        volume = sum(Decimal(t[1]) for t in tr)
        assert [Decimal(x) for x in bar[1:5]] == [prices[0], max(prices), min(prices),
                                                  prices[-1]]
        assert Decimal(bar[6]) == volume and bar[7] == len(tr)
        vwap = sum(p * Decimal(t[1]) for p, t in zip(prices, tr, strict=True)) / volume
        assert abs(Decimal(bar[5]) - vwap) <= Decimal("0.005")


# -- Trades --------------------------------------------------------------------------------


def test_recent_trades_format(kr: Kraken) -> None:
    res = kr.result("Trades", pair="XBTUSDT")
    rows, last = res["XBTUSDT"], res["last"]
    ids = [r[6] for r in rows]
    assert len(rows) == 1000 and ids == list(range(ids[0], ids[0] + 1000))
    row = rows[0]
    assert isinstance(row[2], float) and row[3] in ("b", "s") and row[4] in ("m", "l")
    assert row[5] == "" and len(row[0].split(".")[1]) == 5 and len(row[1].split(".")[1]) == 8
    model = kr.server.market.trades_from_id("BTC-USDT", ids[0], 1000, NOW)
    assert [stamp_ns(r) for r in rows] == model.ts_ns.tolist()  # the model's ms, exactly
    assert [r[3] for r in rows] == ["s" if m else "b" for m in model.buyer_maker.tolist()]
    # `last` (a string of ns) names the last trade: its ms + (its rank in that ms + 1) us.
    ts = stamp_ns(rows[-1])
    rank = ids[-1] - kr.server.market.trade_id_at("BTC-USDT", ts)
    assert isinstance(last, str) and int(last) == ts + (rank + 1) * 1000 < NOW
    assert len(kr.result("Trades", pair="XBTUSDT", count=7)["XBTUSDT"]) == 7
    assert len(kr.result("Trades", pair="XBTUSDT", count=5000)["XBTUSDT"]) == 1000  # [B]


def test_paging_by_last_is_exact_across_a_busy_millisecond(kr: Kraken) -> None:
    since = T0 // S  # plain seconds are accepted too [B]
    first = kr.result("Trades", pair="ETHUSDT", since=since)
    assert first == kr.result("Trades", pair="ETHUSDT", since=T0)
    ids: list[int] = []
    seams, prev_ms = 0, -1
    cursor = str(since)
    for _ in range(40):
        res = kr.result("Trades", pair="ETHUSDT", since=cursor, count=17)
        rows = res["ETHUSDT"]
        if ids and stamp_ns(rows[0]) // MS == prev_ms:
            seams += 1  # this page resumed inside the millisecond the last one ended in
        ids += [r[6] for r in rows]
        prev_ms = stamp_ns(rows[-1]) // MS
        cursor = res["last"]
    assert ids == list(range(ids[0], ids[0] + 40 * 17))
    assert ids[0] == kr.server.market.trade_id_at("ETH-USDT", T0)
    assert seams > 0


def test_since_settings_and_an_empty_page(kr: Kraken) -> None:
    rows = kr.result("Trades", pair="XBTUSDT", since=T0, count=5)["XBTUSDT"]
    last = kr.result("Trades", pair="XBTUSDT", since=T0, count=2)["last"]
    assert kr.result("Trades", pair="XBTUSDT", since=last, count=2)["XBTUSDT"] == rows[2:4]
    with venue({"trades_since": "inclusive"}) as emu:
        again = Kraken(emu).result("Trades", pair="XBTUSDT", since=last, count=2)["XBTUSDT"]
    assert again == rows[1:3]
    with venue({"last_cursor": "time"}) as emu:
        page = Kraken(emu).result("Trades", pair="XBTUSDT", since=T0, count=2)
        assert int(page["last"]) == stamp_ns(rows[1])
        after = Kraken(emu).result("Trades", pair="XBTUSDT", since=page["last"])["XBTUSDT"]
        assert stamp_ns(after[0]) > stamp_ns(rows[1])  # time > last: no more of that ms
    assert kr.result("Trades", pair="XBTUSDT", since=0, count=2)["XBTUSDT"][0][6] == 0
    nothing = kr.result("Trades", pair="XBTUSDT", since=str(NOW + 1))
    assert nothing == {"XBTUSDT": [], "last": str(NOW + 1)}


# -- rate limit ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 429])
def test_call_counter(status: int) -> None:
    with venue({"counter_max": 3, "counter_decay_per_s": 0.01,
                "rate_limit_status": status}) as emu, Kraken(emu) as k:
        assert [k.raw("Time").status_code for _ in range(3)] == [200, 200, 200]
        r = k.raw("OHLC", pair="XBTUSDT")
        assert (r.status_code, r.json()) == (status, {"error": ["EAPI:Rate limit exceeded"]})
        httpx.post(emu.base_url + "/_emulator/reset")
        assert k.raw("Time").json()["error"] == []


# -- a third reader: stock ccxt ------------------------------------------------------------


def test_stock_ccxt_reads_the_venue(kr: Kraken) -> None:
    ex, markets = stock_ccxt("kraken", kr)
    assert markets["BTC/USDT"]["id"] == "XBTUSDT"
    precision = markets["BTC/USDT"]["precision"]
    assert (precision["amount"], precision["price"]) == (1e-05, 0.01)
    rows = kr.result("OHLC", pair="XBTUSDT", interval=60)["XBTUSDT"]
    since = rows[710][0] * 1000
    candles = ex.fetch_ohlcv("BTC/USDT", "1h", since=since)
    assert candles == [[r[0] * 1000, *(float(x) for x in r[1:5]), float(r[6])]
                       for r in rows[710:]]
    trades = ex.fetch_trades("BTC/USDT", since=T0 // MS, limit=50)
    raw = kr.result("Trades", pair="XBTUSDT", since=T0 // S, count=50)["XBTUSDT"]
    assert [t["id"] for t in trades] == [str(r[6]) for r in raw]
    assert [t["timestamp"] for t in trades] == [int(r[2] * 1000) for r in raw]
    assert [t["side"] for t in trades] == ["sell" if r[3] == "s" else "buy" for r in raw]
