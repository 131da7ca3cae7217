"""The order of trades within an instant (dccd_cli.tradeorder) against plain Python sorts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from dccd_cli.tradeorder import in_trade_order, integer_ids, trade_order


def test_ids_are_integers_only_when_every_one_is() -> None:
    got = integer_ids(pa.chunked_array([["1", "-2"], ["07", "1000000"]]))
    assert got is not None and got.tolist() == [1, -2, 7, 1_000_000]
    assert integer_ids(pa.array([], pa.string())) is not None
    for ids in (["cb96e6d2-0bc9-d921-dafe-f96857773931"], ["1", "2x"], ["+1"], ["1", " 2"],
                ["9223372036854775808"]):  # a UUID, text after digits, past int64
        assert integer_ids(pa.array(ids)) is None, ids


_rows = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=12)


@given(rows=_rows, numeric=st.booleans())
def test_trade_order_is_a_stable_sort_by_ts_then_integer_id(
    rows: list[tuple[int, int]], numeric: bool
) -> None:
    ts = np.array([t for t, _ in rows], np.int64)
    nums = np.array([i for _, i in rows], np.int64) if numeric else None
    key = (lambda k: rows[k]) if numeric else (lambda k: rows[k][0])
    want = sorted(range(len(rows)), key=key)  # Python's sort is stable too
    assert trade_order(ts, nums).tolist() == want
    assert in_trade_order(ts, nums) == (want == list(range(len(rows))))
    strictly = all(key(k) < key(k + 1) for k in range(len(rows) - 1))
    if numeric:
        assert in_trade_order(ts, nums, strict=True) == strictly
