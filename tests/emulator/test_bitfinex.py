"""The Bitfinex v2 venue over real loopback HTTP: conf lists, candle and trade windows
(inclusive ms bounds, sort, limits), paging trades by timestamp through a millisecond
shared by many trades, array errors, per-endpoint blocks, and a stock ccxt client."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from venue_client import NOW, T0, VenueClient, stock_ccxt, venue_server

from dccd_cli.emulator import EmulatorServer
from dccd_cli.timeutil import parse_time

MS = 1_000_000
T0_MS, NOW_MS = T0 // MS, NOW // MS
M, H = 60_000, 3_600_000
RELAXED = {"candles_per_min": 10**6, "trades_per_min": 10**6, "conf_per_min": 10**6}


class Bitfinex(VenueClient):
    """A raw client of ``/bitfinex/v2``."""

    venue, prefix = "bitfinex", "/v2"


def venue(settings: dict[str, Any]) -> EmulatorServer:
    return venue_server("bitfinex", settings)


@pytest.fixture(scope="module")
def bf() -> Iterator[Bitfinex]:
    with venue(RELAXED) as emu, Bitfinex(emu) as b:
        yield b


CANDLES = "/candles/trade:{}:tBTCUST/hist"
TRADES = "/trades/tBTCUST/hist"


# -- conf ----------------------------------------------------------------------------------


def test_conf_lists(bf: Bitfinex) -> None:
    assert bf.get("/conf/pub:list:pair:exchange") == [["BTCUST", "ETHUST", "SOLEUR"]]
    info, futures, securities, margin = bf.get(
        "/conf/pub:info:pair,pub:info:pair:futures,pub:list:pair:securities,"
        "pub:list:pair:margin")
    assert [p[0] for p in info] == ["BTCUST", "ETHUST", "SOLEUR"]
    assert info[0][1][3:5] == ["0.00001", "2000.0"]  # min and max order size
    assert (futures, securities, margin) == ([], [], [])
    assert bf.get("/conf/pub:map:currency:sym,pub:nope") == [[["UST", "USDT"]], None]


# -- candles -------------------------------------------------------------------------------


def test_candles_default_newest_first_with_the_forming_bar(bf: Bitfinex) -> None:
    rows = bf.get(CANDLES.format("1m"))
    assert len(rows) == 100 and rows[0][0] == NOW_MS // M * M  # still forming
    assert all(a[0] > b[0] for a, b in zip(rows, rows[1:], strict=False))
    mts, op, close, high, low, volume = rows[1]
    assert all(isinstance(x, (int, float)) for x in rows[1])
    assert low <= min(op, close) <= max(op, close) <= high and volume > 0
    assert bf.get("/candles/trade:1m:tBTCUST/last") == rows[0]


def test_candles_bounds_sort_and_limits(bf: Bitfinex) -> None:
    path = CANDLES.format("1h")
    up = bf.get(path, start=T0_MS, sort=1, limit=5)
    assert [r[0] for r in up] == [T0_MS + k * H for k in range(5)]
    # start >= and end <= both inclusive; sort -1 takes the newest of the window.
    both = bf.get(path, start=T0_MS, end=T0_MS + 4 * H, limit=10)
    assert [r[0] for r in both] == [T0_MS + k * H for k in range(4, -1, -1)]
    assert bf.get(path, start=T0_MS + 1, end=T0_MS + 4 * H, sort=1) == up[1:]
    assert bf.get(path, end=T0_MS + 4 * H, limit=2) == both[:2]
    oldest = bf.get(path, sort=1, limit=1)  # sort=1 without start: the first data
    assert oldest[0][0] == parse_time("2017-08-17T04:00Z", now=0) // MS
    assert len(bf.get(CANDLES.format("1m"), limit=10000)) == 10000
    r = bf.raw(path, limit=10001)
    assert (r.status_code, r.json()) == (500, ["error", 10020, "limit: invalid"])


@pytest.mark.parametrize("tf", ["1m", "5m", "15m", "30m", "1h", "3h", "6h", "12h", "1D",
                                "1W", "7D", "14D", "1M"])
def test_every_timeframe(bf: Bitfinex, tf: str) -> None:
    rows = bf.get(CANDLES.format(tf), start=T0_MS - 40 * 86_400_000, sort=1, limit=3)
    assert len(rows) == 3 and rows[0][0] < rows[1][0] < rows[2][0]


def test_candle_errors(bf: Bitfinex) -> None:
    for tf in ("2m", "1d", "4H"):
        r = bf.raw(CANDLES.format(tf))
        assert (r.status_code, r.json()) == (500, ["error", 10020, "time_interval: invalid"])
    assert bf.get("/candles/trade:1m:tFOOBAR/hist") == []  # [B] unknown symbol on candles
    assert bf.get("/candles/trade:1m:fUSD:p30/hist") == []


def test_empty_intervals_are_absent(bf: Bitfinex) -> None:
    start = parse_time("2024-01-03", now=0) // MS
    rows = bf.get("/candles/trade:1m:tSOLEUR/hist", start=start, end=start + 3 * 86_400_000,
                  limit=10000)
    assert 0 < len(rows) < 100 and all(r[5] > 0 for r in rows)


def test_candles_are_aggregates_of_the_trades(bf: Bitfinex) -> None:
    for minute in (T0_MS + 9 * H + 31 * M, NOW_MS // M * M):  # a past and the forming one
        bar = bf.get(CANDLES.format("1m"), start=minute, end=minute, limit=1)[0]
        tr = bf.get(TRADES, start=minute, end=minute + M - 1, sort=1, limit=10000)
        assert 0 < len(tr) < 10000 and all(minute <= t[1] < NOW_MS for t in tr)
        prices = [t[3] for t in tr]
        assert bar[1:5] == [prices[0], prices[-1], max(prices), min(prices)]
        assert Decimal(repr(bar[5])) == sum(Decimal(repr(abs(t[2]))) for t in tr)


# -- trades --------------------------------------------------------------------------------


def test_trades_default_and_row_format(bf: Bitfinex) -> None:
    rows = bf.get(TRADES)
    ids = [r[0] for r in rows]
    assert len(rows) == 120 and ids == list(range(ids[0], ids[0] - 120, -1))
    assert rows[0][1] < NOW_MS
    model = bf.server.market.trades_from_id("BTC-USDT", ids[-1], 120, NOW)
    assert [r[2] < 0 for r in reversed(rows)] == model.buyer_maker.tolist()  # taker sold
    up = bf.get(TRADES, start=T0_MS, sort=1, limit=10)
    assert up[0][0] == bf.server.market.trade_id_at("BTC-USDT", T0) and up[0][1] >= T0_MS
    assert [r[0] for r in up] == list(range(up[0][0], up[0][0] + 10))
    # end is inclusive: a trade exactly at `end` is in.
    at = up[5][1]
    last = bf.get(TRADES, start=T0_MS, end=at, sort=1, limit=10000)
    assert last[-1][1] == at and last[:6] == up[:6]
    assert bf.get(TRADES, sort=1, limit=1)[0][0] == 0  # from the listing, the first trade
    r = bf.raw("/trades/tFOOBAR/hist")
    assert (r.status_code, r.json()) == (500, ["error", 10020, "symbol: invalid"])
    assert bf.raw(TRADES, limit=10001).json() == ["error", 10020, "limit: invalid"]
    assert bf.raw(TRADES, start="soon").json() == ["error", 10020, "start: invalid"]


def test_timestamp_paging_through_a_busy_millisecond(bf: Bitfinex) -> None:
    window = bf.get(TRADES, start=T0_MS, end=T0_MS + 2 * H, sort=1, limit=10000)
    per_ms = Counter(t[1] for t in window)
    busiest = max(per_ms.values())
    assert busiest >= 8  # one sweep of the book: many trades in one ms
    # Page forward by start=<last MTS> (inclusive), dropping ids already seen.
    limit = busiest + 3
    seen: dict[int, list[Any]] = {}
    start, pages, split = T0_MS, 0, 0
    while start <= T0_MS + 2 * H:
        page = bf.get(TRADES, start=start, end=T0_MS + 2 * H, sort=1, limit=limit)
        fresh = [t for t in page if t[0] not in seen]
        if not fresh:
            break
        split += page[-1][1] == page[-2][1] and per_ms[page[-1][1]] > 1
        seen.update((t[0], t) for t in fresh)
        start, pages = page[-1][1], pages + 1
    assert list(seen.values()) == window and pages > len(window) // limit and split > 0


def test_window_settings() -> None:
    with venue({**RELAXED, "end_inclusive": False, "default_sort": 1}) as emu, \
            Bitfinex(emu) as b:
        rows = b.get(CANDLES.format("1h"), start=T0_MS, end=T0_MS + 4 * H)
        assert [r[0] for r in rows] == [T0_MS + k * H for k in range(4)]  # end excluded


# -- rate limits ---------------------------------------------------------------------------


def test_rate_limit_blocks_the_endpoint() -> None:
    with venue({"trades_per_min": 2, "candles_per_min": 2}) as emu, Bitfinex(emu) as b:
        assert [b.raw(TRADES).status_code for _ in range(2)] == [200, 200]
        r = b.raw(TRADES)
        assert (r.status_code, r.json()) == (429, ["error", 11010, "ratelimit: error"])
        assert b.raw(TRADES).status_code == 429  # blocked
        assert b.raw(CANDLES.format("1m")).status_code == 200  # per endpoint
        httpx.post(emu.base_url + "/_emulator/reset")
        assert b.raw(TRADES).status_code == 200


# -- a third reader: stock ccxt ------------------------------------------------------------


def test_stock_ccxt_reads_the_venue(bf: Bitfinex) -> None:
    ex, markets = stock_ccxt("bitfinex", bf)
    assert markets["BTC/USDT"]["id"] == "tBTCUST"
    candles = ex.fetch_ohlcv("BTC/USDT", "1h", since=T0_MS, limit=48)
    rows = bf.get(CANDLES.format("1h"), start=T0_MS, sort=1, limit=48)
    assert candles == [[r[0], r[1], r[3], r[4], r[2], r[5]] for r in rows]
    trades = ex.fetch_trades("BTC/USDT", since=T0_MS, limit=50)
    raw = bf.get(TRADES, start=T0_MS, sort=1, limit=50)
    assert [t["id"] for t in trades] == [str(r[0]) for r in raw]
    assert [t["timestamp"] for t in trades] == [r[1] for r in raw]
    assert [t["side"] for t in trades] == ["sell" if r[2] < 0 else "buy" for r in raw]
    assert [t["amount"] for t in trades] == [abs(r[2]) for r in raw]
    recent = ex.fetch_ohlcv("ETH/USDT", "1m")  # no since: limit=100, newest first
    assert len(recent) == 100 and recent[-1][0] == NOW_MS // M * M
