"""schema helpers: the vectorised order check every page goes through."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from dccd_cli.schema import is_sorted, ohlc_table, trades_table, ts_ns_column


def page(ts: list[int], ids: list[str | None]) -> pa.Table:
    n = len(ts)
    return pa.table({"ts": pa.array(ts, pa.int64()), "id": pa.array(ids, pa.string()),
                     "n": pa.array([1] * n, pa.int64())})


def check(table: pa.Table, keys: list[str], *, strict: bool = False) -> bool:
    return is_sorted(table, table.column("ts").to_numpy(), keys, strict=strict)


@pytest.mark.parametrize(("ts", "ids", "ordered", "strictly"), [
    ([], [], True, True),
    ([1], ["a"], True, True),
    ([1, 2, 3], ["c", "b", "a"], True, True),  # ids only decide among equal ts
    ([1, 1, 2], ["a", "b", "a"], True, True),
    ([1, 1, 2], ["b", "a", "c"], False, False),  # out of id order within an instant
    ([1, 1, 2], ["a", "a", "c"], True, False),  # a repeated row: ordered, not strictly
    ([2, 1], ["a", "b"], False, False),
    ([1, 1, 1], ["10", "9", "99"], True, True),  # ids compare as strings, byte by byte
])
def test_is_sorted(ts: list[int], ids: list[str], ordered: bool, strictly: bool) -> None:
    t = page(ts, ids)
    assert check(t, ["ts", "id"]) is ordered
    assert check(t, ["ts", "id"], strict=True) is strictly


def test_is_sorted_with_three_keys_and_ties_on_two() -> None:
    t = page([1, 1, 1, 2], ["a", "a", "b", "a"])
    t = t.set_column(2, "n", pa.array([1, 2, 0, 0], pa.int64()))
    assert check(t, ["ts", "id", "n"], strict=True)
    assert not check(t.set_column(2, "n", pa.array([2, 1, 0, 0], pa.int64())), ["ts", "id", "n"])
    assert check(page([1, 1], ["b", "a"]), ["ts"])  # only ts asked for
    assert not check(page([1, 1], ["b", "a"]), ["ts"], strict=True)


def test_is_sorted_over_many_chunks_and_a_null_key() -> None:
    t = pa.concat_tables([page([1, 2], ["a", "a"]), page([2, 3], ["b", "a"])])
    assert t.column("id").num_chunks == 2 and check(t, ["ts", "id"], strict=True)
    assert not check(pa.concat_tables([page([1, 2], ["a", "b"]), page([2], ["a"])]), ["ts", "id"])
    assert not check(page([1, 1], ["a", None]), ["ts", "id"])  # a null is never "in order"


def test_ts_ns_column_is_a_view_of_one_chunk() -> None:
    t = trades_table([3, 4], ["1", "2"], [1.0, 1.0], [1.0, 1.0], None)
    view = ts_ns_column(t)
    assert view.type == pa.int64() and view.to_pylist() == [3, 4]
    assert view.buffers()[1].address == t.column("ts").chunk(0).buffers()[1].address
    two = pa.concat_tables([t, t])
    assert np.array_equal(ts_ns_column(two).to_numpy(), [3, 4, 3, 4])


def test_builders_read_python_lists_exactly_and_refuse_what_does_not_fit() -> None:
    t = trades_table([1, 2], [7, 8], ["1.5", "2"], [1, 2.5], ["buy", None])
    assert t.column("id").to_pylist() == ["7", "8"]  # integer ids stored as text
    assert t.column("price").to_pylist() == [1.5, 2.0] and t.column("amount").to_pylist() == [1.0, 2.5]
    bars = ohlc_table([0], [1], [True], [Decimal("0.5")], ["1e2"], [None], trades=["3"])
    assert [bars.column(c)[0].as_py() for c in ("open", "high", "low", "close", "trades")] == [
        1.0, 1.0, 0.5, 100.0, 3]
    for bad in (lambda: ohlc_table([0], [1], [1], [1], [1], [1], trades=[3.5]),  # not rounded
                lambda: trades_table([0], ["1"], ["x"], ["1"], None),
                lambda: trades_table([0], ["1"], [2**60 + 1], ["1"], None)):  # not exactly a double
        with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
            bad()
