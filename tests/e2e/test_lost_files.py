"""Files lost or damaged after a download, and bars stored while forming: the ledger's
manifest and provisional marks make ``--verify`` name them and the next plain download
fetch exactly them again. The real CLI against the emulator over loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
from dccd_testing import FROZEN_NOW, TEST_TRADES_SCALE, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.storage import LEDGER_NAME, SeriesKey, read_series
from dccd_cli.timeutil import HOUR_NS

OHLC = ["--span", "1h", "--start", "2024-01-01", "--end", "2024-03-01"]
TRADES = ["--start", "2024-02-01", "--end", "2024-02-04"]
ETH_1H = SeriesKey("ohlc", "binance", "ETH-USDT", "1h")
BTC_TRADES = SeriesKey("trades", "binance", "BTC-USDT")


def _download(url: str, out: Path, kind: str, symbol: str, *args: str) -> dict[str, Any]:
    r = run_cli(kind, "binance", symbol, *args, "--base-url", url, "--out", str(out), "--json")
    assert r.code == 0, r.stderr
    (series,) = json.loads(r.stdout)["series"]
    return dict(series)


def _verify(out: Path) -> tuple[int, list[str], dict[str, Any]]:
    r = run_cli("inventory", str(out), "--verify", "--json")
    (series,) = json.loads(r.stdout)["series"]
    return r.code, series["problems"], series


def test_a_deleted_month_file_is_named_by_verify_and_fetched_again(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    url, out = emulator.venue_url("binance"), tmp_path / "data"
    _download(url, out, "ohlc", "ETH-USDT", *OHLC)
    month = ETH_1H.dir(out) / "2024-01.parquet"
    month.unlink()

    code, problems, series = _verify(out)
    assert code == 1
    assert any(p.startswith("2024-01.parquet: missing; the ledger recorded 744 rows") for p in problems)
    # The hole is a missing file, never "no data at the exchange".
    assert series["no_data"]["count"] == 0
    assert [(g["start"], g["end"], g["reason"]) for g in series["gaps"]] == [
        ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "file missing")]

    again = _download(url, out, "ohlc", "ETH-USDT", *OHLC)
    assert again["requests"] > 0 and again["rows_added"] == 744
    assert "2024-01.parquet is missing (the ledger recorded 744 rows in it); its range is fetched again" in again["notes"]
    fresh = tmp_path / "fresh"
    _download(url, fresh, "ohlc", "ETH-USDT", *OHLC)
    assert read_series(out, ETH_1H).equals(read_series(fresh, ETH_1H))
    assert _verify(out)[0] == 0
    assert _download(url, out, "ohlc", "ETH-USDT", *OHLC)["requests"] == 0  # whole again


def test_a_deleted_trades_day_is_named_by_verify_and_fetched_again(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    url, out = emulator.venue_url("binance"), tmp_path / "data"
    _download(url, out, "trades", "BTC-USDT", *TRADES)
    day = BTC_TRADES.dir(out) / "2024-02-02.parquet"
    rows = pq.read_metadata(day).num_rows
    day.unlink()

    code, problems, _ = _verify(out)
    assert code == 1 and any(p.startswith("2024-02-02.parquet: missing") for p in problems)
    again = _download(url, out, "trades", "BTC-USDT", *TRADES)
    assert again["requests"] > 0 and again["rows_added"] == rows
    fresh = tmp_path / "fresh"
    _download(url, fresh, "trades", "BTC-USDT", *TRADES)
    assert read_series(out, BTC_TRADES).equals(read_series(fresh, BTC_TRADES))
    assert _verify(out)[0] == 0


def test_an_unreadable_file_is_moved_aside_and_fetched_again(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    url, out = emulator.venue_url("binance"), tmp_path / "data"
    _download(url, out, "ohlc", "ETH-USDT", *OHLC)
    month = ETH_1H.dir(out) / "2024-02.parquet"
    month.write_bytes(b"not parquet at all " * 100)

    code, problems, _ = _verify(out)
    assert code == 1 and any(p.startswith("2024-02.parquet: cannot be read") for p in problems)
    again = _download(url, out, "ohlc", "ETH-USDT", *OHLC)
    assert again["requests"] > 0 and again["rows_added"] == 29 * 24
    assert any("moved aside to _2024-02.parquet.corrupt" in n for n in again["notes"])
    assert (month.parent / "_2024-02.parquet.corrupt").read_bytes().startswith(b"not parquet")
    fresh = tmp_path / "fresh"
    _download(url, fresh, "ohlc", "ETH-USDT", *OHLC)
    assert read_series(out, ETH_1H).equals(read_series(fresh, ETH_1H))
    assert _verify(out)[0] == 0


def test_refetch_fetches_a_stored_range_again(emulator: EmulatorServer, tmp_path: Path) -> None:
    url, out = emulator.venue_url("binance"), tmp_path / "data"
    _download(url, out, "ohlc", "ETH-USDT", *OHLC)
    assert _download(url, out, "ohlc", "ETH-USDT", *OHLC)["requests"] == 0
    again = _download(url, out, "ohlc", "ETH-USDT", *OHLC, "--refetch")
    assert again["requests"] > 0 and again["rows_added"] == 0 and again["rows_written"] == 1440


def test_a_bar_stored_while_forming_is_fetched_again_by_a_later_plain_download(
    tmp_path: Path,
) -> None:
    out = tmp_path / "data"
    key = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
    args = ["--span", "1h", "--start", "2024-02-29T20:00"]
    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE)) as emu:
        url = emu.venue_url("binance")
        _download(url, out, "ohlc", "BTC-USDT", *args, "--include-partial")  # 00:00 forming
        ledger = json.loads((key.dir(out) / LEDGER_NAME).read_text())
        assert ledger["provisional"] == [[FROZEN_NOW - HOUR_NS // 2, FROZEN_NOW + HOUR_NS // 2]]
        forming = read_series(out, key, FROZEN_NOW - HOUR_NS // 2)
        code, problems, _ = _verify(out)
        assert code == 1 and "the next download or sync that covers it replaces it" in problems[0]

        httpx.post(f"{emu.base_url}/_emulator/clock",
                   json={"now_ns": FROZEN_NOW + HOUR_NS}).raise_for_status()
        later = _download(url, out, "ohlc", "BTC-USDT", *args)  # the 00:00 bar has closed
        assert later["requests"] > 0
        fresh = tmp_path / "fresh"
        _download(url, fresh, "ohlc", "BTC-USDT", *args)
    final = read_series(fresh, key, FROZEN_NOW - HOUR_NS // 2)
    assert final.num_rows == 1 and not final.equals(forming)  # the forming bar had moved on
    assert read_series(out, key).equals(read_series(fresh, key))
    assert json.loads((key.dir(out) / LEDGER_NAME).read_text())["provisional"] == []
    assert _verify(out)[0] == 0


def test_sync_fetches_a_lost_file_again_and_its_dry_run_says_so(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    config = tmp_path / "job.toml"
    config.write_text(f"""
[[job]]
name = "candles"
exchange = "binance"
symbols = ["ETH-USDT"]
ohlc = ["1h"]
start = "2024-01-01"
end = "2024-03-01"
out = "{out}"
base_url = "{emulator.venue_url('binance')}"
""")
    assert run_cli("sync", str(config), "--quiet").code == 0
    (ETH_1H.dir(out) / "2024-01.parquet").unlink()
    note = "2024-01.parquet is missing (the ledger recorded 744 rows in it); its range is fetched again"

    plan = json.loads(run_cli("sync", str(config), "--dry-run", "--json").stdout)
    (series,) = plan["series"]
    assert note in series["notes"] and {"start": "2024-01-01T00:00:00Z", "end": "2024-02-01T00:00:00Z"} in series["fetched"]

    r = run_cli("sync", str(config), "--json")
    assert r.code == 0, r.stderr
    (series,) = json.loads(r.stdout)["series"]
    assert note in series["notes"] and series["requests"] > 0 and series["rows_added"] == 744
    assert _verify(out)[0] == 0
