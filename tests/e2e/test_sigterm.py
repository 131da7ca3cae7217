"""SIGTERM — what ``timeout``, systemd, Kubernetes and CI cancellation send — takes Ctrl-C's
clean path: writers abort (no temporary file left), locks are released, one line, exit
143, and the next run completes. Before, SIGTERM killed the process where it stood."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from dccd_testing import FROZEN_NOW, TEST_TRADES_SCALE, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings

RANGE = ["--start", "2024-02-01", "--end", "2024-02-09"]


def _terminate_when(proc: subprocess.Popen[str], stored: Path, pattern: str) -> tuple[str, str]:
    """Send SIGTERM once a file matching ``pattern`` is under ``stored``; the outputs."""
    try:
        deadline = time.monotonic() + 60
        while not list(stored.glob(pattern)):
            assert proc.poll() is None, f"finished before it was stopped: {proc.communicate()}"
            assert time.monotonic() < deadline, "nothing stored within a minute"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def _assert_terminated(proc: subprocess.Popen[str], stderr: str, out: Path) -> None:
    assert proc.returncode == 143, (proc.returncode, stderr)
    assert stderr.strip().splitlines()[-1] == (
        "dccd: terminated; what was written is valid and the next run resumes"), stderr
    assert "Traceback" not in stderr
    assert not [p for p in out.rglob("*") if p.is_file() and ".tmp" in p.name]
    for path in out.rglob("*.parquet"):
        pq.read_table(path)  # readable, not torn


def test_sigterm_mid_download_exits_143_cleanly_and_the_next_run_completes(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    settings = EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE, latency_ms=150)
    out = tmp_path / "data"
    with EmulatorServer(settings) as slow:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dccd_cli", "trades", "binance", "BTC-USDT", *RANGE,
             "--base-url", slow.venue_url("binance"), "--out", str(out), "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        _, stderr = _terminate_when(proc, out, "trades/**/*.parquet")
    _assert_terminated(proc, stderr, out)
    assert len(list(out.glob("trades/**/*.parquet"))) < 8, "the run was not cut short"
    again = run_cli("trades", "binance", "BTC-USDT", *RANGE, "--base-url", emulator.venue_url("binance"),
                    "--out", str(out), "--quiet")
    assert again.code == 0, again.stderr
    assert len(list(out.glob("trades/**/*.parquet"))) == 8


def test_sigterm_mid_sync_releases_the_lock(tmp_path: Path, emulator: EmulatorServer) -> None:
    settings = EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE, latency_ms=150)
    out = tmp_path / "data"
    config = tmp_path / "sync.toml"
    with EmulatorServer(settings) as slow:
        config.write_text(f'[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\ntrades = true\n'
                          f'start = "2024-02-01"\nend = "2024-02-09"\nout = "{out}"\n')
        proc = subprocess.Popen(
            [sys.executable, "-m", "dccd_cli", "sync", str(config), "--quiet",
             "--base-url", f"binance={slow.venue_url('binance')}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        _, stderr = _terminate_when(proc, out, "trades/**/*.parquet")
    _assert_terminated(proc, stderr, out)
    assert (out / "_dccd-dataset.lock").read_text() == ""  # no holder left behind
    again = run_cli("sync", str(config), "--no-wait", "--quiet",
                    "--base-url", f"binance={emulator.venue_url('binance')}")
    assert again.code == 0, again.stderr  # not 75: the lock was released
    assert len(list(out.glob("trades/**/*.parquet"))) == 8
