"""`dccd sync` end to end: the real CLI, two emulated exchanges, a frozen clock moved by hand.

The issue's "done" list: a first run fills the dataset; a second right after makes only
the overlap requests; a day later a run adds exactly that day; a run started while
another holds the lock corrupts nothing; the inventory tells the illiquid pair's empty
stretches apart from a range that failed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.dataset as ds
from dccd_testing import FROZEN_NOW, TEST_TRADES_SCALE, run_cli, run_cli_process

from dccd_cli.emulator import EmulatorServer, EmulatorSettings, MarketModel
from dccd_cli.timeutil import DAY_NS, HOUR_NS, Span, parse_time

H1, M1 = Span.parse("1h"), Span.parse("1m")
TRADES_START = "2024-02-29T18:00Z"


def write_config(path: Path, out: Path, emu: EmulatorServer) -> Path:
    """Three jobs across two exchanges: candles, a trades archive, a pattern job."""
    path.write_text(f"""
[defaults]
out = "{out}"

[[job]]
name = "candles"
exchange = "binance"
symbols = ["BTC-USDT", "ETH-USDT"]
ohlc = ["1h"]
start = "-3d"
base_url = "{emu.venue_url('binance')}"

[[job]]
name = "ticks"
exchange = "binance"
symbols = ["BTC-USDT"]
trades = true
start = "{TRADES_START}"
base_url = "{emu.venue_url('binance')}"

[[job]]
name = "illiquid"
exchange = "coinbase"
symbols = ["*-EUR"]
ohlc = ["1m"]
start = "-1d"
base_url = "{emu.venue_url('coinbase')}"
""")
    return path


def sync(*args: str) -> tuple[int, dict[str, Any], str]:
    r = run_cli("sync", *args, "--json")
    return r.code, json.loads(r.stdout) if r.stdout else {}, r.stderr


def by_label(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{s['exchange']} {s['symbol']} {s['kind']} {s['span']}": s for s in summary["series"]}


def expected_counts(market: MarketModel, now: int) -> dict[str, int]:
    """Rows each series must hold when synced at ``now``, from the market model itself."""
    h_start, h_end = H1.ceil(now - 3 * DAY_NS), H1.floor(now)
    t_start = parse_time(TRADES_START, now=now)
    return {
        "binance BTC-USDT ohlc 1h": len(market.bars("BTC-USDT", H1, h_start, h_end, now).open_ns),
        "binance ETH-USDT ohlc 1h": len(market.bars("ETH-USDT", H1, h_start, h_end, now).open_ns),
        "binance BTC-USDT trades None": len(market.agg_trades("BTC-USDT", t_start, now, 10**9)),
        "coinbase SOL-EUR ohlc 1m": len(market.bars("SOL-EUR", M1, now - DAY_NS, M1.floor(now), now,
                                                    empty=False).open_ns),
    }


def stored(out: Path, kind: str) -> pa.Table:
    return ds.dataset(out / kind, partitioning="hive").to_table()


def test_first_fills_second_fetches_only_the_overlap_a_day_later_adds_that_day(tmp_path: Path) -> None:
    settings = EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE)
    out = tmp_path / "data"
    with EmulatorServer(settings) as emu:
        config = write_config(tmp_path / "sync.toml", out, emu)
        market = emu.market

        # 1. The first run fills the dataset: every series holds exactly the venue's rows.
        code, first, stderr = sync(str(config))
        assert code == 0, stderr
        want = expected_counts(market, FROZEN_NOW)
        got = by_label(first)
        assert set(got) == set(want)
        assert {k: s["rows_added"] for k, s in got.items()} == want
        assert got["coinbase SOL-EUR ohlc 1m"]["empty_bars"] > 1000  # the illiquid pair's quiet minutes
        assert all(s["gaps"] == [] and s["error"] is None for s in first["series"])
        # Without a terminal: plain timestamped lines, no control characters.
        assert "\x1b" not in stderr and "\r" not in stderr
        assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", ln) for ln in stderr.splitlines())

        # 2. Right after: only the overlap (the newest 3 bars, the newest minute of trades),
        # a request or few a series, nothing added, no file rewritten.
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
        code, second, stderr = sync(str(config))
        assert code == 0, stderr
        got = by_label(second)
        assert {k: s["fetched"] for k, s in got.items()} == {
            "binance BTC-USDT ohlc 1h": [{"start": "2024-02-29T21:00:00Z", "end": "2024-03-01T00:00:00Z"}],
            "binance ETH-USDT ohlc 1h": [{"start": "2024-02-29T21:00:00Z", "end": "2024-03-01T00:00:00Z"}],
            "binance BTC-USDT trades None": [{"start": "2024-03-01T00:29:00Z", "end": "2024-03-01T00:30:00Z"}],
            "coinbase SOL-EUR ohlc 1m": [{"start": "2024-03-01T00:27:00Z", "end": "2024-03-01T00:30:00Z"}],
        }
        assert all(s["rows_added"] == 0 and s["files"] == [] for s in got.values())
        assert got["binance BTC-USDT ohlc 1h"]["requests"] == 1
        assert second["requests"] <= 8 < first["requests"]
        end = H1.floor(FROZEN_NOW)
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == before

        # 3. A day later: exactly that day is added.
        httpx.post(f"{emu.base_url}/_emulator/clock", json={"advance_s": 86400}).raise_for_status()
        later = FROZEN_NOW + DAY_NS
        code, third, stderr = sync(str(config))
        assert code == 0, stderr
        got = by_label(third)
        t_start = parse_time(TRADES_START, now=later)
        assert got["binance BTC-USDT ohlc 1h"]["rows_added"] == 24
        assert got["binance ETH-USDT ohlc 1h"]["rows_added"] == 24
        assert got["binance BTC-USDT trades None"]["rows_added"] == len(
            market.agg_trades("BTC-USDT", FROZEN_NOW, later, 10**9))
        assert got["coinbase SOL-EUR ohlc 1m"]["rows_added"] == len(
            market.bars("SOL-EUR", M1, FROZEN_NOW, M1.floor(later), later, empty=False).open_ns)
        assert got["binance BTC-USDT ohlc 1h"]["fetched"] == [
            {"start": "2024-02-29T21:00:00Z", "end": "2024-03-02T00:00:00Z"}]

    # The dataset is exactly the venue's: 1h bars from the first run's start to the new end.
    ohlc = stored(out, "ohlc").filter(pa.compute.equal(pa.compute.field("span"), "1h"))
    btc = sorted(t for t, s in zip(ohlc.column("ts").cast(pa.int64()).to_pylist(),
                                   ohlc.column("symbol").to_pylist()) if s == "BTC-USDT")
    assert btc == list(range(H1.ceil(FROZEN_NOW - 3 * DAY_NS), end + DAY_NS, HOUR_NS))
    trades = stored(out, "trades")
    assert trades.num_rows == len(market.agg_trades("BTC-USDT", t_start, later, 10**9))
    assert len(set(trades.column("id").to_pylist())) == trades.num_rows

    # The inventory: full coverage everywhere, the quiet minutes counted as no data.
    r = run_cli("inventory", str(out), "--json", "--verify")
    assert r.code == 0, r.stdout + r.stderr
    inv = {f"{s['exchange']} {s['symbol']} {s['kind']} {s['span']}": s for s in json.loads(r.stdout)["series"]}
    assert all(s["coverage_pct"] == 100.0 and s["gaps"] == [] and s["problems"] == [] for s in inv.values())
    sol = inv["coinbase SOL-EUR ohlc 1m"]
    assert sol["no_data"]["count"] == 2 * 1440 - sol["rows"] > 0
    assert inv["binance BTC-USDT ohlc 1h"]["no_data"]["count"] == 0


def test_dry_run_prints_the_plan_and_fetches_nothing(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    config = write_config(tmp_path / "sync.toml", out, emulator)
    r = run_cli("sync", str(config), "--dry-run")
    assert r.code == 0, r.stderr
    assert "dry run" in r.stdout
    assert "binance BTC-USDT ohlc 1h: 2024-02-27T01:00Z..2024-03-01; 71 bars, 1 request (weight 2)" in r.stdout
    assert "coinbase SOL-EUR ohlc 1m" in r.stdout and "at its rate limit" in r.stdout
    assert "binance BTC-USDT trades: 2024-02-29T18:00Z..2024-03-01T00:30Z; " in r.stdout
    assert "trades (exact: trade ids at both ends)" in r.stdout
    assert not out.exists()
    code, plan, _ = sync(str(config), "--dry-run")
    assert code == 0 and plan["dry_run"] and plan["requests"] == 0
    series = by_label(plan)
    assert series["coinbase SOL-EUR ohlc 1m"]["estimate"]["requests"] == 5  # 1440 bars, 300 a page
    ticks = series["binance BTC-USDT trades None"]["estimate"]
    assert ticks["how"] == "ids" and not ticks["at_least"] and ticks["probes"] == 3
    assert plan["exchanges"]["coinbase"]["seconds"] > 0
    assert plan["exchanges"]["binance"]["probes"] >= ticks["probes"]
    assert not out.exists()
    # The trades estimate is the count the real run stores.
    code, done, stderr = sync(str(config))
    assert code == 0, stderr
    assert by_label(done)["binance BTC-USDT trades None"]["rows_added"] == ticks["rows"] > 0


def test_a_second_sync_waits_or_exits_75_and_nothing_is_corrupted(tmp_path: Path) -> None:
    # A slow venue keeps the first run busy, holding the lock, for several seconds.
    settings = EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE, latency_ms=1500)
    out = tmp_path / "data"
    with EmulatorServer(settings) as emu:
        config = tmp_path / "sync.toml"
        config.write_text(f"""
[[job]]
exchange = "binance"
symbols = ["BTC-USDT", "SOL-EUR"]
ohlc = ["1m"]
start = "-2d"
out = "{out}"
base_url = "{emu.venue_url('binance')}"
""")
        cmd = [sys.executable, "-m", "dccd_cli", "sync", str(config), "--json"]
        first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lock = out / "_dccd-dataset.lock"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and f'"pid": {first.pid}' not in (lock.read_text() if lock.exists() else ""):
            time.sleep(0.05)
        waiting = subprocess.Popen([*cmd, "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        busy = run_cli_process("sync", str(config), "--no-wait")
        assert first.poll() is None, "the first run ended before the second was started"
        assert busy.code == 75, busy.stderr
        (line,) = busy.stderr.strip().splitlines()
        assert f"is locked by pid {first.pid}" in line and "--wait" in line and "nothing was done" in line
        out1, err1 = first.communicate(timeout=120)
        out2, err2 = waiting.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert waiting.returncode == 0, err2
    assert "waiting for the dataset lock" in err2 and f"pid {first.pid}" in err2
    # The waiting run saw what the first stored: it fetched the overlap only.
    first_series = json.loads(out1)["series"]
    assert [s["rows_added"] for s in first_series] == [2 * 1440, 2 * 1440]
    assert all(s["requests"] == 1 and s["rows_added"] == 0 for s in json.loads(out2)["series"])
    r = run_cli("inventory", str(out), "--verify", "--json")
    assert r.code == 0, r.stdout
    assert [s["rows"] for s in json.loads(r.stdout)["series"]] == [2 * 1440, 2 * 1440]
    assert lock.read_text() == ""  # released: no holder left behind


def test_the_illiquid_pairs_empty_stretches_are_told_apart_from_a_failed_range(tmp_path: Path) -> None:
    # Binance with a tiny budget and no patience: it bans dccd mid-run (418), so a range fails.
    venue = {"weight_limit": 27, "window_s": 60, "ban_after": 0, "ban_s": 600}
    settings = EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE, venues={"binance": venue})
    out = tmp_path / "data"
    with EmulatorServer(settings) as emu:
        config = tmp_path / "sync.toml"
        config.write_text(f"""
[defaults]
out = "{out}"
ohlc = ["1m"]
symbols = ["SOL-EUR"]

[[job]]
name = "banned"
exchange = "binance"
start = "-8d"
base_url = "{emu.venue_url('binance')}"

[[job]]
name = "quiet"
exchange = "coinbase"
start = "-1d"
base_url = "{emu.venue_url('coinbase')}"
""")
        code, summary, stderr = sync(str(config))
    assert code == 1, stderr
    series = {s["job"]: s for s in summary["series"]}
    assert "banned" in series["banned"]["error"]
    assert series["banned"]["gaps"] and all(g["reason"] == "failed" for g in series["banned"]["gaps"])
    assert series["quiet"]["error"] is None and series["quiet"]["gaps"] == []

    r = run_cli("inventory", str(out), "--json")
    assert r.code == 0, r.stderr
    inv = {s["exchange"]: s for s in json.loads(r.stdout)["series"]}
    banned, quiet = inv["binance"], inv["coinbase"]
    assert banned["coverage_pct"] < 100 and banned["no_data"]["count"] == 0
    assert [g["reason"] for g in banned["gaps"]] == ["failed"] and "banned" in banned["gaps"][0]["error"]
    assert banned["gaps"][0]["end"] == "2024-03-01T00:30:00Z"
    assert quiet["coverage_pct"] == 100 and quiet["gaps"] == []
    assert quiet["no_data"]["count"] > 1000 and quiet["no_data"]["stretches"] > 1
    assert set(quiet["strip"]) <= {"░", "▒", "█"} and "░" in quiet["strip"]
    assert "✗" in banned["strip"] and "░" not in banned["strip"]

    # Drawn for people: the failed range and the quiet market look different at a glance.
    r = run_cli_process("inventory", str(out), env={"PYTHONIOENCODING": "utf-8"})
    assert r.code == 0
    text = r.stdout
    assert "✗ failed 2024-02-" in text and "░ no data at the exchange:" in text
    assert "█ stored  ▒ partly empty (quiet market)  ░ no data at the exchange  ✗ failed  · never fetched" in text
    ascii_text = run_cli_process("inventory", str(out), env={"PYTHONIOENCODING": "ascii"}).stdout
    assert "x failed 2024-02-" in ascii_text and "- no data at the exchange:" in ascii_text
    assert ascii_text.isascii()


def test_a_terminal_gets_progress_bars_and_an_overall_bar(emulator: EmulatorServer, tmp_path: Path) -> None:
    import os
    import pty

    config = write_config(tmp_path / "sync.toml", tmp_path / "data", emulator)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dccd_cli", "sync", str(config)],
                            stdout=subprocess.PIPE, stderr=follower, text=True,
                            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "all series" in screen and "coinbase SOL-EUR ohlc 1m" in screen
    assert re.search(r"[\d,]+ rows, [\d,]+ rows/s", screen)  # rows and their rate on the bars
    assert "\x1b[" in screen  # drawn with control sequences: a terminal, not a log
