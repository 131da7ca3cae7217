"""A new day of trades is streamed to its temporary file in row groups (bounded memory)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dccd_cli.pieces import Chunk
from dccd_cli.schema import trades_table
from dccd_cli.storage import Ledger, SeriesKey, SeriesWriter, read_series, verify_series
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


def test_abort_keeps_the_streamed_rows_and_records_them(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add(Chunk(T0, T0 + 100, trades([T0 + i for i in range(30)], [f"{i:02d}" for i in range(30)])))
    w.abort()  # an interrupt mid-day: the part of the day received is kept
    d = KEY.dir(tmp_path)
    assert [p.name for p in d.glob("*.parquet")] == ["2024-01-01.parquet"]
    assert not [p for p in d.iterdir() if is_temp_name(p.name)]
    assert Ledger.load(d).fetched == [(T0, T0 + 100)]
    assert read_series(tmp_path, KEY).num_rows == 30
    # The next run continues the day as a stream: the stored row groups are copied.
    w = writer(tmp_path)
    w.add(Chunk(T0 + 100, T0 + DAY, trades([T0 + 100 + i for i in range(25)],
                                            [f"{i}" for i in range(30, 55)])))
    assert w.close().rows_added == 25
    assert read_series(tmp_path, KEY).column("id").to_pylist() == [
        f"{i:02d}" for i in range(30)] + [f"{i}" for i in range(30, 55)]
    assert Ledger.load(d).fetched == [(T0, T0 + DAY)]
    assert verify_series(tmp_path, KEY) == []


def test_a_day_is_committed_every_few_seconds_and_carries_on_streaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [0.0]
    monkeypatch.setattr(writer_module.time, "monotonic", lambda: clock[0])
    w = writer(tmp_path)
    d = KEY.dir(tmp_path)
    for k in range(12):  # a chunk of 5 rows every 2 s
        ts = [T0 + k * 1000 + i for i in range(5)]
        w.add(Chunk(T0 + k * 1000, T0 + (k + 1) * 1000, trades(ts, [f"{k:02d}{i}" for i in range(5)])))
        if k == 3:  # 6 s in: the first commit came with this chunk
            assert Ledger.load(d).fetched == [(T0, T0 + 4000)]
            assert pq.read_metadata(d / "2024-01-01.parquet").num_rows == 20
        clock[0] += 2.0
        assert w.buffered_rows < 20  # memory stays bounded across commits
    # What a SIGKILL now would leave: the day up to the last commit (at 18 s), recorded.
    assert Ledger.load(d).fetched == [(T0, T0 + 10_000)]
    assert pq.read_metadata(d / "2024-01-01.parquet").num_rows == 50
    assert verify_series(tmp_path, KEY) == []
    w.add(Chunk(T0 + 12_000, T0 + DAY, trades([], [])))
    assert w.close().rows_added == 60
    table = read_series(tmp_path, KEY)
    assert table.num_rows == 60 and len(set(table.column("id").to_pylist())) == 60
    assert Ledger.load(d).files["2024-01-01.parquet"].rows == 60
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


# -- the order and uniqueness checks run once per row group, not per page ----------------


def stored(root: Path) -> list[tuple[int, str]]:
    table = read_series(root, KEY)
    return list(zip(table.column("ts").cast(pa.int64()).to_pylist(), table.column("id").to_pylist()))


def row_groups(root: Path) -> list[int]:
    meta = pq.ParquetFile(KEY.dir(root) / "2024-01-01.parquet").metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


@pytest.mark.parametrize("group_rows", [10, 1000])  # the seam between or inside a row group
def test_a_row_repeated_in_the_next_page_is_stored_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_rows: int
) -> None:
    monkeypatch.setattr(writer_module, "STREAM_GROUP_ROWS", group_rows)
    w = writer(tmp_path)
    w.add(Chunk(T0, T0 + 100, trades([T0 + i for i in range(10)], [f"{i:02d}" for i in range(10)])))
    # a page that repeats a trade of its own instant (an exchange resuming *at* a time)
    w.add(Chunk(T0 + 100, T0 + 200, trades([T0 + 100, T0 + 100, T0 + 101], ["10", "10", "11"])))
    w.add(Chunk(T0 + 200, T0 + DAY, trades([], [])))
    assert w.close().rows_added == 12
    assert stored(tmp_path) == [(T0 + i + 90 * (i >= 10), f"{i:02d}") for i in range(12)]


@pytest.mark.parametrize("group_rows", [3, 1000])
def test_trades_of_one_instant_out_of_id_order_are_sorted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_rows: int
) -> None:
    monkeypatch.setattr(writer_module, "STREAM_GROUP_ROWS", group_rows)
    w = writer(tmp_path)
    w.add(Chunk(T0, T0 + 100, trades([T0 + 1, T0 + 2, T0 + 3], ["1", "2", "3"])))
    # sorted by ts, but not by id within the instant T0 + 150
    w.add(Chunk(T0 + 100, T0 + 200, trades([T0 + 150, T0 + 150, T0 + 150], ["6", "4", "5"])))
    w.add(Chunk(T0 + 200, T0 + DAY, trades([T0 + 300], ["7"])))
    assert w.close().rows_added == 7
    assert stored(tmp_path) == [(T0 + 1, "1"), (T0 + 2, "2"), (T0 + 3, "3"), (T0 + 150, "4"),
                                (T0 + 150, "5"), (T0 + 150, "6"), (T0 + 300, "7")]


def test_a_numeric_id_repeated_at_a_later_instant_is_caught_when_the_day_ends(tmp_path: Path) -> None:
    w = writer(tmp_path)  # ids not rising (5 after 7): proven unique by sorting them
    w.add(Chunk(T0, T0 + 100, trades([T0 + i for i in range(12)], ["7", *map(str, range(11))])))
    w.add(Chunk(T0 + 100, T0 + 200, trades([T0 + 150], ["3"])))
    w.add(Chunk(T0 + 200, T0 + DAY, trades([], [])))
    assert w.close().rows_added == 11
    got = stored(tmp_path)
    assert len(got) == 11 and (T0 + 150, "3") in got and (T0 + 4, "3") not in got


def test_streamed_row_groups_are_full_and_keys_are_not_dictionary_encoded(tmp_path: Path) -> None:
    w = writer(tmp_path)
    for k in range(9):  # pages of 7 rows: a group is written once 10 rows or more are staged
        ts = [T0 + k * 100 + i for i in range(7)]
        w.add(Chunk(T0 + k * 100, T0 + (k + 1) * 100, trades(ts, [f"{k}{i}" for i in range(7)])))
    w.add(Chunk(T0 + 900, T0 + DAY, trades([], [])))
    w.close()
    groups = row_groups(tmp_path)
    assert sum(groups) == 63 and all(n >= 10 for n in groups[:-1]), groups
    meta = pq.ParquetFile(KEY.dir(tmp_path) / "2024-01-01.parquet").metadata
    encodings = {meta.schema.column(i).name: meta.row_group(0).column(i).encodings for i in range(5)}
    assert "RLE_DICTIONARY" not in encodings["ts"] and "RLE_DICTIONARY" not in encodings["id"]
    assert "RLE_DICTIONARY" in encodings["side"]


_page_rows = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 14)), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(pages=st.lists(_page_rows, min_size=1, max_size=8), numeric=st.booleans(),
       group_rows=st.sampled_from([1, 4, 10, 1000]))
def test_streamed_days_match_a_dict_model(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
    pages: list[list[tuple[int, int]]], numeric: bool, group_rows: int,
) -> None:
    """Pages of (instant, id) rows, in any order inside a page, repeated within a page or
    seen again at a later instant: stored unique on id (the newest wins), in trade order —
    within an instant integer ids (of one and two digits) by number, other ids as they came."""
    monkeypatch.setattr(writer_module, "STREAM_GROUP_ROWS", group_rows)
    root = tmp_path_factory.mktemp("streamed")
    name = str if numeric else (lambda i: f"t{i}")
    model: dict[str, tuple[int, int]] = {}  # id -> (instant, arrival of its newest row)
    arrival = 0
    w = writer(root)
    for k, rows in enumerate(pages):
        at = {i: T0 + k * 10 + t for t, i in rows}  # one instant per id within a page
        ts = [at[i] for _, i in rows]
        w.add(Chunk(T0 + k * 10, T0 + (k + 1) * 10, trades(ts, [name(i) for _, i in rows])))
        for _, i in rows:
            model[name(i)] = (at[i], arrival)
            arrival += 1
    w.add(Chunk(T0 + len(pages) * 10, T0 + DAY, trades([], [])))
    assert w.close().rows_added == len(model)
    within = (lambda i: int(i)) if numeric else (lambda i: model[i][1])
    expected = sorted(((t, i) for i, (t, _) in model.items()), key=lambda r: (r[0], within(r[1])))
    assert (stored(root) if model else []) == expected
    assert not [p for p in KEY.dir(root).iterdir() if is_temp_name(p.name)]
