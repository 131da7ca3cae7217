"""Which bars a range gives: those whose open lies in [start, end), and the run says when
it snapped a range to the bar grid, when a range begins before the market's listing, and
when `--start origin` is clipped by how far back a recent-only exchange serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
from dccd_testing import run_cli

from dccd_cli.emulator import EmulatorServer
from dccd_cli.storage import SeriesKey, read_series
from dccd_cli.timeutil import HOUR_NS, Span, parse_time


def ohlc(emulator: EmulatorServer, out: Path, exchange: str, symbol: str, span: str,
         start: str, end: str | None = None) -> dict[str, Any]:
    args = ["ohlc", exchange, symbol, "--span", span, "--start", start,
            "--base-url", emulator.venue_url(exchange), "--out", str(out), "--json"]
    r = run_cli(*args, *(["--end", end] if end else []))
    assert r.code == 0, r.stderr
    series: dict[str, Any] = json.loads(r.stdout)["series"][0]
    return series


def opens(out: Path, exchange: str, symbol: str, span: str) -> list[int]:
    table = read_series(out, SeriesKey("ohlc", exchange, symbol, span))
    return table.column("ts").cast(pa.int64()).to_pylist()  # type: ignore[no-any-return]


def t(text: str) -> int:
    return parse_time(text, now=0)


def test_a_range_holds_the_bars_that_open_in_it_and_says_how_it_was_snapped(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    s = ohlc(emulator, tmp_path, "binance", "BTC-USDT", "1h", "2024-01-01T10:17", "2024-01-01T15:30")
    assert opens(tmp_path, "binance", "BTC-USDT", "1h") == [t("2024-01-01T11:00Z") + i * HOUR_NS
                                                            for i in range(5)]  # 11:00 .. 15:00
    assert (s["start"], s["end"]) == ("2024-01-01T11:00:00Z", "2024-01-01T16:00:00Z")
    assert s["notes"] == [
        "start 2024-01-01T10:17Z is inside a 1h bar: the range starts at the next bar open, "
        "2024-01-01T11:00Z (a range holds the bars that open in [start, end))",
        "end 2024-01-01T15:30Z is inside the 1h bar opening 2024-01-01T15:00Z, which is "
        "included: the range ends at its close, 2024-01-01T16:00Z (a range holds the bars "
        "that open in [start, end))",
    ]
    # On the grid: nothing to say.
    s = ohlc(emulator, tmp_path / "b", "binance", "BTC-USDT", "1h", "2024-01-01", "2024-01-02")
    assert s["notes"] == [] and len(opens(tmp_path / "b", "binance", "BTC-USDT", "1h")) == 24


def test_a_range_before_the_listing_is_named(emulator: EmulatorServer, tmp_path: Path) -> None:
    # Binance lists no dates: the run tells it from the first bar it received.
    s = ohlc(emulator, tmp_path, "binance", "BTC-USDT", "1d", "2017-07-01", "2017-09-01")
    assert s["notes"] == [
        "binance has no ohlc 1d of BTC-USDT before 2017-08-17 in the range asked (from "
        "2017-07-01): the market lists then, or was quiet until then"]
    assert opens(tmp_path, "binance", "BTC-USDT", "1d")[0] == t("2017-08-17")
    # OKX's market list has the listing time: said before anything is fetched.
    s = ohlc(emulator, tmp_path, "okx", "BTC-USDT", "1d", "2017-07-01", "2017-09-01")
    assert s["notes"][0] == "BTC-USDT lists on 2017-08-17T04:00Z on okx: expect no ohlc before that"


def test_origin_on_a_recent_only_exchange_says_where_it_starts(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    s = ohlc(emulator, tmp_path, "kraken", "BTC-USDT", "1h", "origin")
    (note,) = s["notes"]
    assert note.startswith("--start origin: kraken serves ohlc 1h over REST for the last 718 "
                           "finished bars only, so the range starts at ")
    assert "not at the market's first data" in note and "OHLCVT" in note
    got = opens(tmp_path, "kraken", "BTC-USDT", "1h")
    assert len(got) == 718 and got[-1] == Span.parse("1h").floor(t(s["end"])) - HOUR_NS
