"""Progress off a terminal, through the real command line: lines while a backward-walking
venue pages (not 0% until done), rows/s, and each result once in a shared log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dccd_testing import FROZEN_NOW, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings


@pytest.fixture(scope="module")
def slow_emulator() -> Iterator[EmulatorServer]:
    # Real trade counts (some 500 a minute) and a round trip of 40 ms: a few minutes of
    # trades are some 15 pages of one cursor, long enough for lines 0.2 s apart.
    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, trades_scale=1.0, latency_ms=40)) as server:
        yield server


def test_okx_trades_walking_backwards_show_progress_between_0_and_100(
    slow_emulator: EmulatorServer, tmp_path: Path
) -> None:
    r = run_cli("trades", "okx", "BTC-USDT", "--start", "2024-02-29T12:00", "--end", "2024-02-29T12:03",
                "--base-url", slow_emulator.venue_url("okx"), "--out", str(tmp_path),
                env={"DCCD_PROGRESS_INTERVAL": "0.2"})
    assert r.code == 0, r.stderr
    lines = re.findall(r"okx BTC-USDT trades: (\d+)%, ([\d,]+) rows, ([\d,]+) rows/s", r.stderr)
    assert any(0 < int(pct) < 100 and int(rows.replace(",", "")) > 0 for pct, rows, _ in lines), r.stderr
    assert "\x1b" not in r.stderr  # a log, not a terminal


def test_a_bad_progress_interval_is_exit_2(emulator: EmulatorServer, tmp_path: Path) -> None:
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-01-01", "--end", "2024-01-02",
                "--base-url", emulator.venue_url("binance"), "--out", str(tmp_path),
                env={"DCCD_PROGRESS_INTERVAL": "soon"})
    assert r.code == 2 and "DCCD_PROGRESS_INTERVAL='soon' is not a number of seconds" in r.stderr


def test_a_shared_log_holds_each_result_line_once(emulator: EmulatorServer, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with log.open("w") as f:  # >log 2>&1
        code = subprocess.run(
            [sys.executable, "-m", "dccd_cli", "ohlc", "binance", "BTC-USDT", "ETH-USDT", "--span", "1h",
             "--start", "2024-01-01", "--end", "2024-01-02", "--base-url", emulator.venue_url("binance"),
             "--out", str(tmp_path / "data")],
            stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=os.environ.copy(), timeout=60,
        ).returncode
    assert code == 0
    text = log.read_text()
    for symbol in ("BTC-USDT", "ETH-USDT"):
        assert text.count(f"binance {symbol} ohlc 1h: 24 rows added") == 1, text
        assert re.search(rf"Z binance {symbol} ohlc 1h: done, 24 rows, [\d,]+ rows/s\n", text), text
    # Apart, the log (stderr) keeps each result for itself, and stdout has the summary.
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-01-02", "--end", "2024-01-03",
                "--base-url", emulator.venue_url("binance"), "--out", str(tmp_path / "data"))
    assert "binance BTC-USDT ohlc 1h: 24 rows added" in r.stderr
    assert "binance BTC-USDT ohlc 1h: 24 rows added" in r.stdout


def test_a_series_waiting_for_the_rate_limit_says_until_when(tmp_path: Path) -> None:
    from dccd_cli.emulator import parse_faults, venues

    faults = dict(parse_faults(["binance=429(3)@2/klines"], venues(), 0))  # Retry-After: 3
    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, faults=faults)) as server:
        r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1m", "--start", "2024-02-27", "--end", "2024-02-29",
                    "--base-url", server.venue_url("binance"), "--out", str(tmp_path),
                    env={"DCCD_PROGRESS_INTERVAL": "0.5"})
    assert r.code == 0, r.stderr
    waits = re.findall(r"binance BTC-USDT ohlc 1m: \d+%, [\d,]+ rows, [\d,]+ rows/s, "
                       r"waiting for the rate limit until (\d\d:\d\d:\d\dZ)\n", r.stderr)
    assert len(waits) >= 2, r.stderr  # said at once, and again while it lasts
    assert "2880 rows added" in r.stderr
