"""The exchange's rate-limit replies, end to end: 429 is waited out, 418 stops with 'until'."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
from dccd_testing import FROZEN_NOW, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings


def test_429_is_waited_out_and_the_dataset_is_complete(tmp_path: Path) -> None:
    # A venue far stricter than Binance's documented 6000/min: dccd trips 429s and must wait
    # Retry-After (2 s windows here) without spending its retry budget, and lose nothing.
    venue = {"weight_limit": 30, "window_s": 2, "ban_after": 1000}
    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, venues={"binance": venue})) as server:
        r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1m", "--start", "2024-01-01", "--end", "2024-01-06",
                    "--base-url", server.venue_url("binance"), "--out", str(tmp_path), "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["rate_limited"] > 0
    table = ds.dataset(tmp_path / "ohlc", partitioning="hive").to_table()
    ts = sorted(table.column("ts").cast(pa.int64()).to_pylist())
    assert len(ts) == 5 * 1440 == len(set(ts))


def test_418_ban_stops_the_exchange_says_until_when_and_keeps_what_was_stored(tmp_path: Path) -> None:
    # Requests that keep coming while limited get the IP banned (418): dccd must stop that
    # exchange's work at once, say until when, exit 1, and keep the valid data it has.
    venue = {"weight_limit": 27, "window_s": 60, "ban_after": 0, "ban_s": 600}
    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, venues={"binance": venue})) as server:
        r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1m", "--start", "2024-01-01", "--end", "2024-01-08",
                    "--base-url", server.venue_url("binance"), "--out", str(tmp_path), "--json")
    assert r.code == 1, r.stderr
    series = json.loads(r.stdout)["series"][0]
    assert "banned" in series["error"].lower() and "until" in series["error"].lower()
    assert series["failed"], "the ranges not fetched are named"
    stored = ds.dataset(tmp_path / "ohlc", partitioning="hive").to_table() if (tmp_path / "ohlc").exists() else None
    if stored is not None:  # whatever was stored before the ban is whole and valid
        ts = stored.column("ts").cast(pa.int64()).to_pylist()
        assert ts == sorted(set(ts))
    # and the ledger names the failed range so the next run fetches it
    ledger = json.loads(next(tmp_path.rglob("_coverage.json")).read_text())
    assert ledger["failed"]
