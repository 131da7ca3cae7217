"""Reader helpers: one series as a table, the series present, and the contract check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dccd_cli.pieces import Chunk, FailedRange
from dccd_cli.schema import ohlc_table, trades_table, ts_ns_column
from dccd_cli.storage import SeriesKey, SeriesWriter, list_series, read_series, verify_series
from dccd_cli.timeutil import DAY_NS, HOUR_NS, datetime_to_ns

KEY = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
TRADES = SeriesKey("trades", "binance", "ETH-USDT")
T0 = datetime_to_ns(datetime(2024, 1, 31, tzinfo=UTC))


def bar_table(ts: list[int]) -> pa.Table:
    n = len(ts)
    return ohlc_table(ts, [1.0] * n, [2.0] * n, [0.5] * n, [1.0] * n, [1.0] * n)


def write(root: Path, key: SeriesKey, *pieces: Chunk | FailedRange) -> None:
    with SeriesWriter(root, key, native_symbol="X", version="test") as w:
        for p in pieces:
            w.add(p)


def test_read_series_filters_by_time_across_files(tmp_path: Path) -> None:
    ts = [T0 + h * HOUR_NS for h in range(48)]  # Jan 31 and Feb 1
    write(tmp_path, KEY, Chunk(T0, T0 + 2 * DAY_NS, bar_table(ts)))
    assert ts_ns_column(read_series(tmp_path, KEY)).to_pylist() == ts
    part = read_series(tmp_path, KEY, T0 + 20 * HOUR_NS, T0 + 30 * HOUR_NS)
    assert ts_ns_column(part).to_pylist() == ts[20:30]
    assert read_series(tmp_path, KEY, start_ns=T0 + 47 * HOUR_NS).num_rows == 1
    assert read_series(tmp_path, KEY, end_ns=T0).num_rows == 0
    empty = read_series(tmp_path, SeriesKey("ohlc", "binance", "ETH-USDT", "1h"))
    assert empty.num_rows == 0 and empty.schema == KEY.schema


def test_list_series(tmp_path: Path) -> None:
    write(tmp_path, KEY, Chunk(T0, T0 + HOUR_NS, bar_table([T0])))
    write(
        tmp_path, SeriesKey("ohlc", "binance", "BTC-USDT", "1M"), FailedRange(T0, T0 + DAY_NS, "x")
    )
    write(tmp_path, TRADES, Chunk(T0, T0 + 1, trades_table([T0], ["1"], [1.0], [1.0], None)))
    (tmp_path / "ohlc/exchange=binance/symbol=..").mkdir()  # not a valid series: skipped
    (tmp_path / "ohlc/exchange=binance/symbol=SOL-USDT/span=1d").mkdir(parents=True)  # empty
    assert list_series(tmp_path) == [
        SeriesKey("ohlc", "binance", "BTC-USDT", "1M"),
        KEY,
        TRADES,
    ]
    assert list_series(tmp_path / "nowhere") == []


def test_verify_series_names_contract_violations(tmp_path: Path) -> None:
    write(
        tmp_path, KEY, Chunk(T0, T0 + 3 * HOUR_NS, bar_table([T0, T0 + HOUR_NS, T0 + 2 * HOUR_NS]))
    )
    assert verify_series(tmp_path, KEY) == []
    series = KEY.dir(tmp_path)
    # A file written by someone else: unsorted, a duplicate, a row of another month, no metadata.
    bad = bar_table([T0 + 5 * HOUR_NS, T0 + 4 * HOUR_NS, T0 + 4 * HOUR_NS, T0 + DAY_NS + HOUR_NS])
    pq.write_table(bad, series / "2024-01.parquet")
    (series / "notes.txt").write_text("hello")
    (series / "_coverage.json").write_text("{broken")
    problems = verify_series(tmp_path, KEY)
    text = "\n".join(problems)
    assert "notes.txt: not a data file" in text
    assert "coverage ledger" in text and "damaged" in text
    assert "2024-01.parquet: metadata dccd.exchange is missing" in text
    assert "1 rows lie outside the file's period" in text
    assert "not sorted by ts" in text
    assert "1 rows repeat a ts" in text

    assert verify_series(tmp_path, SeriesKey("ohlc", "binance", "ETH-USDT", "1h"))[0].endswith(
        "no such series directory"
    )


def test_verify_series_checks_schema_and_metadata_values(tmp_path: Path) -> None:
    write(tmp_path, TRADES, Chunk(T0, T0 + 1, trades_table([T0], ["1"], [1.0], [1.0], ["buy"])))
    path = TRADES.dir(tmp_path) / "2024-01-31.parquet"
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"dccd.symbol"] = b"BTC-USDT"
    pq.write_table(table.replace_schema_metadata(meta), path)
    assert verify_series(tmp_path, TRADES) == [
        "2024-01-31.parquet: metadata dccd.symbol is 'BTC-USDT', expected 'ETH-USDT'"
    ]
    pq.write_table(pa.table({"ts": [1], "price": [1.0]}), path)
    assert "schema differs" in verify_series(tmp_path, TRADES)[0]


def test_verify_series_notices_a_ledger_of_another_series(tmp_path: Path) -> None:
    write(tmp_path, KEY, FailedRange(T0, T0 + 1, "x"))
    other = SeriesKey("ohlc", "binance", "BTC-USDT", "4h")
    other.dir(tmp_path).mkdir(parents=True)
    (other.dir(tmp_path) / "_coverage.json").write_bytes(
        (KEY.dir(tmp_path) / "_coverage.json").read_bytes()
    )
    assert verify_series(tmp_path, other) == [
        "_coverage.json: records the series ohlc binance BTC-USDT 1h, not ohlc binance BTC-USDT 4h"
    ]
