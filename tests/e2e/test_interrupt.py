"""Ctrl-C mid-download: exit 130 with one line, every file left readable, and the next
run completes the same rows as a download never interrupted. The real CLI, a real SIGINT,
the emulator over loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from dccd_testing import FROZEN_NOW, TEST_TRADES_SCALE, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.emulator.venue import Request, Response

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


# One day of trades at a scale and latency that make it last ~15 s: a kill lands mid-day.
DAY = ["--start", "2024-02-01", "--end", "2024-02-02"]
MID_DAY_SCALE = 0.12


def _fetched(out: Path) -> list[list[int]]:
    ledger = out / "trades/exchange=binance/symbol=BTC-USDT/_coverage.json"
    return json.loads(ledger.read_text())["fetched"] if ledger.exists() else []


# Trade pages the venue answers before the interrupt (what about 3.5 s of paging at the
# 600 ms latency comes to): the day's first windows are complete, so rows have reached the
# writer, however long the interpreter took to start.
TRADE_PAGES = 40


def _count_trade_pages(emu: EmulatorServer) -> list[int]:
    """A counter (in a one-item list) of the trade pages ``emu``'s Binance venue answers."""
    venue = emu.app.venues["binance"]
    handle, pages = venue.handle, [0]

    async def counting(request: Request) -> Response:
        response = await handle(request)
        pages[0] += request.path.endswith("/aggTrades")
        return response

    venue.handle = counting  # type: ignore[method-assign]
    return pages


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_a_kill_mid_day_keeps_the_day_up_to_seconds_before_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "interrupted"
    settings = EmulatorSettings(now=FROZEN_NOW, trades_scale=MID_DAY_SCALE, latency_ms=600)
    with EmulatorServer(settings) as emu:
        pages = _count_trade_pages(emu)
        args = ["trades", "binance", "BTC-USDT", *DAY, "--base-url", emu.venue_url("binance"),
                "--out", str(out), "--quiet"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "dccd_cli", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            if sig == signal.SIGKILL:  # after the first commit (every few seconds), and a bit
                deadline = time.monotonic() + 30
                while not _fetched(out):
                    assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, "nothing committed within 30 s"
                    time.sleep(0.05)
                time.sleep(1.0)
            else:  # rows received, none committed yet: a few pages in, however slow the start
                deadline = time.monotonic() + 30
                while pages[0] < TRADE_PAGES:
                    assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, f"fewer than {TRADE_PAGES} pages within 30 s"
                    time.sleep(0.05)
                time.sleep(settings.latency_ms / 1000)  # the last page answered is on its way
            assert proc.poll() is None, "the day was done before the signal"
            killed_at = time.time()
            proc.send_signal(sig)
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), stderr

    (fetched,) = _fetched(out)  # part of the day, recorded: not thrown away
    day_start = fetched[0]
    assert day_start < fetched[1] < day_start + 86_400 * 10**9
    ledger = out / "trades/exchange=binance/symbol=BTC-USDT/_coverage.json"
    # Recorded within a few seconds before the kill (at it, for an interrupt).
    assert ledger.stat().st_mtime >= killed_at - (0.5 if sig == signal.SIGINT else 6.0)
    day = out / "trades/exchange=binance/symbol=BTC-USDT/2024-02-01.parquet"
    kept = pq.read_table(day)
    assert kept.num_rows > 0
    assert kept.column("ts").cast("int64").to_pylist()[-1] < fetched[1]

    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, trades_scale=MID_DAY_SCALE)) as emu:
        url = emu.venue_url("binance")
        again = run_cli("trades", "binance", "BTC-USDT", *DAY, "--base-url", url, "--out",
                        str(out), "--json")
        assert again.code == 0, again.stderr
        added = json.loads(again.stdout)["series"][0]["rows_added"]
        whole = tmp_path / "whole"
        assert run_cli("trades", "binance", "BTC-USDT", *DAY, "--base-url", url,
                       "--out", str(whole), "--quiet").code == 0
    assert _ids(out) == _ids(whole)
    assert added == len(_ids(whole)) - kept.num_rows  # only the rest of the day was fetched
    assert run_cli("inventory", str(out), "--verify").code == 0
