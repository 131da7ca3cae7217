"""The Bitstamp venue over real loopback HTTP: OHLC start/end/limit rules, the current
candle, transactions as the candles' source, field errors, 404 and 429, and ccxt."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from venue_client import VenueClient, venue_server

from dccd_cli.emulator import EmulatorServer
from dccd_cli.timeutil import parse_time

H, M = 3600, 60  # Bitstamp speaks seconds


def sec(text: str) -> int:
    return parse_time(text, now=0) // 1_000_000_000


T0 = sec("2024-01-02")
MARCH = parse_time("2024-03-01", now=0)  # the frozen 'now' of servers with their own settings


class Bitstamp(VenueClient):
    """Raw client of ``/bitstamp/api/v2``; ``now`` in seconds."""

    venue, prefix, unit_ns = "bitstamp", "/api/v2", 1_000_000_000

    def ohlc(self, pair: str = "btcusdt", **params: Any) -> list[dict[str, str]]:
        data = self.get(f"/ohlc/{pair}/", **params)["data"]
        assert data["pair"] == {"btcusdt": "BTC/USDT", "ethusdt": "ETH/USDT",
                                "soleur": "SOL/EUR"}[pair]
        return data["ohlc"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def bitstamp(server: EmulatorServer) -> Iterator[Bitstamp]:
    with Bitstamp(server) as api:
        yield api


def stamps(rows: list[dict[str, str]]) -> list[int]:
    return [int(r["timestamp"]) for r in rows]


def test_markets(bitstamp: Bitstamp) -> None:
    markets = {m["market_symbol"]: m for m in bitstamp.get("/markets/")}
    assert set(markets) == {"btcusdt", "ethusdt", "soleur"}
    btc = markets["btcusdt"]
    assert (btc["base_currency"], btc["counter_currency"], btc["trading"],
            btc["market_type"], btc["description"]) == \
        ("BTC", "USDT", "Enabled", "SPOT", "Bitcoin / Tether")
    assert (btc["base_decimals"], btc["counter_decimals"]) == (5, 2)
    assert btc["minimum_order_value"] == "10"


def test_ohlc_start_end_and_limit(bitstamp: Bitstamp) -> None:
    k: dict[str, Any] = {"step": 3600}
    # start only: the first `limit` candles from start, oldest first.
    assert stamps(bitstamp.ohlc(**k, start=T0, limit=3)) == [T0, T0 + H, T0 + 2 * H]
    assert stamps(bitstamp.ohlc(**k, start=T0 + 1, limit=1)) == [T0 + H]
    # end only: the last `limit` candles opening at or before end.
    assert stamps(bitstamp.ohlc(**k, end=T0, limit=2)) == [T0 - H, T0]
    # both: end wins (ccxt sends end = start + step*limit - 1).
    assert stamps(bitstamp.ohlc(**k, start=T0 - 50 * H, end=T0 + 3 * H - 1, limit=3)) == \
        [T0, T0 + H, T0 + 2 * H]
    assert len(bitstamp.ohlc(step=60, start=T0, limit=1000)) == 1000
    # Paging forward by start = last + step is gapless.
    seen: list[int] = []
    start = T0
    for _ in range(3):
        rows = bitstamp.ohlc(step=60, start=start, limit=1000)
        seen += stamps(rows)
        start = seen[-1] + 60
    assert seen == [T0 + i * M for i in range(3000)]


def test_current_candle_and_exclude_current_candle(bitstamp: Bitstamp) -> None:
    rows = bitstamp.ohlc(step=60, limit=3)
    assert stamps(rows) == [bitstamp.now // M * M - i * M for i in (2, 1, 0)]
    done = bitstamp.ohlc(step=60, limit=3, exclude_current_candle="true")
    assert stamps(done) == [s - M for s in stamps(rows)] and done[1:] == rows[:2]
    assert all(isinstance(v, str) for r in rows for v in r.values())
    assert len(rows[0]["volume"].split(".")[1]) == 8  # amounts: 8 decimals
    assert len(rows[0]["open"].split(".")[1]) == 2  # prices: the counter decimals


def test_steps(bitstamp: Bitstamp) -> None:
    day = bitstamp.ohlc(step=86400, start=sec("2024-01-10"), limit=1)[0]
    hours = bitstamp.ohlc(step=3600, start=sec("2024-01-10"), limit=24)
    assert int(day["timestamp"]) == sec("2024-01-10")
    assert Decimal(day["volume"]) == sum(Decimal(h["volume"]) for h in hours)
    assert (day["open"], day["close"]) == (hours[0]["open"], hours[-1]["close"])
    assert Decimal(day["high"]) == max(Decimal(h["high"]) for h in hours)
    three = bitstamp.ohlc(step=259200, end=sec("2024-01-10"), limit=2)
    assert [b - a for a, b in zip(stamps(three), stamps(three)[1:], strict=False)] == [259200]
    for step in (180, 300, 900, 1800, 7200, 14400, 21600, 43200):
        rows = bitstamp.ohlc(step=step, limit=3)
        assert len(rows) == 3 and stamps(rows)[2] - stamps(rows)[0] == 2 * step


def test_transactions_make_the_candles(bitstamp: Bitstamp) -> None:
    trades = bitstamp.get("/transactions/btcusdt/")  # default: the last hour
    assert trades and all(bitstamp.now - H <= int(t["date"]) <= bitstamp.now for t in trades)
    assert [int(t["tid"]) for t in trades] == \
        list(range(int(trades[0]["tid"]), int(trades[0]["tid"]) - len(trades), -1))
    assert set(trades[0]) == {"date", "tid", "price", "amount", "type"}
    assert {t["type"] for t in trades} == {"0", "1"}
    by_minute: dict[int, list[dict[str, str]]] = defaultdict(list)
    for t in trades:
        by_minute[int(t["date"]) // M * M].append(t)
    minutes = sorted(by_minute)[1:]  # the first may be cut at now - 1 h
    rows = {int(r["timestamp"]): r for r in bitstamp.ohlc(step=60, limit=len(minutes))}
    assert set(minutes) == set(rows)
    for minute in minutes:
        mine, row = by_minute[minute], rows[minute]
        assert Decimal(row["volume"]) == sum(Decimal(t["amount"]) for t in mine)
        assert (row["open"], row["close"]) == (mine[-1]["price"], mine[0]["price"])
        assert Decimal(row["low"]) == min(Decimal(t["price"]) for t in mine)
    minute = bitstamp.get("/transactions/btcusdt/", time="minute")
    assert 0 < len(minute) < len(trades) and minute == trades[: len(minute)]
    assert all(int(t["date"]) >= bitstamp.now - M - 1 for t in minute)
    day = bitstamp.get("/transactions/btcusdt/", time="day")
    assert day[: len(trades)] == trades and len(day) > 10 * len(trades)


@pytest.mark.parametrize(("params", "reason"), [
    ({"step": 60}, {"limit": ["Missing data for required field."]}),
    ({"limit": 5}, {"step": ["Missing data for required field."]}),
    ({"step": 60, "limit": 1001}, {"limit": ["Must be between 1 and 1000."]}),
    ({"step": 60, "limit": 0}, {"limit": ["Must be between 1 and 1000."]}),
    ({"step": 120, "limit": 5}, {"step": ["Not a valid choice."]}),
    ({"step": 60, "limit": "x"}, {"limit": ["Not a valid integer."]}),
])
def test_ohlc_field_errors(bitstamp: Bitstamp, params: dict[str, Any],
                           reason: dict[str, list[str]]) -> None:
    r = bitstamp.raw("/ohlc/btcusdt/", **params)
    assert r.status_code == 400
    assert r.json() == {"status": "error", "reason": reason, "code": "400.002"}


def test_unknown_pair_and_bad_time(bitstamp: Bitstamp) -> None:
    r = bitstamp.raw("/ohlc/btcusdx/", step=60, limit=1)
    assert r.status_code == 404 and r.json()["status"] == "error"
    assert bitstamp.raw("/transactions/BTCUSDT/").status_code == 404  # pairs are lower case
    bad = bitstamp.raw("/transactions/btcusdt/", time="week")
    assert bad.status_code == 400
    assert bad.json()["reason"] == {"time": ["Must be one of: minute, hour, day."]}


def test_believed_behaviour_is_settable() -> None:
    believed = {"error_code_key": "response_code", "ohlc_oldest_first": False,
                "start_inclusive_open": False}
    with venue_server("bitstamp", believed, now=MARCH) as emu, Bitstamp(emu) as api:
        assert stamps(api.ohlc(step=3600, start=T0 + 1, limit=2)) == [T0 + H, T0]
        assert api.raw("/ohlc/btcusdt/", step=60).json() == {
            "status": "error", "reason": {"limit": ["Missing data for required field."]},
            "response_code": "400.002"}


def test_rate_limit_429() -> None:
    with venue_server("bitstamp", {"rate_limit": 2}, now=MARCH) as emu, Bitstamp(emu) as api:
        assert [api.raw("/markets/").status_code for _ in range(3)] == [200, 200, 429]
        assert api.raw("/markets/").json() == {"status": "error",
                                               "reason": "Rate limit exceeded",
                                               "code": "400.002"}


# -- a stock ccxt client ---------------------------------------------------------------

ccxt = pytest.importorskip("ccxt")


@pytest.fixture(scope="module")
def ccxt_bitstamp(server: EmulatorServer) -> Any:
    ex = ccxt.bitstamp({"enableRateLimit": False})
    ex.urls["api"]["public"] = server.venue_url("bitstamp") + "/api"
    return ex


def test_ccxt_loads_markets_and_fetches_what_the_venue_serves(ccxt_bitstamp: Any,
                                                              bitstamp: Bitstamp) -> None:
    btc = ccxt_bitstamp.load_markets()["BTC/USDT"]
    assert (btc["id"], btc["spot"], btc["active"]) == ("btcusdt", True, True)
    since = T0 * 1000
    candles = ccxt_bitstamp.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=24)
    rows = bitstamp.ohlc(step=3600, start=T0, limit=24)
    assert [c[0] for c in candles] == [s * 1000 for s in stamps(rows)]
    assert [c[1:6] for c in candles] == \
        [[float(r[k]) for k in ("open", "high", "low", "close", "volume")] for r in rows]
    trades = ccxt_bitstamp.fetch_trades("BTC/USDT")
    raw = bitstamp.get("/transactions/btcusdt/")[::-1]
    assert [t["id"] for t in trades] == [r["tid"] for r in raw]
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == \
        [(float(r["price"]), float(r["amount"]), "buy" if r["type"] == "0" else "sell")
         for r in raw]
