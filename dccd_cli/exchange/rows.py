"""Rows of a page into columns: the shape checks and unit conversions every adapter needs."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import ProtocolError
from dccd_cli.timeutil import MS, NS

__all__ = ["columns", "ms_column", "s_column"]


def columns(rows: list[Any], width: int, what: str, *, exchange: str) -> list[tuple[Any, ...]]:
    """Rows (lists) -> their first ``width`` columns; a row of another shape is a reply we
    cannot read."""
    if any(not isinstance(r, list) or len(r) < width for r in rows):
        raise ProtocolError(f"{what}: rows of fewer than {width} fields", exchange=exchange)
    return list(zip(*(r[:width] for r in rows), strict=True))


def _scaled(values: Any, unit: int) -> pa.Array:
    arr = values if isinstance(values, pa.Array) else pa.array(values)
    if not pa.types.is_integer(arr.type):
        arr = pc.cast(pc.cast(arr, pa.string()), pa.int64())  # decimal strings, in C
    return pc.multiply(pc.cast(arr, pa.int64()), unit)


def ms_column(values: Any) -> pa.Array:
    """Unix milliseconds, as integers or decimal strings -> int64 ns."""
    return _scaled(values, MS)


def s_column(values: Any) -> pa.Array:
    """Whole Unix seconds, as integers or decimal strings -> int64 ns."""
    return _scaled(values, NS)
