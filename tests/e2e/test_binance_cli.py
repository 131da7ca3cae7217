"""The real `dccd` CLI against the emulator's Binance venue over loopback sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from dccd_testing import FROZEN_NOW, TEST_TRADES_SCALE, files_under, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.timeutil import HOUR_NS, MS

JAN1_MS = 1_704_067_200_000
JAN2_MS = JAN1_MS + 86_400_000


def read(root: Path, kind: str) -> pa.Table:
    table = ds.dataset(root / kind, partitioning="hive").to_table()
    keys = [("ts", "ascending"), ("id", "ascending")] if kind == "trades" else [("ts", "ascending")]
    return table.sort_by(keys)


def test_a_month_of_hourly_bars_is_exactly_744_bars(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-01-01",
                "--end", "2024-02-01", "--base-url", emulator.venue_url("binance"), "--out", str(out), "--json")
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["ok"] and summary["series"][0]["rows_added"] == 744
    table = read(out, "ohlc")
    assert table.num_rows == 744
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    assert ts == [JAN1_MS * MS + i * HOUR_NS for i in range(744)]
    assert set(table.column("exchange").to_pylist()) == {"binance"}
    assert set(table.column("span").to_pylist()) == {"1h"}
    # The stored values are the venue's own klines, parsed independently here.
    rows = httpx.get(f"{emulator.venue_url('binance')}/api/v3/klines", params={
        "symbol": "BTCUSDT", "interval": "1h", "startTime": JAN1_MS, "endTime": JAN1_MS + 744 * 3_600_000 - 1,
        "limit": 1000}).json()
    assert len(rows) == 744
    assert table.column("open").to_pylist() == [float(r[1]) for r in rows]
    assert table.column("close").to_pylist() == [float(r[4]) for r in rows]
    assert table.column("volume").to_pylist() == [float(r[5]) for r in rows]
    assert table.column("trades").to_pylist() == [int(r[8]) for r in rows]
    meta = pq.read_schema(next(out.rglob("2024-01.parquet"))).metadata
    assert meta[b"dccd.native_symbol"] == b"BTCUSDT"


def test_rerun_is_idempotent_and_fetches_nothing(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    args = ("ohlc", "binance", "ETH-USDT", "--span", "4h", "--start", "2024-01-01", "--end", "2024-01-20",
            "--base-url", emulator.venue_url("binance"), "--out", str(out), "--json")
    first = run_cli(*args)
    assert first.code == 0, first.stderr
    before = {p: p.read_bytes() for p in files_under(out) if p.suffix == ".parquet"}
    second = run_cli(*args)
    assert second.code == 0, second.stderr
    s = json.loads(second.stdout)["series"][0]
    assert s["rows_added"] == 0 and s["requests"] == 0 and s["already_stored"]
    assert {p: p.read_bytes() for p in files_under(out) if p.suffix == ".parquet"} == before


def test_unfinished_bar_is_not_stored_unless_asked(emulator: EmulatorServer, tmp_path: Path) -> None:
    # The emulator's clock is frozen at 2024-03-01T00:30Z: the 00:00 hourly bar is still forming.
    base = ("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-02-29T20:00",
            "--base-url", emulator.venue_url("binance"), "--quiet")
    r = run_cli(*base, "--out", str(tmp_path / "a"))
    assert r.code == 0, r.stderr
    ts = read(tmp_path / "a", "ohlc").column("ts").cast(pa.int64()).to_pylist()
    assert ts[-1] == FROZEN_NOW - 30 * 60 * 10**9 - HOUR_NS  # 23:00 is the last closed bar
    r = run_cli(*base, "--include-partial", "--out", str(tmp_path / "b"))
    assert r.code == 0, r.stderr
    ts = read(tmp_path / "b", "ohlc").column("ts").cast(pa.int64()).to_pylist()
    assert ts[-1] == FROZEN_NOW - 30 * 60 * 10**9  # the forming 00:00 bar


def venue_trade_ids(base_url: str, start_ms: int, end_ms: int) -> list[int]:
    """Aggregate trade ids of a range, read from the venue directly (independent of dccd)."""
    first = httpx.get(f"{base_url}/api/v3/aggTrades",
                      params={"symbol": "BTCUSDT", "startTime": start_ms, "endTime": end_ms - 1, "limit": 1}).json()
    ids: list[int] = []
    next_id = first[0]["a"]
    with httpx.Client() as client:
        while True:
            page = client.get(f"{base_url}/api/v3/aggTrades",
                              params={"symbol": "BTCUSDT", "fromId": next_id, "limit": 1000}).json()
            inside = [t["a"] for t in page if t["T"] < end_ms]
            ids.extend(inside)
            if len(inside) < len(page) or len(page) < 1000:
                return ids
            next_id = page[-1]["a"] + 1


def test_a_day_of_trades_stores_every_aggregate_trade_once(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    r = run_cli("trades", "binance", "BTC-USDT", "--start", "2024-01-01", "--end", "2024-01-02",
                "--base-url", emulator.venue_url("binance"), "--out", str(out), "--json")
    assert r.code == 0, r.stderr
    table = read(out, "trades")
    ids = [int(i) for i in table.column("id").to_pylist()]
    expected = venue_trade_ids(emulator.venue_url("binance"), JAN1_MS, JAN2_MS)
    assert len(expected) > 10_000
    assert sorted(ids) == expected  # each once, none missing
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    assert ts == sorted(ts) and JAN1_MS * MS <= ts[0] and ts[-1] < JAN2_MS * MS
    assert set(table.column("side").to_pylist()) == {"buy", "sell"}
    assert [p.name for p in out.rglob("*.parquet")] == ["2024-01-01.parquet"]
    summary = json.loads(r.stdout)["series"][0]
    assert summary["rows_added"] == len(expected)


def test_killed_download_resumes_to_the_same_dataset(tmp_path: Path) -> None:
    # A slow venue (latency) so the run can be killed halfway; a golden run for comparison.
    settings = EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE, latency_ms=40)
    with EmulatorServer(settings) as server:
        url = server.venue_url("binance")
        args = ("trades", "binance", "BTC-USDT", "--start", "2024-01-01", "--end", "2024-01-03",
                "--base-url", url, "--quiet")
        golden = run_cli(*args, "--out", str(tmp_path / "golden"))
        assert golden.code == 0, golden.stderr

        out = tmp_path / "killed"
        env = {**os.environ}
        proc = subprocess.Popen([sys.executable, "-m", "dccd_cli", *args, "--out", str(out)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(out.rglob("*.parquet")):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert list(out.rglob("*.parquet")), "the run was not killed halfway"
        resumed = run_cli(*args, "--out", str(out))
        assert resumed.code == 0, resumed.stderr
    assert read(out, "trades").equals(read(tmp_path / "golden", "trades"))


def test_exchanges_lists_binance(tmp_path: Path) -> None:
    r = run_cli("exchanges", "--json")
    assert r.code == 0, r.stderr
    listed = {e["name"]: e for e in json.loads(r.stdout)}
    assert "1M" in listed["binance"]["ohlc"]["spans"]
    assert listed["binance"]["trades"]["max_per_request"] == 1000
