"""The API when things go wrong: a range the exchange keeps refusing is in the result and
``raise_for_failures()`` names it; bad input raises a ``UsageError`` before anything is
written; the library prints nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from dccd_testing import FROZEN_NOW

import dccd_cli as dccd
from dccd_cli.emulator import EmulatorServer, EmulatorSettings


@pytest.fixture()
def faulty(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """ETH-USDT's candle pages answer 5xx from the third on; BTC-USDT's are served."""
    monkeypatch.setenv("DCCD_HTTP_RETRIES", "1")
    monkeypatch.setenv("DCCD_HTTP_BACKOFF", "0.01")
    settings = EmulatorSettings(now=FROZEN_NOW, faults="binance=5xx@3-/klines?symbol=ETHUSDT")
    with EmulatorServer(settings) as server:
        yield server


def test_raise_for_failures_names_every_failed_range(faulty: EmulatorServer, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    result = dccd.download("binance", ["BTC-USDT", "ETH-USDT"], span="1m", start="2024-01-01",
                           end="2024-01-06", out=tmp_path, base_url=faulty.venue_url("binance"))
    assert result.exit_code == 1
    btc, eth = result.series
    assert btc.ok and btc.rows_added == 5 * 1440
    assert eth.failed and not eth.ok
    with pytest.raises(dccd.PartialDownloadError) as raised:
        result.raise_for_failures()
    err = raised.value
    assert isinstance(err, dccd.FetchError) and err.exit_code == 1
    assert len(err.failed) == len(eth.failed)
    for (label, start, end, why), f in zip(err.failed, eth.failed, strict=True):
        assert label == "binance ETH-USDT ohlc 1m" and why == f.error
        assert f"{label} {start}..{end}: " in str(err)
    assert str(err).splitlines()[0] == "1 of 2 series not complete: binance ETH-USDT ohlc 1m"
    assert all(isinstance(p, dccd.FailedPiece) and p.series == "binance ETH-USDT ohlc 1m" for p in err.failed)
    # what was fetched is stored and reads back; nothing was printed
    assert dccd.read(tmp_path, "ohlc", exchange="binance", symbol="BTC-USDT", span="1m").num_rows == 5 * 1440
    assert capsys.readouterr() == ("", "")


def test_sync_raise_for_failures_names_the_failed_series(faulty: EmulatorServer, tmp_path: Path) -> None:
    jobs = [dccd.Job("binance", ["BTC-USDT", "ETH-USDT"], "2024-01-01", end="2024-01-06", ohlc=["1m"],
                     name="minutes")]
    result = dccd.sync(jobs=jobs, out=tmp_path, base_urls={"binance": faulty.venue_url("binance")})
    assert result.exit_code == 1 and result.config is None
    with pytest.raises(dccd.PartialDownloadError) as raised:
        result.raise_for_failures()
    assert {label for label, *_ in raised.value.failed} == {"binance ETH-USDT ohlc 1m"}


BAD = [
    ({"exchange": "nope"}, dccd.UnknownExchangeError, "unknown exchange 'nope'"),
    ({"span": "7m"}, dccd.UnsupportedSpanError, "'7m'"),
    ({"span": None}, dccd.UnsupportedSpanError, "required"),
    ({"kind": "trades"}, dccd.UsageError, "trades have no span"),
    ({"kind": "candles"}, dccd.UsageError, "kind 'candles'"),
    ({"symbols": []}, dccd.UsageError, "at least one symbol"),
    ({"symbols": "BTC USDT"}, dccd.UnknownSymbolError, "is not of the form"),
    ({"symbols": 42}, dccd.UsageError, "not a text or a list"),
    ({"start": "2024-02-01", "end": "2024-01-01"}, dccd.BadDateError, 'start = "2024-02-01" is not before'),
    ({"start": "soon"}, dccd.BadDateError, "start 'soon' is not a date"),
    ({"start": 1704067200.5}, dccd.BadDateError, "is not a date"),
    ({"base_url": "127.0.0.1:8765"}, dccd.BaseUrlError, "not an http"),
    ({"out": "s3://bucket/data"}, dccd.OutputPathError, "is a URL"),
    ({"emulate": True, "base_url": "http://127.0.0.1:9/binance"}, dccd.UsageError, "not both"),
]


@pytest.fixture(scope="module")
def counting() -> Iterator[EmulatorServer]:
    """An emulator that counts the requests it is sent (a fault plan that never fires)."""
    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, faults="binance=5xx@1000000-")) as server:
        yield server


def _requests(server: EmulatorServer) -> int:
    return int(server.faults.summary()["requests"].get("binance", 0))


def test_the_request_counter_counts(counting: EmulatorServer, tmp_path: Path) -> None:
    before = _requests(counting)
    dccd.markets("binance", base_url=counting.venue_url("binance"))
    assert _requests(counting) > before


@pytest.mark.parametrize(("changed", "error", "words"), BAD, ids=[str(b[0]) for b in BAD])
def test_bad_input_raises_a_usage_error_and_writes_nothing(
        counting: EmulatorServer, tmp_path: Path, changed: dict[str, object], error: type[Exception],
        words: str) -> None:
    out = tmp_path / "data"
    kwargs: dict[str, object] = {"exchange": "binance", "symbols": ["BTC-USDT"], "span": "1h",
                                 "start": "2024-01-01", "end": "2024-01-02", "out": out,
                                 "base_url": counting.venue_url("binance"), **changed}
    before = _requests(counting)
    with pytest.raises(error, match=words) as raised:
        dccd.download(**kwargs)  # type: ignore[arg-type]
    assert isinstance(raised.value, dccd.UsageError) and raised.value.exit_code == 2
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert _requests(counting) == before  # refused before any request


def test_bad_jobs_raise_a_config_error_naming_each(tmp_path: Path) -> None:
    out = tmp_path / "data"
    with pytest.raises(dccd.ConfigError) as raised:
        dccd.sync(jobs=[{"exchange": "binance", "symbols": ["BTC-USDT"], "ohlc": ["7m"], "start": "2024-01-01"},
                        {"exchange": "nope", "symbols": ["BTC-USDT"], "trades": True, "start": "-1d",
                         "colour": "red"},
                        dccd.Job("binance", ["BTC-USDT"], datetime(2024, 1, 2), end="2024-01-01", trades=True)],
                  out=out)
    lines = str(raised.value).splitlines()
    assert any(line.startswith("jobs[0]: ohlc: span '7m'") for line in lines), lines
    assert any(line.startswith("jobs[1]: exchange: unknown exchange 'nope'") for line in lines), lines
    assert any(line.startswith("unknown key 'colour' in jobs[1]") for line in lines), lines
    assert any(line.startswith('jobs[2]: start = "2024-01-02T00:00:00+00:00" is not before') for line in lines), lines
    assert not out.exists()


def test_sync_wants_a_file_or_jobs(tmp_path: Path) -> None:
    with pytest.raises(dccd.UsageError, match="one of them"):
        dccd.sync()
    with pytest.raises(dccd.UsageError, match="one of them"):
        dccd.sync(tmp_path / "sync.toml", jobs=[])
    with pytest.raises(dccd.ConfigError, match="no such sync file"):
        dccd.sync(tmp_path / "sync.toml")


def test_a_symbol_the_exchange_lacks_names_the_python_job(counting: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with pytest.raises(dccd.ConfigError) as raised:
        dccd.sync(jobs=[dccd.Job("binance", ["DOGE-USDT"], "2024-01-01", ohlc=["1h"], name="dogs")], out=out,
                  base_urls={"binance": counting.venue_url("binance")})
    assert str(raised.value).startswith("jobs[0]: job 'dogs': unknown symbol 'DOGE-USDT' on binance")
    # found while planning, after the sync took the dataset's lock: no data, only the lock file
    assert [p.name for p in out.rglob("*")] == ["_dccd-dataset.lock"]


def test_a_script_sees_nothing_on_stderr_unless_it_configures_logging(faulty: EmulatorServer,
                                                                      tmp_path: Path) -> None:
    """Failed windows are logged (to ``dccd``), not printed: a script that configures no
    logging sees nothing on stderr; one that does gets the records."""
    code = ("import sys, dccd_cli as dccd\n"
            "r = dccd.download('binance', 'ETH-USDT', span='1m', start='2024-01-01', end='2024-01-04',\n"
            f"                  out={str(tmp_path / 'data')!r}, base_url={faulty.venue_url('binance')!r})\n"
            "print(r.exit_code)\n")
    env = {**os.environ, "DCCD_HTTP_RETRIES": "1", "DCCD_HTTP_BACKOFF": "0.01"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert (quiet.stdout, quiet.stderr) == ("1\n", "")
    logged = subprocess.run([sys.executable, "-c", "import logging; logging.basicConfig()\n" + code],
                            capture_output=True, text=True, env=env, timeout=120)
    assert logged.stdout == "1\n" and "WARNING:dccd." in logged.stderr and "failed" in logged.stderr


def test_wrong_types_are_usage_errors_not_type_errors(tmp_path: Path) -> None:
    with pytest.raises(dccd.ConfigError, match=r"jobs\[0\]: symbols: 42 is not a list of texts"):
        dccd.sync(jobs=[dccd.Job("binance", 42, "2024-01-01", ohlc="1h")], out=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(dccd.UsageError, match="base_urls must map an exchange"):
        dccd.sync(jobs=[dccd.Job("binance", "BTC-USDT", "2024-01-01", ohlc="1h")], out=tmp_path,
                  base_urls=["binance=http://127.0.0.1:9"])  # type: ignore[arg-type]
    with pytest.raises(dccd.ConfigError, match="is not a job"):
        dccd.sync(jobs=["binance BTC-USDT"], out=tmp_path)  # type: ignore[list-item]
    with pytest.raises(dccd.UsageError, match="jobs must be a list"):
        dccd.sync(jobs={"exchange": "binance"}, out=tmp_path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
