"""The Python API's download and read, in-process against the emulator over loopback: the
candles and trades stored are the venue's, ``read()`` returns exactly them, and a result's
``to_json()`` is the CLI's ``--json`` object."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from dccd_testing import run_cli

import dccd_cli as dccd
from dccd_cli.emulator import EmulatorServer
from dccd_cli.timeutil import HOUR_NS, MS, datetime_to_ns

JAN1 = datetime(2024, 1, 1, tzinfo=UTC)
JAN1_MS = 1_704_067_200_000
Time = str | datetime | date


def ints(table: pa.Table, column: str = "ts") -> list[int]:
    return table.column(column).cast(pa.int64()).to_pylist()


def test_candles_are_the_venues_and_read_returns_them(emulator: EmulatorServer, tmp_path: Path) -> None:
    result = dccd.download("binance", "BTC-USDT", span="1h", start="2024-01-01", end="2024-02-01",
                           out=tmp_path, base_url=emulator.venue_url("binance"))
    assert result.exit_code == 0 and [s.rows_added for s in result.series] == [744]
    result.raise_for_failures()  # all fetched: returns
    table = dccd.read(tmp_path, "ohlc", exchange="binance", symbol="BTC-USDT", span="1h")
    assert ints(table) == [JAN1_MS * MS + i * HOUR_NS for i in range(744)]
    rows = httpx.get(f"{emulator.venue_url('binance')}/api/v3/klines", params={
        "symbol": "BTCUSDT", "interval": "1h", "startTime": JAN1_MS,
        "endTime": JAN1_MS + 744 * 3_600_000 - 1, "limit": 1000}).json()
    assert table.column("open").to_pylist() == [float(r[1]) for r in rows]
    assert table.column("close").to_pylist() == [float(r[4]) for r in rows]
    assert table.column("volume").to_pylist() == [float(r[5]) for r in rows]
    # a range of it, bounds as datetimes (naive: UTC) and dates
    part = dccd.read(str(tmp_path), "ohlc", exchange="BINANCE", symbol="btc/usdt", span="1h",
                     start=datetime(2024, 1, 2), end=date(2024, 1, 3))
    assert ints(part) == ints(table)[24:48]
    # the dataset: every series with its partition columns
    whole = dccd.dataset(tmp_path, "ohlc").to_table()
    assert whole.num_rows == 744 and set(whole.column("span").to_pylist()) == {"1h"}
    assert set(whole.column("symbol").to_pylist()) == {"BTC-USDT"}


def test_trades_are_the_venues_and_read_returns_them(emulator: EmulatorServer, tmp_path: Path) -> None:
    start, end = JAN1, datetime(2024, 1, 1, 3, tzinfo=UTC)
    result = dccd.download("binance", ["BTC-USDT"], kind="trades", start=start, end=end, out=tmp_path,
                           base_url=emulator.venue_url("binance"))
    assert result.exit_code == 0, result.to_json()
    table = dccd.read(tmp_path, "trades", exchange="binance", symbol="BTC-USDT")
    market = emulator.market
    want = market.agg_trades("BTC-USDT", datetime_to_ns(start), datetime_to_ns(end), 10**9)
    inst = market.instrument("BTC-USDT")
    tick, lot = Decimal(inst.tick), Decimal(inst.lot)
    assert table.num_rows == len(want) == result.series[0].rows_added > 100
    assert ints(table) == [int(t) for t in want.ts_ns]
    assert table.column("price").to_pylist() == [float(int(p) * tick) for p in want.price]
    assert table.column("amount").to_pylist() == [float(int(q) * lot) for q in want.qty]
    assert table.column("id").to_pylist() == [str(int(i)) for i in want.id]


def test_times_naive_aware_date_and_text_mean_the_same(emulator: EmulatorServer, tmp_path: Path) -> None:
    forms: list[tuple[Time, Time]] = [
        ("2024-01-01", "2024-01-02"),
        (datetime(2024, 1, 1), datetime(2024, 1, 2)),  # naive: UTC
        (JAN1, datetime(2024, 1, 2, tzinfo=UTC)),
        (datetime.fromisoformat("2024-01-01T01:00+01:00"), date(2024, 1, 2)),
        (date(2024, 1, 1), date(2024, 1, 2)),
    ]
    for i, (start, end) in enumerate(forms):
        r = dccd.download("binance", "ETH-USDT", span="1h", start=start, end=end, out=tmp_path / str(i),
                          base_url=emulator.venue_url("binance"))
        s = r.series[0]
        assert (s.start_ns, s.end_ns, s.rows_added) == (JAN1_MS * MS, JAN1_MS * MS + 24 * HOUR_NS, 24), start


def test_to_json_is_what_the_cli_prints(emulator: EmulatorServer, tmp_path: Path) -> None:
    args = dict(span=["1h", "1d"], start="2024-01-01", end="2024-01-10")
    cli = run_cli("ohlc", "binance", "BTC-USDT", "ETH-USDT", "--span", "1h,1d", "--start", "2024-01-01",
                  "--end", "2024-01-10", "--base-url", emulator.venue_url("binance"),
                  "--out", str(tmp_path / "cli"), "--json")
    assert cli.code == 0, cli.stderr
    api = dccd.download("binance", ["BTC-USDT", "ETH-USDT"], out=tmp_path / "api",
                        base_url=emulator.venue_url("binance"), **args)  # type: ignore[arg-type]
    printed = json.loads(cli.stdout)
    got = json.loads(json.dumps(api.to_json()).replace(str(tmp_path / "api"), str(tmp_path / "cli")))
    printed.pop("seconds"), got.pop("seconds")
    assert got == printed


def test_dry_run_writes_nothing(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    r = dccd.download("binance", "BTC-USDT", span="1h", start="2024-01-01", end="2024-02-01", out=out,
                      base_url=emulator.venue_url("binance"), dry_run=True)
    assert r.dry_run and r.estimate is not None and r.series[0].estimate is not None
    assert r.series[0].estimate.rows == 744
    assert not out.exists()


def test_emulate_runs_offline_against_an_in_process_emulator(tmp_path: Path) -> None:
    r = dccd.download("binance", "BTC-USDT", span="1d", start="2024-01-01", end="2024-01-08", out=tmp_path,
                      emulate=True)
    assert r.exit_code == 0 and r.series[0].rows_added == 7
    assert dccd.read(tmp_path, "ohlc", exchange="binance", symbol="BTC-USDT", span="1d").num_rows == 7


def test_a_series_not_stored_reads_as_an_empty_table(tmp_path: Path) -> None:
    table = dccd.read(tmp_path, "trades", exchange="okx", symbol="BTC-USDT")
    assert table.num_rows == 0 and "price" in table.schema.names


@pytest.mark.parametrize(("kind", "changed", "words"), [
    ("ohlc", {"span": None}, "span is required"),
    ("trades", {}, "trades have no span"),
    ("candles", {}, "kind 'candles'"),
    ("ohlc", {"symbol": "*-USDT"}, "is a pattern"),
    ("ohlc", {"exchange": "nope"}, "unknown exchange"),
    ("ohlc", {"start": "yesterday"}, "is not a date"),
])
def test_read_refuses_what_names_no_series(tmp_path: Path, kind: str, changed: dict[str, object],
                                           words: str) -> None:
    kwargs: dict[str, object] = {"exchange": "binance", "symbol": "BTC-USDT", "span": "1h", **changed}
    with pytest.raises(dccd.UsageError, match=words):
        dccd.read(tmp_path, kind, **kwargs)  # type: ignore[arg-type]


def test_read_of_no_dataset_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(dccd.OutputPathError, match="no dataset"):
        dccd.read(tmp_path / "absent", "ohlc", exchange="binance", symbol="BTC-USDT", span="1h")
    with pytest.raises(dccd.OutputPathError, match="no trades stored"):
        dccd.dataset(tmp_path, "trades")
