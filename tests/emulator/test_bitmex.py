"""The BitMEX venue over real loopback HTTP: bucket-end timestamps, open = previous close,
partial buckets, raw spot units, offset (``start``) paging of trades and buckets, the
continuously refilled rate limit, and stock ccxt 4.5.83 (the last release with bitmex)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from venue_client import NOW, VenueClient, venue_server

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.timeutil import parse_time

H, M = 3_600_000, 60_000


def ms(text: str) -> int:
    return parse_time(text, now=0) // 1_000_000


def iso(ms_: int) -> str:
    dt = datetime.fromtimestamp(ms_ / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms_ % 1000:03d}Z"


T0 = ms("2024-01-02")


class Bitmex(VenueClient):
    """Raw client of ``/bitmex/api/v1``."""

    venue, prefix = "bitmex", "/api/v1"

    def buckets(self, **params: Any) -> list[dict[str, Any]]:
        return self.get("/trade/bucketed", symbol="XBT_USDT", **params)  # type: ignore[no-any-return]

    def trades(self, **params: Any) -> list[dict[str, Any]]:
        return self.get("/trade", symbol="XBT_USDT", **params)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def unlimited() -> Iterator[EmulatorServer]:
    """The conftest market without BitMEX's 30 requests a minute."""
    with venue_server("bitmex", {"rate_limit": 100_000}) as emu:
        yield emu


@pytest.fixture(scope="module")
def bitmex(unlimited: EmulatorServer) -> Iterator[Bitmex]:
    with Bitmex(unlimited) as api:
        yield api


def stamps(rows: list[dict[str, Any]]) -> list[int]:
    return [ms(r["timestamp"]) for r in rows]


def test_assets_and_instruments(bitmex: Bitmex) -> None:
    assets = {a["asset"]: a for a in bitmex.get("/wallet/assets")}
    assert (assets["XBT"]["currency"], assets["XBT"]["scale"]) == ("XBt", 8)
    assert (assets["USDT"]["currency"], assets["USDT"]["scale"]) == ("USDt", 6)
    inst = {i["symbol"]: i for i in bitmex.get("/instrument/active")}
    assert set(inst) == {"XBT_USDT", "ETH_USDT", "SOL_EUR"}
    xbt = inst["XBT_USDT"]
    assert (xbt["typ"], xbt["underlying"], xbt["quoteCurrency"], xbt["state"]) == \
        ("IFXXXP", "XBT", "USDT", "Open")
    assert (xbt["lotSize"], xbt["tickSize"]) == (1000, 0.01)  # lot 0.00001 BTC in satoshis


def test_buckets_are_stamped_at_their_end_and_open_at_the_previous_close(bitmex: Bitmex) -> None:
    rows = bitmex.buckets(binSize="1h", startTime=iso(T0 + H), count=3)
    assert stamps(rows) == [T0 + H, T0 + 2 * H, T0 + 3 * H]  # the buckets [T0, T0+1h) ...
    assert [r["open"] for r in rows[1:]] == [r["close"] for r in rows[:-1]]
    before = bitmex.buckets(binSize="1h", endTime=iso(T0), reverse="true", count=1)[0]
    assert ms(before["timestamp"]) == T0 and rows[0]["open"] == before["close"]
    # endTime is inclusive of a bucket ending exactly then; startTime too.
    assert stamps(bitmex.buckets(binSize="1h", startTime=iso(T0 + 1), endTime=iso(T0 + 3 * H))) \
        == [T0 + H, T0 + 2 * H, T0 + 3 * H]
    assert len(bitmex.buckets(binSize="1m", startTime=iso(T0))) == 100  # default count
    assert len(bitmex.buckets(binSize="1m", startTime=iso(T0), count=1000)) == 1000
    for code, step in (("5m", 5 * M), ("1d", 24 * H)):
        got = stamps(bitmex.buckets(binSize=code, startTime=iso(T0 + 1), count=2))
        assert got == [T0 + step, T0 + 2 * step]


def test_partial_bucket_only_when_asked(bitmex: Bitmex) -> None:
    done = bitmex.buckets(binSize="1m", reverse="true", count=2)
    assert stamps(done)[0] == bitmex.now // M * M  # the last complete minute ends now-ish
    forming = bitmex.buckets(binSize="1m", reverse="true", count=2, partial="true")
    assert stamps(forming)[0] == bitmex.now // M * M + M > bitmex.now
    assert forming[1] == done[0]
    hour = bitmex.buckets(binSize="1h", reverse="true", count=1, partial="true")[0]
    assert ms(hour["timestamp"]) == bitmex.now // H * H + H


def test_bucket_is_the_aggregate_of_its_trades_in_raw_units(bitmex: Bitmex) -> None:
    start = T0 + 17 * M
    bucket = bitmex.buckets(binSize="1m", startTime=iso(start + M), count=1)[0]
    trades = bitmex.trades(startTime=iso(start), endTime=iso(start + M - 1), count=1000)
    assert trades and all(start <= ms(t["timestamp"]) < start + M for t in trades)
    assert bucket["trades"] == len(trades)
    assert bucket["volume"] == sum(t["size"] for t in trades)  # satoshis
    assert bucket["homeNotional"] == pytest.approx(bucket["volume"] / 1e8)
    assert bucket["foreignNotional"] == pytest.approx(sum(t["foreignNotional"] for t in trades))
    assert bucket["close"] == trades[-1]["price"]
    assert bucket["high"] == max(t["price"] for t in trades)
    assert bucket["low"] == min(t["price"] for t in trades)
    assert bucket["vwap"] == pytest.approx(bucket["foreignNotional"] / bucket["homeNotional"])
    t = trades[0]
    assert set(t) == {"timestamp", "symbol", "side", "size", "price", "tickDirection",
                      "trdMatchID", "grossValue", "homeNotional", "foreignNotional", "trdType"}
    assert t["side"] in ("Buy", "Sell") and len(t["trdMatchID"]) == 36
    assert t["size"] % 1000 == 0 and t["homeNotional"] == pytest.approx(t["size"] / 1e8)
    moves = {"PlusTick", "MinusTick", "ZeroPlusTick", "ZeroMinusTick"}
    assert {x["tickDirection"] for x in trades} <= moves


def test_trades_paged_by_start_offset_have_no_gap_or_duplicate(bitmex: Bitmex) -> None:
    whole = bitmex.trades(startTime=iso(T0), count=1000)
    assert stamps(whole) == sorted(stamps(whole)) and stamps(whole)[0] >= T0
    pages = [bitmex.trades(startTime=iso(T0), start=k * 250, count=250) for k in range(4)]
    assert [t for page in pages for t in page] == whole
    ids = [t["trdMatchID"] for t in whole]
    assert len(set(ids)) == len(ids)
    # Newest first with reverse; the same rows a forward page shows.
    newest = bitmex.trades(reverse="true", count=300)
    assert stamps(newest) == sorted(stamps(newest), reverse=True)
    assert stamps(newest)[0] < bitmex.now
    tail = bitmex.trades(reverse="true", start=100, count=200)
    assert tail == newest[100:]
    until = bitmex.trades(endTime=iso(T0), reverse="true", count=5)
    assert all(ms(t["timestamp"]) <= T0 for t in until)
    assert bitmex.trades(startTime=iso(T0), count=3) == whole[:3]


def test_bucket_offset_paging(bitmex: Bitmex) -> None:
    pages = [bitmex.buckets(binSize="1m", startTime=iso(T0), start=k * 500, count=500)
             for k in range(2)]
    # startTime filters bucket ends: the bucket ending at T0 comes first.
    assert stamps(pages[0] + pages[1]) == [T0 + i * M for i in range(1000)]
    assert bitmex.buckets(binSize="1m", reverse="true", start=3, count=2) == \
        bitmex.buckets(binSize="1m", reverse="true", count=5)[3:]


@pytest.mark.parametrize(("path", "params", "message"), [
    ("/trade/bucketed", {"symbol": "XBT_USDT", "binSize": "15m"},
     "Invalid binSize: must be one of 1m, 5m, 1h, 1d."),
    ("/trade", {"symbol": "XBT_USDT", "count": 1001}, "Invalid count: must be <= 1000."),
    ("/trade", {"symbol": "XBT_USDT", "startTime": "yesterday"},
     "Invalid startTime: 'yesterday' is not a date."),
])
def test_error_bodies(bitmex: Bitmex, path: str, params: dict[str, Any], message: str) -> None:
    r = bitmex.raw(path, **params)
    assert r.status_code == 400
    assert r.json() == {"error": {"message": message, "name": "HTTPError"}}


def test_unknown_symbol_is_an_empty_list(bitmex: Bitmex) -> None:
    assert bitmex.get("/trade", symbol="BTC_USDT") == []
    assert bitmex.get("/trade/bucketed", symbol="XBTUSD", binSize="1h") == []


def test_believed_behaviour_is_settable(bitmex: Bitmex) -> None:
    assert all(r["lastSize"] is None for r in bitmex.buckets(binSize="1m", count=5))
    believed = {"last_size": "trade", "count_over_max": "clamp", "end_time_inclusive": False}
    with venue_server("bitmex", believed) as emu, Bitmex(emu) as api:
        rows = api.buckets(binSize="1h", startTime=iso(T0 + H), count=2)
        for row in rows:
            end = ms(row["timestamp"])
            last = api.trades(endTime=iso(end), reverse="true", count=1)[0]
            assert ms(last["timestamp"]) < end and row["lastSize"] == last["size"]
        assert len(api.buckets(binSize="1m", startTime=iso(T0), count=5000)) == 1000
        assert stamps(api.buckets(binSize="1h", startTime=iso(T0), endTime=iso(T0 + 2 * H))) \
            == [T0, T0 + H]


def test_rate_limit_headers_and_429() -> None:
    with EmulatorServer(EmulatorSettings(now=NOW, trades_scale=0.02)) as emu, \
            Bitmex(emu) as api:  # the real default: 30 a minute
        first = api.raw("/wallet/assets")
        assert first.headers["X-RateLimit-Limit"] == "30"
        remaining = int(first.headers["X-RateLimit-Remaining"])
        reset = int(first.headers["X-RateLimit-Reset"])
        assert reset >= NOW // 10**9
        codes = [api.raw("/wallet/assets").status_code for _ in range(remaining + 1)]
        assert codes[:remaining] == [200] * remaining and codes[-1] == 429
        limited = api.raw("/wallet/assets")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 2
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert limited.json()["error"]["name"] == "RateLimitError"
        assert limited.json()["error"]["message"].startswith("Rate limit exceeded, retry in")
        httpx.post(emu.base_url + "/_emulator/reset")
        assert api.raw("/wallet/assets").status_code == 200


# -- stock ccxt 4.5.83 (bitmex was removed in 4.5.84), in its own interpreter -------------

_CCXT_SCRIPT = textwrap.dedent("""
    import json, sys
    import ccxt
    assert ccxt.__version__ == "4.5.83", ccxt.__version__
    ex = ccxt.bitmex({"enableRateLimit": False})
    ex.urls["api"]["public"] = sys.argv[1]
    markets = ex.load_markets()
    btc = markets["BTC/USDT"]
    candles = ex.fetch_ohlcv("BTC/USDT", "1h", since=int(sys.argv[2]), limit=24)
    trades = ex.fetch_trades("BTC/USDT", since=int(sys.argv[2]), limit=50)
    print(json.dumps({"id": btc["id"], "spot": btc["spot"], "candles": candles,
                      "trades": [[t["id"], t["timestamp"], t["side"], t["price"],
                                  t["amount"]] for t in trades]}))
""")


def test_ccxt_4_5_83_loads_markets_and_fetches_what_the_venue_serves(bitmex: Bitmex,
                                                                     unlimited: Any) -> None:
    """Opt-in: ``DCCD_CCXT_BITMEX`` = a ccxt 4.5.83 wheel or unpacked directory (e.g.
    ``pip download --no-deps ccxt==4.5.83``); importable from the wheel as it is."""
    path = os.environ.get("DCCD_CCXT_BITMEX")
    if not path:
        pytest.skip("set DCCD_CCXT_BITMEX to a ccxt 4.5.83 wheel to run the bitmex ccxt check")
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-c", _CCXT_SCRIPT, unlimited.venue_url("bitmex"),
                           str(T0)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    assert (got["id"], got["spot"]) == ("XBT_USDT", True)
    rows = bitmex.buckets(binSize="1h", startTime=iso(T0 + H), count=24, partial="true")
    # ccxt shifts the bucket-end stamps back to the open and scales satoshis to BTC.
    assert [c[0] for c in got["candles"]] == [T0 + i * H for i in range(24)]
    assert [c[1:6] for c in got["candles"]] == \
        [[r["open"], r["high"], r["low"], r["close"], r["homeNotional"]] for r in rows]
    raw = bitmex.trades(startTime=iso(T0), count=50)
    want = [[r["trdMatchID"], ms(r["timestamp"]), r["side"].lower(), r["price"],
             r["homeNotional"]] for r in raw]
    assert got["trades"] == sorted(want, key=lambda t: (t[1], t[0]))  # ccxt: by (ts, id)
