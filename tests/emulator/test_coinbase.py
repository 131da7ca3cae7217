"""The Coinbase Exchange venue over real loopback HTTP: products, candle windows and caps,
newest-first trades paged by the CB-AFTER / CB-BEFORE cursors, errors, the token bucket,
and a stock ccxt client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from venue_client import NOW, T0, VenueClient, stock_ccxt, venue_server

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.timeutil import parse_time

S = 1_000_000_000
RELAXED = {"coinbase": {"rate_per_s": 1e6, "burst": 1e6}}


def iso(ns: int) -> str:
    """Whole seconds as ISO-8601, the way ccxt sends them."""
    return datetime.fromtimestamp(ns // S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Coinbase(VenueClient):
    """A raw client of the venue: ``cb.get("/products/BTC-USDT/candles", granularity=60)``."""

    venue = "coinbase"


@pytest.fixture(scope="module")
def cb() -> Iterator[Coinbase]:
    with venue_server("coinbase", RELAXED["coinbase"]) as emu, Coinbase(emu) as c:
        yield c


# -- products ------------------------------------------------------------------------------


def test_products_and_unknown_product(cb: Coinbase) -> None:
    products = cb.get("/products")
    assert [p["id"] for p in products] == ["BTC-USDT", "ETH-USDT", "SOL-EUR"]
    btc = products[0]
    assert (btc["base_currency"], btc["quote_currency"], btc["status"]) == ("BTC", "USDT",
                                                                           "online")
    assert (btc["quote_increment"], btc["base_increment"]) == ("0.01", "0.00001")
    assert cb.get("/products/BTC-USDT") == btc
    for path in ("/products/BTC-USDX", "/products/NOPE/candles", "/products/X-Y/trades",
                 "/nowhere"):
        r = cb.raw(path, granularity=60)
        assert (r.status_code, r.json()) == (404, {"message": "NotFound"})


def test_products_before_listing() -> None:
    with EmulatorServer(EmulatorSettings(now=parse_time("2020-01-01", now=0))) as emu, \
            Coinbase(emu) as c:
        assert "SOL-EUR" not in [p["id"] for p in c.get("/products")]
        assert c.raw("/products/SOL-EUR/candles", granularity=60).status_code == 404


# -- candles -------------------------------------------------------------------------------


def test_candle_rows_newest_first_with_inclusive_bounds(cb: Coinbase) -> None:
    rows = cb.get("/products/BTC-USDT/candles", granularity=60, start=iso(T0),
                  end=iso(T0 + 300 * S))
    assert [r[0] for r in rows] == [(T0 + k * 60 * S) // S for k in range(5, -1, -1)]
    row = rows[0]
    assert len(row) == 6 and isinstance(row[0], int)
    _, low, high, op, close, volume = row
    assert low <= min(op, close) <= max(op, close) <= high and volume > 0
    # Unix seconds are read like ISO; a start inside a candle includes it.
    assert cb.get("/products/BTC-USDT/candles", granularity=60, start=str(T0 // S),
                  end=str((T0 + 300 * S) // S)) == rows
    inside = cb.get("/products/BTC-USDT/candles", granularity=60, start=iso(T0 + 30 * S),
                    end=iso(T0 + 300 * S))
    assert inside == rows


@pytest.mark.parametrize("granularity", [60, 300, 900, 3600, 21600, 86400])
def test_candles_300_intervals_allowed_301_rejected(cb: Coinbase, granularity: int) -> None:
    span = 300 * granularity * S
    start = T0 - span
    rows = cb.get("/products/ETH-USDT/candles", granularity=granularity, start=iso(start),
                  end=iso(start + span))
    assert len(rows) == 301  # both ends inclusive
    assert all(a[0] - b[0] == granularity for a, b in zip(rows, rows[1:], strict=False))
    r = cb.raw("/products/ETH-USDT/candles", granularity=granularity, start=iso(start),
               end=iso(start + span + granularity * S))
    assert r.status_code == 400
    assert r.json() == {"message": "granularity too small for the requested time range. "
                                   "Count of aggregations requested exceeds 300"}


@pytest.mark.parametrize("granularity", ["61", "120", "abc", ""])
def test_unsupported_granularity(cb: Coinbase, granularity: str) -> None:
    r = cb.raw("/products/BTC-USDT/candles", granularity=granularity)
    assert (r.status_code, r.json()) == (400, {"message": "Unsupported granularity"})


def test_no_range_gives_the_recent_window_with_the_forming_candle(cb: Coinbase) -> None:
    rows = cb.get("/products/BTC-USDT/candles", granularity=60)
    assert len(rows) == 300 and rows[0][0] == NOW // S // 60 * 60  # still forming
    only_start = cb.get("/products/BTC-USDT/candles", granularity=60, start=iso(T0))
    assert only_start == rows  # start without end: both ignored
    future = cb.get("/products/BTC-USDT/candles", granularity=3600, start=iso(NOW - 3600 * S),
                    end=iso(NOW + 48 * 3600 * S))
    assert [r[0] for r in future] == [NOW // S // 3600 * 3600, NOW // S // 3600 * 3600 - 3600]


def test_illiquid_intervals_are_absent(cb: Coinbase) -> None:
    start = parse_time("2024-01-03", now=0)  # SOL-EUR trades a few times a day here
    rows = cb.get("/products/SOL-EUR/candles", granularity=3600, start=iso(start),
                  end=iso(start + 299 * 3600 * S))
    assert 10 < len(rows) < 150 and all(r[5] > 0 for r in rows)
    assert all(a[0] > b[0] for a, b in zip(rows, rows[1:], strict=False))


def test_candles_are_aggregates_of_the_trades(cb: Coinbase) -> None:
    trades = cb.get("/products/BTC-USDT/trades")  # the newest 1000 (about an hour here)
    by_minute: dict[int, list[dict[str, Any]]] = {}
    for t in reversed(trades):  # oldest first
        sec = int(parse_time(t["time"], now=0) // S)
        by_minute.setdefault(sec // 60 * 60, []).append(t)
    candles = {r[0]: r for r in cb.get("/products/BTC-USDT/candles", granularity=60)}
    minutes = sorted(by_minute)[1:]  # the oldest minute is cut by the page
    assert len(minutes) > 30 and minutes[-1] == NOW // S // 60 * 60  # incl. the forming one
    for minute in minutes:
        tr, row = by_minute[minute], candles[minute]
        prices = [Decimal(t["price"]) for t in tr]
        assert row[3] == float(prices[0]) and row[4] == float(prices[-1])
        assert row[1] == float(min(prices)) and row[2] == float(max(prices))
        assert row[5] == float(sum(Decimal(t["size"]) for t in tr))


# -- trades --------------------------------------------------------------------------------


def test_trades_page_format_and_cursor_headers(cb: Coinbase) -> None:
    r = cb.raw("/products/BTC-USDT/trades")
    items = r.json()
    ids = [t["trade_id"] for t in items]
    assert len(items) == 1000 and ids == list(range(ids[0], ids[0] - 1000, -1))
    assert (r.headers["CB-BEFORE"], r.headers["CB-AFTER"]) == (str(ids[0]), str(ids[-1]))
    t = items[0]
    assert set(t) == {"time", "trade_id", "price", "size", "side"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", t["time"])
    assert parse_time(t["time"], now=0) < NOW
    model = cb.server.market.trades_from_id("BTC-USDT", ids[-1], 1000, NOW)
    # side is the maker's: a buyer-maker trade (the taker sold) says "buy".
    assert [x["side"] for x in reversed(items)] == \
        ["buy" if m else "sell" for m in model.buyer_maker.tolist()]
    assert len(cb.get("/products/BTC-USDT/trades", limit=5)) == 5
    assert len(cb.get("/products/BTC-USDT/trades", limit=5000)) == 1000  # [B] clamped
    for bad in ("0", "-1", "x"):
        assert cb.raw("/products/BTC-USDT/trades", limit=bad).status_code == 400


def test_paging_back_with_after_has_no_gap_or_duplicate(cb: Coinbase) -> None:
    seen: list[int] = []
    cursor: str | None = None
    for _ in range(4):
        params = {"limit": 333} if cursor is None else {"limit": 333, "after": cursor}
        r = cb.raw("/products/ETH-USDT/trades", **params)
        seen += [t["trade_id"] for t in r.json()]
        cursor = r.headers["CB-AFTER"]
    assert seen == list(range(seen[0], seen[0] - 4 * 333, -1))
    # before=X: the next newer page, right after X, still newest first.
    newer = cb.raw("/products/ETH-USDT/trades", limit=10, before=seen[-1])
    assert [t["trade_id"] for t in newer.json()] == list(range(seen[-1] + 10, seen[-1], -1))
    assert newer.headers["CB-BEFORE"] == str(seen[-1] + 10)
    first = cb.raw("/products/ETH-USDT/trades", after=3)
    assert [t["trade_id"] for t in first.json()] == [2, 1, 0]
    assert cb.get("/products/ETH-USDT/trades", after=0) == []
    assert cb.get("/products/ETH-USDT/trades", before=seen[0]) == []  # nothing newer yet
    assert [t["trade_id"] for t in cb.get("/products/ETH-USDT/trades", after=100,
                                          before=95)] == [99, 98, 97, 96]


# -- rate limit ----------------------------------------------------------------------------


def test_token_bucket_429_without_retry_after() -> None:
    settings = EmulatorSettings(now=NOW, trades_scale=0.02,
                                venues={"coinbase": {"rate_per_s": 0.01, "burst": 3}})
    with EmulatorServer(settings) as emu, Coinbase(emu) as c:
        assert [c.raw("/products").status_code for _ in range(3)] == [200, 200, 200]
        r = c.raw("/products/BTC-USDT/trades")
        assert (r.status_code, r.json()) == (429, {"message": "Public rate limit exceeded"})
        assert "retry-after" not in r.headers
        httpx.post(emu.base_url + "/_emulator/reset")
        assert c.raw("/products").status_code == 200


# -- a third reader: stock ccxt ------------------------------------------------------------


def test_stock_ccxt_reads_the_venue(cb: Coinbase) -> None:
    ex, markets = stock_ccxt("coinbaseexchange", cb)
    assert markets["BTC/USDT"]["id"] == "BTC-USDT" and markets["BTC/USDT"]["active"]
    since = T0 // 1_000_000
    candles = ex.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=300)
    rows = cb.get("/products/BTC-USDT/candles", granularity=3600, start=iso(T0),
                  end=iso(T0 + 299 * 3600 * S))
    assert len(candles) == 300 and candles[0][0] == since
    assert candles == [[r[0] * 1000, r[3], r[2], r[1], r[4], r[5]] for r in reversed(rows)]
    trades = ex.fetch_trades("BTC/USDT", limit=20)
    raw = cb.get("/products/BTC-USDT/trades", limit=20)
    assert [t["id"] for t in trades] == [str(x["trade_id"]) for x in reversed(raw)]
    # ccxt turns the maker side into the taker side.
    assert [t["side"] for t in trades] == \
        ["sell" if x["side"] == "buy" else "buy" for x in reversed(raw)]
    assert all(t["timestamp"] < NOW // 1_000_000 for t in trades)


def test_inclusive_cursor_setting() -> None:
    settings = EmulatorSettings(now=NOW, trades_scale=0.02,
                                venues={"coinbase": {**RELAXED["coinbase"],
                                                     "cursor_inclusive": True}})
    with EmulatorServer(settings) as emu, Coinbase(emu) as c:
        assert [t["trade_id"] for t in c.get("/products/ETH-USDT/trades", after=3)] == \
            [3, 2, 1, 0]
        assert [t["trade_id"] for t in c.get("/products/ETH-USDT/trades", limit=2,
                                              before=5)] == [6, 5]
