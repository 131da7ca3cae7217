"""Column formatting of the emulator equals the one-cell-at-a-time formatting exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dccd_cli.emulator.instruments import (
    E8,
    format_e8,
    format_e8_column,
    quote_e8,
    quote_e8_column,
)

VALUES = st.lists(st.integers(min_value=-(2**62) + 1, max_value=2**62 - 1), max_size=50)


@given(VALUES)
def test_format_e8_column_equals_format_e8(values: list[int]) -> None:
    column = np.array(values, dtype=np.int64)
    assert format_e8_column(column) == [format_e8(v) for v in values]


def test_format_e8_column_edge_values() -> None:
    values = [0, 1, -1, E8 - 1, E8, -E8, 123_456_789_012, 2**62 + 5]
    column = np.array(values, dtype=np.int64)  # the last one takes the exact Python path
    assert format_e8_column(column) == [format_e8(v) for v in values]
    assert format_e8_column(np.array([], dtype=np.int64)) == []


@given(st.lists(st.integers(min_value=0, max_value=2**55), max_size=30),
       st.sampled_from([(1_000_000, 1_000), (1, 1_000), (1_000_000, 100_000), (3, 7)]))
def test_quote_e8_column_equals_quote_e8(ticklots: list[int], increments: tuple[int, int]) -> None:
    tick, lot = increments  # (3, 7): finer than 1e-8, rounded half-even cell by cell
    column = np.array(ticklots, dtype=np.int64)
    assert quote_e8_column(column, tick, lot) == [format_e8(quote_e8(q, tick, lot)) for q in ticklots]
