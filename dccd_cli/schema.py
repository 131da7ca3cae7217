"""The data contract: column schemas of the OHLC and trades datasets, and table builders.

Adapters hand the core ``pyarrow.Table`` pages in exactly these schemas. Builders accept
column sequences as the exchange sent them (numbers or decimal strings) and convert them in
C (``pyarrow.compute.cast``), so no Python object is made per cell after JSON parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import ProtocolError
from dccd_cli.timeutil import DAY_NS, Span, format_ns

TS_TYPE = pa.timestamp("ns", tz="UTC")

OHLC_SCHEMA = pa.schema(
    [
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64(), nullable=False),
        pa.field("quote_volume", pa.float64()),
        pa.field("vwap", pa.float64()),
        pa.field("trades", pa.int64()),
    ]
)

TRADES_SCHEMA = pa.schema(
    [
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("amount", pa.float64(), nullable=False),
        pa.field("side", pa.string()),
    ]
)


def _to_arrow(values: Sequence[Any] | pa.Array, target: pa.DataType, *, exact: bool) -> pa.Array:
    """``values`` as Arrow, typed up front where that cannot change a value: pyarrow's type
    inference costs ~40 µs a call (it tries an import each time) plus a look at every
    element. Strings (decimal text) are read as strings; numbers straight as ``target``
    when the conversion is ``exact`` — pyarrow refuses, never rounds, a lossy double — and
    anything else (a lossy value, Decimals, ints for an int column) by pyarrow's inference,
    so the cast below still refuses what does not fit."""
    if isinstance(values, pa.Array):
        return values
    first = next((v for v in values if v is not None), None)
    typed = pa.string() if isinstance(first, str) else target if exact else None
    if typed is not None:
        try:
            return pa.array(values, typed)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.array(values)


def _floats(values: Sequence[Any] | pa.Array | None, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, pa.float64())
    arr = _to_arrow(values, pa.float64(), exact=True)
    return arr if arr.type == pa.float64() else pc.cast(arr, pa.float64())


def _ints(values: Sequence[Any] | pa.Array | None, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, pa.int64())
    # not exact: pyarrow would truncate 3.5 to 3 where the cast refuses it
    arr = _to_arrow(values, pa.int64(), exact=False)
    return arr if arr.type == pa.int64() else pc.cast(arr, pa.int64())


def _timestamps(ts_ns: Sequence[int] | pa.Array) -> pa.Array:
    arr = ts_ns if isinstance(ts_ns, pa.Array) else pa.array(ts_ns, pa.int64())
    if arr.type != pa.int64():
        arr = pc.cast(arr, pa.int64())
    return arr.view(TS_TYPE)


def ohlc_table(
    ts_ns: Sequence[int] | pa.Array,
    open: Sequence[Any] | pa.Array,
    high: Sequence[Any] | pa.Array,
    low: Sequence[Any] | pa.Array,
    close: Sequence[Any] | pa.Array,
    volume: Sequence[Any] | pa.Array,
    *,
    quote_volume: Sequence[Any] | pa.Array | None = None,
    vwap: Sequence[Any] | pa.Array | None = None,
    trades: Sequence[Any] | pa.Array | None = None,
) -> pa.Table:
    """A page of bars in ``OHLC_SCHEMA``. ``ts_ns`` is the bar's open time in ns."""
    n = len(ts_ns)
    return pa.Table.from_arrays(
        [
            _timestamps(ts_ns),
            _floats(open, n),
            _floats(high, n),
            _floats(low, n),
            _floats(close, n),
            _floats(volume, n),
            _floats(quote_volume, n),
            _floats(vwap, n),
            _ints(trades, n),
        ],
        schema=OHLC_SCHEMA,
    )


def trades_table(
    ts_ns: Sequence[int] | pa.Array,
    id: Sequence[Any] | pa.Array,
    price: Sequence[Any] | pa.Array,
    amount: Sequence[Any] | pa.Array,
    side: Sequence[str | None] | pa.Array | None,
) -> pa.Table:
    """A page of trades in ``TRADES_SCHEMA``. ``side`` is the taker side: "buy"/"sell"/None."""
    n = len(ts_ns)
    ids = _to_arrow(id, pa.string(), exact=False)
    if ids.type != pa.string():
        ids = pc.cast(ids, pa.string())
    sides = pa.nulls(n, pa.string()) if side is None else (
        side if isinstance(side, pa.Array) else pa.array(side, pa.string())
    )
    return pa.Table.from_arrays(
        [_timestamps(ts_ns), ids, _floats(price, n), _floats(amount, n), sides],
        schema=TRADES_SCHEMA,
    )


def empty_ohlc() -> pa.Table:
    return OHLC_SCHEMA.empty_table()


def empty_trades() -> pa.Table:
    return TRADES_SCHEMA.empty_table()


def ts_ns_column(table: pa.Table) -> pa.Array:
    """The ``ts`` column as int64 ns (a zero-copy view when it is one chunk)."""
    return single_chunk(table.column("ts")).view(pa.int64())


def single_chunk(col: pa.ChunkedArray) -> pa.Array:
    """``col`` as one array: its only chunk as it is (no copy), else the chunks combined."""
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _neighbours(col: pa.ChunkedArray, op: str) -> np.ndarray[Any, Any]:
    """``op(col[i], col[i + 1])`` for every row but the last, as numpy booleans: one
    vectorised comparison of the column with itself shifted by a row (zero-copy slices),
    cheaper per page than gathering the tied rows first. Nulls compare as False."""
    arr = single_chunk(col)
    out = getattr(pc, op)(arr.slice(0, len(arr) - 1), arr.slice(1))
    if out.null_count:
        out = pc.fill_null(out, False)
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype=bool)


def is_sorted(
    table: pa.Table, ts: np.ndarray[Any, Any], keys: list[str], *, strict: bool = False
) -> bool:
    """Whether rows are already ordered by ``ts`` then the other ``keys`` (vectorised);
    with ``strict``, also that no two rows are equal on all ``keys`` (no repeats).

    Sorting a page by a string column costs more than parsing it; most pages arrive in
    order (or exactly reversed, which a newest-first exchange's caller flips cheaply).
    """
    if len(ts) < 2:
        return True
    step = np.diff(ts)
    if step.min() < 0:
        return False
    tied = step == 0  # rows equal on every key compared so far, with their successor
    for i, key in enumerate(keys[1:], 2):
        if not tied.any():
            return True
        col = table.column(key)
        if i == len(keys):  # the last key: one comparison says it all
            return not (tied & ~_neighbours(col, "less" if strict else "less_equal")).any()
        if (tied & _neighbours(col, "greater")).any():
            return False
        tied &= _neighbours(col, "equal")
    return not (strict and tied.any())


def require_on_span_grid(ts_ns: pa.Array, span: Span, *, exchange: str, what: str) -> None:
    """Refuse bars that do not open where dccd's bars of ``span`` open (weeks on Monday
    00:00 UTC, months on the 1st, other multi-day spans counted from the epoch) rather than
    store an exchange's differently aligned bars under our span's name. Intraday and daily
    spans cannot disagree, so only the longer ones are checked."""
    if not (span.unit in ("w", "M") or span.nominal_ns > DAY_NS):
        return
    for t in ts_ns.to_pylist():
        if span.floor(t) != t:
            raise ProtocolError(
                f"{what}: a {span} bar opens at {format_ns(t)}, off dccd's {span} grid "
                f"(weeks open on Monday 00:00 UTC, multi-day spans count from the epoch); "
                "not stored — fetch 1d bars and aggregate them instead", exchange=exchange)
