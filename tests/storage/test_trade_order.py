"""Trades sharing an instant are stored in execution order (dccd_cli.tradeorder): integer
ids by number across a change of digit count, other ids as the exchange listed them —
in a fresh day, a streamed day, a merge into a stored day and a re-fetch."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dccd_cli.pieces import Chunk
from dccd_cli.schema import trades_table
from dccd_cli.storage import SeriesKey, SeriesWriter, read_series, verify_series
from dccd_cli.storage import writer as writer_module
from dccd_cli.timeutil import DAY_NS

T0 = 1_704_067_200 * 10**9  # 2024-01-01
KEY = SeriesKey("trades", "binance", "BTC-USDT")
ACROSS = ["999998", "999999", "1000000", "1000001"]  # execution order; text order differs
UUIDS = [str(uuid.UUID(int=(7919 * k) << 96 | k)) for k in (9, 2, 7, 4)]  # as listed
assert sorted(UUIDS) != UUIDS and sorted(ACROSS) != ACROSS


def trades(ts: list[int], ids: list[str], price: float = 1.0) -> pa.Table:
    n = len(ts)
    return trades_table(ts, ids, [price] * n, [2.0] * n, ["buy"] * n)


def store(root: Path, *chunks: Chunk) -> None:
    with SeriesWriter(root, KEY, native_symbol="X", version="test") as w:
        for c in chunks:
            w.add(c)


def stored(root: Path) -> list[tuple[int, str, float]]:
    t = read_series(root, KEY)
    return list(zip(t.column("ts").cast(pa.int64()).to_pylist(), t.column("id").to_pylist(),
                    t.column("price").to_pylist()))


@pytest.fixture(params=[2, 1000], ids=["row-groups-of-2", "one-row-group"])
def group_rows(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Streamed days written two rows a row group (the seam falls inside the instant) or
    in one group."""
    monkeypatch.setattr(writer_module, "STREAM_GROUP_ROWS", request.param)
    return int(request.param)


@pytest.mark.parametrize("ids", [ACROSS, UUIDS], ids=["integer", "uuid"])
def test_a_fresh_day_keeps_one_instants_trades_in_execution_order(
    tmp_path: Path, group_rows: int, ids: list[str]
) -> None:
    store(tmp_path, Chunk(T0, T0 + DAY_NS, trades([T0 + 5] * 4, ids)))
    assert [i for _, i, _ in stored(tmp_path)] == ids
    assert verify_series(tmp_path, KEY) == []


def test_integer_ids_are_ordered_by_number_whatever_order_they_came_in(
    tmp_path: Path, group_rows: int
) -> None:
    # one page out of order in time, one in order in time but not within its instant
    store(tmp_path, Chunk(T0, T0 + 10, trades([T0 + 5, T0 + 1, T0 + 5], ["1000000", "7", "999998"])),
          Chunk(T0 + 10, T0 + DAY_NS, trades([T0 + 10, T0 + 10], ["1000001", "999999"])))
    assert [i for _, i, _ in stored(tmp_path)] == ["7", "999998", "1000000", "999999", "1000001"]
    assert verify_series(tmp_path, KEY) == []


@pytest.mark.parametrize("ids", [ACROSS, UUIDS], ids=["integer", "uuid"])
def test_a_resumed_day_merges_in_execution_order(tmp_path: Path, ids: list[str]) -> None:
    """The day's file holds the first two trades of an instant; a later run (a resumed
    day, or a sync) brings the rest of it, and a third run re-fetches it whole."""
    store(tmp_path, Chunk(T0, T0 + 6, trades([T0 + 1, T0 + 5, T0 + 5], ["1", *ids[:2]])))
    store(tmp_path, Chunk(T0 + 5, T0 + DAY_NS, trades([T0 + 5, T0 + 5, T0 + 9], [*ids[2:], "2"])))
    assert [i for _, i, _ in stored(tmp_path)] == ["1", *ids, "2"]
    # The re-fetch corrects a price: the newer row wins, in its place.
    store(tmp_path, Chunk(T0, T0 + DAY_NS, trades([T0 + 1] + [T0 + 5] * 4 + [T0 + 9], ["1", *ids, "2"],
                                                  price=3.0)))
    assert stored(tmp_path) == [(T0 + 1, "1", 3.0)] + [(T0 + 5, i, 3.0) for i in ids] + [(T0 + 9, "2", 3.0)]
    assert verify_series(tmp_path, KEY) == []


def test_integer_ids_across_a_day_boundary_stay_in_order(tmp_path: Path, group_rows: int) -> None:
    end = T0 + DAY_NS  # the digit changes inside the first day's last instant
    ids = ["999999", "1000000", "1000001", "1000002"]
    store(tmp_path, Chunk(end - 10, end + 10, trades([end - 1, end - 1, end, end], ids)))
    # and the first day again, merged into its file: the two days stay whole and apart
    store(tmp_path, Chunk(end - 10, end, trades([end - 1, end - 1], ids[:2], price=4.0)))
    assert stored(tmp_path) == [(end - 1, "999999", 4.0), (end - 1, "1000000", 4.0),
                                (end, "1000001", 1.0), (end, "1000002", 1.0)]
    assert sorted(p.name for p in KEY.dir(tmp_path).glob("*.parquet")) == [
        "2024-01-01.parquet", "2024-01-02.parquet"]
    assert verify_series(tmp_path, KEY) == []


def test_files_declare_only_ts_as_their_sort_order(tmp_path: Path) -> None:
    store(tmp_path, Chunk(T0, T0 + DAY_NS, trades([T0 + 5] * 4, ACROSS)))
    meta = pq.ParquetFile(KEY.dir(tmp_path) / "2024-01-01.parquet").metadata.row_group(0)
    assert [(c.column_index, c.descending) for c in meta.sorting_columns] == [(0, False)]


def write_raw(root: Path, ts: list[int], ids: list[str]) -> None:
    """A data file written as it is, bypassing the writer (an older dccd's, or damaged)."""
    store(root, Chunk(T0, T0 + DAY_NS, trades([T0], ["0"])))
    path = KEY.dir(root) / "2024-01-01.parquet"
    meta = pq.read_schema(path).metadata
    pq.write_table(trades(ts, ids).replace_schema_metadata(meta), path)


def order_problems(root: Path) -> list[str]:
    """What verify says of the row order (it also notices the file differs from what the
    ledger recorded of it)."""
    return [p for p in verify_series(root, KEY) if "sorted" in p]


def test_verify_wants_integer_ids_by_number_within_an_instant(tmp_path: Path) -> None:
    write_raw(tmp_path, [T0 + 5] * 4, sorted(ACROSS))  # by (ts, id) as text: 1000000 first
    assert order_problems(tmp_path) == [
        "2024-01-01.parquet: rows are not sorted by ts, then id as an integer"]
    write_raw(tmp_path, [T0 + 5] * 4, ACROSS)
    assert order_problems(tmp_path) == []


def test_verify_takes_other_ids_in_the_exchanges_order_but_wants_ts_sorted(tmp_path: Path) -> None:
    write_raw(tmp_path, [T0 + 5] * 4, UUIDS)
    assert order_problems(tmp_path) == []
    write_raw(tmp_path, [T0 + 5, T0 + 6, T0 + 5, T0 + 6], UUIDS)
    assert order_problems(tmp_path) == ["2024-01-01.parquet: rows are not sorted by ts"]
