"""Several spans in one ``dccd ohlc`` command (``--span 1h --span 1d``, ``--span 1h,1d``):
one series per symbol and span, each stored and summed up, a span given twice fetched once,
and every span checked before any request."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
from dccd_testing import run_cli

from dccd_cli.emulator import EmulatorServer

RANGE = ("--start", "2024-02-01", "--end", "2024-02-03")


def test_every_span_given_is_a_series_and_a_repeat_is_fetched_once(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    r = run_cli("ohlc", "binance", "BTC-USDT", "ETH-USDT", "--span", "1h", "--span", "1d,1h", *RANGE,
                "--base-url", emulator.venue_url("binance"), "--out", str(out), "--json")
    assert r.code == 0, r.stderr
    series = json.loads(r.stdout)["series"]
    assert [(s["symbol"], s["span"], s["rows_added"], s["requests"]) for s in series] == [
        ("BTC-USDT", "1h", 48, 1), ("BTC-USDT", "1d", 2, 1),
        ("ETH-USDT", "1h", 48, 1), ("ETH-USDT", "1d", 2, 1),
    ]
    table = ds.dataset(out / "ohlc", partitioning="hive").to_table()
    counts = table.group_by(["symbol", "span"]).aggregate([("ts", "count")]).to_pylist()
    assert sorted((c["symbol"], c["span"], c["ts_count"]) for c in counts) == [
        ("BTC-USDT", "1d", 2), ("BTC-USDT", "1h", 48), ("ETH-USDT", "1d", 2), ("ETH-USDT", "1h", 48)]


def test_a_span_the_exchange_lacks_among_several_stops_before_any_request(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--span", "7m", *RANGE,
                "--base-url", emulator.venue_url("binance"), "--out", str(out))
    assert r.code == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "dccd: error: span '7m' is not offered by binance; it offers 1s, 1m, 3m, 5m, 15m, 30m, "
        "1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w, 1M"]
    assert not out.exists()
