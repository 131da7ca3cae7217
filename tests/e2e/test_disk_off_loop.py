"""A download's disk work stays off the event loop: with every fsync made slow, the run's
other coroutines (a ticker here; concurrent requests and series in a real run) are not held
up by it; and a disk error on a writer's thread is reported as it is on the loop. The real
API and CLI against the emulator over loopback."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dccd_cli.cli.app import app
from dccd_cli.emulator import EmulatorServer
from dccd_cli.run.download import run_download
from dccd_cli.run.request import DownloadRequest
from dccd_cli.storage import writer as writer_module
from dccd_cli.storage.atomic import storage_error

# Each fsync takes this long: a loop that ran one would stall a tick by at least as much.
SLOW_FSYNC_S = 0.6
TICK_S = 0.01


def test_a_slow_disk_does_not_stall_the_event_loop(
    tmp_path: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync
    fsync_threads: list[int] = []

    def slow_fsync(fd: int) -> None:
        fsync_threads.append(threading.get_ident())
        time.sleep(SLOW_FSYNC_S)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    # Three days: partitions complete and are written while the later days are fetched.
    req = DownloadRequest(kind="trades", exchange="binance", symbols=["BTC-USDT"],
                          start="2024-02-01", end="2024-02-04", out=tmp_path / "data",
                          base_url=emulator.venue_url("binance"))

    async def download_beside_a_ticker() -> tuple[int, float, int]:
        loop = asyncio.get_running_loop()
        lags: list[float] = []
        running = True

        async def tick() -> None:
            while running:
                t0 = loop.time()
                await asyncio.sleep(TICK_S)
                lags.append(loop.time() - t0 - TICK_S)

        ticker = asyncio.create_task(tick())
        try:
            run = await run_download(req)
        finally:
            running = False
            await ticker
        return sum(s.rows_added for s in run.series), max(lags), threading.get_ident()

    rows, worst_lag, loop_thread = asyncio.run(download_beside_a_ticker())
    assert rows > 0
    assert len(fsync_threads) >= 6, "the files and ledger were not synced: nothing was measured"
    assert loop_thread not in fsync_threads, "a file was synced on the event loop's thread"
    assert worst_lag < SLOW_FSYNC_S / 2, f"the event loop stalled for {worst_lag:.2f} s"


def test_a_full_disk_under_two_concurrent_series_is_one_line(
    tmp_path: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # One series' write fails while the other's, on its own thread, is still failing: the
    # first error ends the run, which cancels the other series mid-close. That one ends
    # cancelled, so stderr holds the one error line and no report of an unhandled error.
    other_writing = threading.Event()

    def full(path: Path, table: object, metadata: object) -> int:
        if "symbol=BTC-USDT" in str(path):
            other_writing.set()
            time.sleep(0.5)
        else:
            other_writing.wait(10)
        raise storage_error("write", path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(writer_module, "write_data_file", full)
    out = tmp_path / "data"
    result = CliRunner().invoke(app, [
        "ohlc", "binance", "BTC-USDT", "ETH-USDT", "--span", "1m", "--start", "2024-01-01",
        "--end", "2024-01-03", "--base-url", emulator.venue_url("binance"), "--out", str(out),
        "--quiet"])
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("dccd: error: could not write ") and "ETH-USDT" in line, line
    assert line.endswith("No space left on device"), line
    assert not list(out.rglob("*.parquet"))
    # What a process' stderr would show after that line (pytest's handler takes it here).
    unhandled = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert not unhandled, unhandled
