"""Ctrl-C mid-download: exit 130 with one line, every file left readable, and the next
run completes the same rows as a download never interrupted. The real CLI, a real SIGINT,
the emulator over loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
from dccd_testing import FROZEN_NOW, TEST_TRADES_SCALE, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings

RANGE = ["--start", "2024-02-01", "--end", "2024-02-21"]


def _ids(out: Path) -> list[str]:
    table = ds.dataset(out / "trades", partitioning="hive").to_table(columns=["id"])
    return sorted(table.column("id").to_pylist())


def test_ctrl_c_exits_130_and_the_next_run_completes_the_same_rows(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    # Latency makes the download last several seconds, so the signal lands mid-way; the
    # runs after it use the shared emulator (the same market, no latency).
    settings = EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE, latency_ms=150)
    with EmulatorServer(settings) as emu:
        url = emu.venue_url("binance")
        out = tmp_path / "interrupted"
        args = ["trades", "binance", "BTC-USDT", *RANGE, "--base-url", url, "--out", str(out),
                "--quiet"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "dccd_cli", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            # pytest's process may ignore SIGINT for its children; a user's shell does not.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            deadline = time.monotonic() + 60
            while not list(out.glob("trades/**/*.parquet")):
                assert proc.poll() is None, f"finished before any day was stored: {proc.stderr.read()}"  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "no day stored within a minute"
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, (proc.returncode, stderr)
        lines = stderr.strip().splitlines()
        assert lines and lines[-1].startswith("dccd: interrupted;"), stderr
        assert "Traceback" not in stderr

        stored = sorted(out.glob("trades/**/*.parquet"))
        assert stored and len(stored) < 20, "the run was not cut short"
        for path in stored:
            pq.read_table(path)  # readable, not torn
        assert not [p for p in out.rglob("*") if p.is_file() and ".tmp" in p.name]

    url = emulator.venue_url("binance")
    again = run_cli("trades", "binance", "BTC-USDT", *RANGE, "--base-url", url, "--out", str(out),
                    "--quiet")
    assert again.code == 0, again.stderr
    whole = tmp_path / "whole"
    fresh = run_cli("trades", "binance", "BTC-USDT", *RANGE, "--base-url", url,
                    "--out", str(whole), "--quiet")
    assert fresh.code == 0, fresh.stderr
    assert len(list(out.glob("trades/**/*.parquet"))) == 20
    assert _ids(out) == _ids(whole)
