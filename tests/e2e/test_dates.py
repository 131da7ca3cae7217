"""Relative dates (``-30m``, ``-1d``, ``now``) mean the exchange's clock, never this
machine's, in every check; and a date error quotes the date as the user gave it
(``--end 2024-03-01``, ``start = "-1d"`` on its line), never calling a user's end "the
exchange's now". The emulator's clock is frozen at 2024-03-01T00:30Z, years behind this
machine's, so a check made against the local clock would show."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from dccd_testing import run_cli

from dccd_cli.emulator import EmulatorServer
from dccd_cli.errors import BadDateError
from dccd_cli.run.request import check_dates


def test_a_relative_start_before_a_fixed_end_is_read_by_the_exchanges_clock(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    # -3h by the exchange is 2024-02-29T21:30Z: the bars of 22:00 and 23:00 end before
    # 2024-03-01. By this machine's clock -3h is after 2024-03-01, and the run was refused.
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "-3h", "--end", "2024-03-01",
                "--base-url", emulator.venue_url("binance"), "--out", str(tmp_path / "out"), "--json")
    assert r.code == 0, r.stderr
    (series,) = json.loads(r.stdout)["series"]
    assert (series["start"], series["end"], series["rows_added"]) == ("2024-02-29T22:00:00Z", "2024-03-01T00:00:00Z", 2)


def test_a_sync_job_with_a_relative_start_and_a_fixed_end_runs(emulator: EmulatorServer, tmp_path: Path) -> None:
    config = tmp_path / "sync.toml"
    config.write_text(f'[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "-1d"\n'
                      f'end = "2024-03-01"\nbase_url = "{emulator.venue_url("binance")}"\n')
    r = run_cli("sync", str(config), "--out", str(tmp_path / "out"), "--json")
    assert r.code == 0, r.stderr
    (series,) = json.loads(r.stdout)["series"]
    assert (series["start"], series["end"], series["rows_added"]) == ("2024-02-29T01:00:00Z", "2024-03-01T00:00:00Z", 23)


@pytest.mark.parametrize("args,line", [
    (("--span", "1h", "--start", "-30m", "--end", "2024-03-01"),
     "nothing to fetch for BTC-USDT 1h: --start -30m (2024-03-01 by the exchange's clock) is not "
     "before --end 2024-03-01"),
    (("--span", "1h", "--start", "2024-03-01"),
     "nothing to fetch for BTC-USDT 1h: --start 2024-03-01 is not before the exchange's now, "
     "2024-03-01T00:30Z (its 1h bar open since 2024-03-01 is not finished)"),
    (("--span", "1h", "--start", "2024-02-01T00:10", "--end", "2024-02-01T00:50"),
     "nothing to fetch for BTC-USDT 1h: no finished 1h bar opens from --start 2024-02-01T00:10 "
     "to --end 2024-02-01T00:50"),
])
def test_an_empty_range_is_named_as_the_user_gave_it(
    emulator: EmulatorServer, tmp_path: Path, args: tuple[str, ...], line: str
) -> None:
    r = run_cli("ohlc", "binance", "BTC-USDT", *args, "--base-url", emulator.venue_url("binance"),
                "--out", str(tmp_path / "out"))
    assert r.code == 2, r.stderr
    assert r.stderr.strip().splitlines() == [f"dccd: error: {line}"]
    assert not (tmp_path / "out").exists()


def test_a_sync_jobs_empty_range_points_at_its_line(emulator: EmulatorServer, tmp_path: Path) -> None:
    config = tmp_path / "sync.toml"
    config.write_text(f'[[job]]\nname = "c"\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\n'
                      f'start = "-1d"\nend = "2024-02-01"\nbase_url = "{emulator.venue_url("binance")}"\n')
    r = run_cli("sync", str(config), "--out", str(tmp_path / "out"))
    assert r.code == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"dccd: error: {config}:6: [[job]] 'c': BTC-USDT ohlc 1h: nothing to fetch for BTC-USDT 1h: "
        'start = "-1d" (2024-02-29T00:30Z by the exchange\'s clock) is not before end = "2024-02-01"']


def test_the_check_before_any_request_reads_no_clock() -> None:
    # Relative dates against a fixed one: only the exchange's clock can tell (see above).
    for start, end in [("-1d", "2024-03-01"), ("2030-01-01", "-1d"), ("-30m", "now"), ("origin", "-1w")]:
        check_dates(start, end)
    with pytest.raises(BadDateError, match=r"^--start 2024-02-02 is not before --end 2024-02-01;") as err:
        check_dates("2024-02-02", "2024-02-01")
    assert err.value.about == "start"
    with pytest.raises(BadDateError, match=r"^end 'soon' is not a date;") as err:
        check_dates("-1d", "soon", names=("start", "end"))
    assert err.value.about == "end"


def test_the_emulators_relative_maintenance_window_is_read_by_its_frozen_clock(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dccd_cli", "emulator", "--port", str(port),
                             "--now", "2024-03-01T00:30Z", "--maintenance", "-2h/-1h"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/binance/api/v3/klines"
        deadline = time.monotonic() + 20
        while True:
            try:
                bars = httpx.get(url, params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1000,
                                              "startTime": 1_709_244_000_000,  # 2024-02-29T22:00Z
                                              "endTime": 1_709_251_200_000 - 1}).json()  # 03-01T00:00Z
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "the emulator did not start"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    opens = {bar[0] for bar in bars}
    window = range(1_709_245_800_000, 1_709_249_400_000, 60_000)  # 22:30Z .. 23:30Z by --now
    assert opens and not opens & set(window), "the window was read against this machine's clock"
    assert proc.returncode == 143  # SIGTERM: the emulator stops as the downloads do
