"""The blocking forms work from plain code and from inside a running event loop (a
Jupyter cell is one): there the coroutine runs on a private thread with a loop of its own."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import dccd_cli as dccd
from dccd_cli.emulator import EmulatorServer
from dccd_cli.run.download import NoProgress
from dccd_cli.run.results import SeriesResult


class ThreadOfProgress(NoProgress):
    """Notes the thread each series finishes on."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def finish(self, task: int, result: SeriesResult) -> None:
        self.threads.append(threading.current_thread())


def _download(emulator: EmulatorServer, out: Path, progress: ThreadOfProgress) -> dccd.RunResult:
    return dccd.download("binance", "BTC-USDT", span="1h", start="2024-01-01", end="2024-01-03", out=out,
                         base_url=emulator.venue_url("binance"), progress=progress)


def test_blocking_form_from_plain_code_runs_on_this_thread(emulator: EmulatorServer, tmp_path: Path) -> None:
    progress = ThreadOfProgress()
    assert _download(emulator, tmp_path, progress).series[0].rows_added == 48
    assert progress.threads == [threading.current_thread()]


async def test_blocking_form_inside_a_running_loop(emulator: EmulatorServer, tmp_path: Path) -> None:
    asyncio.get_running_loop()  # this test runs inside one, as a notebook cell does
    progress = ThreadOfProgress()
    result = _download(emulator, tmp_path, progress)
    assert result.exit_code == 0 and result.series[0].rows_added == 48
    assert len(progress.threads) == 1 and progress.threads[0] is not threading.current_thread()
    markets = dccd.markets("binance", "*-USDT", base_url=emulator.venue_url("binance"))
    assert [m.symbol for m in markets.markets] == ["BTC-USDT", "ETH-USDT"]
    synced = dccd.sync(jobs=[dccd.Job("binance", ["ETH-USDT"], "2024-01-01", end="2024-01-03", ohlc=["1h"])],
                       out=tmp_path, base_urls={"binance": emulator.venue_url("binance")})
    assert synced.exit_code == 0 and synced.rows_added == 48


async def test_errors_cross_from_the_private_thread(tmp_path: Path) -> None:
    with pytest.raises(dccd.UnknownExchangeError):
        dccd.download("nope", "BTC-USDT", span="1h", start="2024-01-01", out=tmp_path)


async def test_async_forms_run_on_the_callers_loop(emulator: EmulatorServer, tmp_path: Path) -> None:
    progress = ThreadOfProgress()
    result, markets = await asyncio.gather(
        dccd.download_async("binance", "ETH-USDT", span="1d", start="2024-01-01", end="2024-01-11",
                            out=tmp_path, base_url=emulator.venue_url("binance"), progress=progress),
        dccd.markets_async("binance", base_url=emulator.venue_url("binance")))
    assert result.series[0].rows_added == 10 and len(markets.markets) >= 2
    assert progress.threads == [threading.current_thread()]
    synced = await dccd.sync_async(jobs=[{"exchange": "binance", "symbols": "BTC-USDT", "ohlc": "1d",
                                          "start": "2024-01-01", "end": "2024-01-11"}],
                                   out=tmp_path, base_urls={"binance": emulator.venue_url("binance")})
    assert synced.rows_added == 10
