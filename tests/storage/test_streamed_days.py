"""A new day of trades is streamed to its temporary file in row groups (bounded memory)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dccd_cli.chunk import Chunk
from dccd_cli.schema import trades_table
from dccd_cli.storage import SeriesKey, SeriesWriter, read_series
from dccd_cli.storage import writer as writer_module
from dccd_cli.storage.layout import is_temp_name

DAY = 86_400 * 10**9
T0 = 1_704_067_200 * 10**9  # 2024-01-01
KEY = SeriesKey("trades", "binance", "BTC-USDT")


def trades(ts: list[int], ids: list[str]) -> pa.Table:
    n = len(ts)
    return trades_table(ts, ids, [1.0] * n, [2.0] * n, ["buy"] * n)


@pytest.fixture(autouse=True)
def small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "STREAM_GROUP_ROWS", 10)


def writer(root: Path) -> SeriesWriter:
    return SeriesWriter(root, KEY, native_symbol="BTCUSDT", version="test")


def test_a_day_is_streamed_in_row_groups_then_renamed(tmp_path: Path) -> None:
    w = writer(tmp_path)
    for k in range(10):  # 10 chunks of 5 rows; two trades share each first instant
        ts = [T0 + k * 1000 + i // 2 * 7 for i in range(5)]
        w.add(Chunk(T0 + k * 1000, T0 + (k + 1) * 1000, trades(ts, [f"{k:02d}{i}" for i in range(5)])))
        assert w.buffered_rows < 20  # held in memory: at most a row group's worth
    temps = [p for p in KEY.dir(tmp_path).iterdir() if is_temp_name(p.name)]
    assert temps, "the day is being streamed to a temporary file"
    w.add(Chunk(T0 + 10_000, T0 + DAY, trades([], [])))
    stats = w.close()
    assert stats.rows_added == 50
    f = KEY.dir(tmp_path) / "2024-01-01.parquet"
    assert pq.ParquetFile(f).num_row_groups >= 4
    assert pq.read_schema(f).metadata[b"dccd.native_symbol"] == b"BTCUSDT"
    assert not [p for p in KEY.dir(tmp_path).iterdir() if is_temp_name(p.name)]
    table = read_series(tmp_path, KEY)
    assert table.num_rows == 50 and len(set(table.column("id").to_pylist())) == 50


def test_rows_repeated_across_a_seam_fall_back_to_a_merge(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add(Chunk(T0, T0 + 100, trades([T0 + i for i in range(20)], [f"a{i:02d}" for i in range(20)])))
    # the same trade id again at a later instant (a corrected time): caught before the rename
    w.add(Chunk(T0 + 100, T0 + 200, trades([T0 + 150], ["a19"])))
    w.add(Chunk(T0 + 200, T0 + DAY, trades([], [])))
    w.close()
    table = read_series(tmp_path, KEY)
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 20  # unique on id: the newer fetch of a19 won
    assert table.column("ts").cast(pa.int64()).to_pylist()[-1] == T0 + 150
    assert not [p for p in KEY.dir(tmp_path).iterdir() if is_temp_name(p.name)]


def test_abort_removes_the_streamed_file_and_records_nothing_for_it(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add(Chunk(T0, T0 + 100, trades([T0 + i for i in range(30)], [f"{i:02d}" for i in range(30)])))
    w.abort()
    d = KEY.dir(tmp_path)
    assert not list(d.glob("*.parquet"))
    assert not [p for p in d.iterdir() if is_temp_name(p.name)]


def test_an_existing_day_is_merged_and_newer_rows_win(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add(Chunk(T0, T0 + DAY, trades([T0 + i for i in range(15)], [f"{i:02d}" for i in range(15)])))
    w.close()
    w = writer(tmp_path)
    w.add(Chunk(T0, T0 + DAY, trades([T0 + i for i in range(10, 25)], [f"{i:02d}" for i in range(10, 25)])))
    stats = w.close()
    assert stats.rows_added == 10
    assert read_series(tmp_path, KEY).column("id").to_pylist() == [f"{i:02d}" for i in range(25)]
