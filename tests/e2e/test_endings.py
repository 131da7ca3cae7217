"""How runs end, each through the real CLI in a subprocess against the emulator:

- ``--json`` prints exactly one object on stdout for every exit code (0, 1, 2, 75, 130,
  143), with ``ok``, ``exit_code`` and ``error``; the error line still goes to stderr;
- a reader that went away (a pipe closed on stderr or stdout, ``2>&-``) never stops a
  download nor prints a traceback: the exit code is the data's.

SIGTERM itself is in ``test_sigterm.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from dccd_testing import FROZEN_NOW, TEST_TRADES_SCALE, files_under, run_cli, run_cli_process
from fault_kit import FAST_FAILURE

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.storage.lock import DatasetLock

OHLC = ("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-02-01", "--end", "2024-02-02")
# Three hours of trades: a few pages, so several progress lines are written along the way.
TRADES = ("trades", "binance", "BTC-USDT", "--start", "2024-02-29T20:00", "--end", "2024-02-29T23:00")


def _one_object(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    doc = json.loads(lines[0])
    assert isinstance(doc, dict)
    return doc


def test_json_is_one_object_for_success_usage_errors_and_fetch_failures(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    url = emulator.venue_url("binance")
    out = str(tmp_path / "out")
    runs = {
        "ok": run_cli(*OHLC, "--base-url", url, "--out", out, "--json"),
        "bad span": run_cli(*OHLC[:4], "7m", *OHLC[5:], "--base-url", url, "--out", out, "--json"),
        "missing option": run_cli("ohlc", "binance", "BTC-USDT", "--start", "2024-02-01", "--json"),
        "bad sync file": run_cli("sync", str(tmp_path / "none.toml"), "--json"),
        "unreachable": run_cli(*OHLC, "--base-url", "http://127.0.0.1:9/binance", "--out", out, "--json",
                               env=FAST_FAILURE),
    }
    docs = {what: _one_object(r.stdout) for what, r in runs.items()}
    for what, r in runs.items():
        assert docs[what]["exit_code"] == r.code, what
        assert docs[what]["ok"] is (r.code == 0), what
    ok = docs["ok"]
    assert ok["error"] is None and ok["series"][0]["rows_added"] == 24
    assert runs["bad span"].code == 2
    assert docs["bad span"]["error"].startswith("span '7m' is not offered by binance")
    assert docs["bad span"]["command"] == "ohlc" and docs["bad span"]["series"] == []
    assert runs["bad span"].stderr.startswith("dccd: error: span '7m'")  # the line is still there
    assert runs["missing option"].code == 2
    assert docs["missing option"] == {"command": "ohlc", "ok": False, "exit_code": 2,
                                      "error": "Missing option '--span'."}
    assert runs["missing option"].stderr == (
        "dccd: error: Missing option '--span'; see 'dccd ohlc --help'\n")  # one line, no box
    assert runs["bad sync file"].code == 2 and "no such sync file" in docs["bad sync file"]["error"]
    assert docs["bad sync file"]["command"] == "sync"
    assert runs["unreachable"].code == 1, runs["unreachable"].stderr
    assert "cannot connect to 127.0.0.1:9" in docs["unreachable"]["error"]


def test_json_is_one_object_when_the_dataset_is_locked(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = tmp_path / "sync.toml"
    config.write_text(f'[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "-1d"\n'
                      f'out = "{out}"\nbase_url = "{emulator.venue_url("binance")}"\n')
    lock = DatasetLock(out, wait=False)
    asyncio.run(lock.acquire())
    try:
        r = run_cli_process("sync", str(config), "--no-wait", "--json")
    finally:
        lock.release()
    assert r.code == 75, r.stderr
    doc = _one_object(r.stdout)
    assert (doc["command"], doc["ok"], doc["exit_code"]) == ("sync", False, 75)
    assert "is locked by pid" in doc["error"] and doc["config"] == str(config)


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"),
                                           (signal.SIGTERM, 143, "terminated")])
def test_json_is_one_object_when_a_run_is_stopped(tmp_path: Path, sig: int, code: int, word: str) -> None:
    # One daily series done in a request; half a year of minutes takes ~17 rounds of 16
    # requests at 200 ms, so the signal lands in the middle of it.
    settings = EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE, latency_ms=200)
    with EmulatorServer(settings) as emu:
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "dccd_cli", "ohlc", "binance", "BTC-USDT", "--span", "1d",
             "--span", "1m", "--start", "2023-09-01", "--end", "2024-03-01", "--base-url",
             emu.venue_url("binance"), "--out", str(out), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            deadline = time.monotonic() + 30
            while not list(out.glob("ohlc/**/span=1d/*.parquet")):  # the daily series is done
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            proc.send_signal(sig)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == code, stderr
    assert stderr.strip().splitlines()[-1].startswith(f"dccd: {word};")
    doc = _one_object(stdout)
    assert (doc["command"], doc["ok"], doc["exit_code"], doc["error"]) == ("ohlc", False, code, word)
    # What it finished before it was stopped: the daily series, and not the minutes.
    assert [(s["span"], s["rows_added"]) for s in doc["series"]] == [("1d", 182)]


def _closed_pipe() -> tuple[int, int]:
    """A pipe whose reader is gone: every write to ``w`` fails with EPIPE."""
    r, w = os.pipe()
    os.close(r)
    return r, w


def _run(args: tuple[str, ...], **streams: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dccd_cli", *args], text=True, timeout=120,
                          stdin=subprocess.DEVNULL, **streams)


def test_a_closed_pipe_on_stderr_or_stdout_stops_nothing(emulator: EmulatorServer, tmp_path: Path) -> None:
    url = emulator.venue_url("binance")
    # `dccd trades ... 2>&1 | head -1` after head has exited: stdout and stderr are the same
    # dead pipe. Before, the first progress line raised BrokenPipeError: exit 1, nothing stored.
    _, dead = _closed_pipe()
    try:
        both = _run((*TRADES, "--base-url", url, "--out", str(tmp_path / "a")), stdout=dead, stderr=dead)
    finally:
        os.close(dead)
    assert both.returncode == 0
    whole = run_cli(*TRADES, "--base-url", url, "--out", str(tmp_path / "b"), "--quiet")
    assert whole.code == 0, whole.stderr

    def ids(root: Path) -> list[str]:
        return sorted(ds.dataset(root / "trades", partitioning="hive").to_table().column("id").to_pylist())

    assert ids(tmp_path / "a") == ids(tmp_path / "b") and ids(tmp_path / "a")

    # `dccd ... --json | head -c 10`, `dccd exchanges | head -1`: no traceback, no
    # "Exception ignored" at exit; the exit code is the run's.
    for args in ((*OHLC, "--base-url", url, "--out", str(tmp_path / "c"), "--json"), ("exchanges",)):
        _, dead = _closed_pipe()
        try:
            r = _run(args, stdout=dead, stderr=subprocess.PIPE)
        finally:
            os.close(dead)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert [p.name for p in files_under(tmp_path / "c") if p.suffix == ".parquet"] == ["2024-02.parquet"]


def test_a_closed_stderr_descriptor_stops_nothing(emulator: EmulatorServer, tmp_path: Path) -> None:
    # `dccd ... 2>&-`: Python starts with sys.stderr None.
    r = _run((*OHLC, "--base-url", emulator.venue_url("binance"), "--out", str(tmp_path / "out"), "--json"),
             stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2))
    assert r.returncode == 0
    assert _one_object(r.stdout)["series"][0]["rows_added"] == 24
