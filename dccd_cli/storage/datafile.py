"""A series' data files: their Parquet settings, reading one back in the series' schema,
writing one atomically, and merging new rows into stored ones. Shared by the writer and
the reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dccd_cli.errors import StorageError
from dccd_cli.schema import ts_ns_column
from dccd_cli.storage.atomic import atomic_write, storage_error
from dccd_cli.storage.layout import SeriesKey
from dccd_cli.tradeorder import in_trade_order, integer_ids, trade_order

# Large row groups: readers scan whole files, and per-group overhead (statistics, pages)
# is negligible at this size. A month of 1m bars (44,640 rows) is one group.
ROW_GROUP_ROWS = 1 << 20
COMPRESSION = "zstd"
# Columns never dictionary-encoded: the key columns (ts, a trade's id) are near-unique, so
# a dictionary only costs CPU until the writer falls back to plain pages. The others
# (side, prices, amounts) repeat and shrink with one. Either way any reader reads them.
_NO_DICTIONARY = ("ts", "id")
# ts is written DELTA_BINARY_PACKED: sorted timestamps differ little from row to row, so
# the deltas pack into a few bits (a bar grid into almost nothing) before zstd. Measured on
# a day of trades (1.02 M rows): files 9.29 -> 7.22 MB, writing 0.126 -> 0.118 µs a row,
# reading ~7% less CPU. A standard Parquet encoding that pyarrow/pandas, Polars, DuckDB and
# Spark >= 3.3 read (Spark 3.0-3.2 only with spark.sql.parquet.enableVectorizedReader=false).
# Not taken: BYTE_STREAM_SPLIT on price/amount (files +50-80%), zstd level 3 (+15% CPU),
# lz4/snappy (files +50%); page and batch sizes made no difference.
_COLUMN_ENCODING = {"ts": "DELTA_BINARY_PACKED"}  # needs ts in _NO_DICTIONARY
# No statistics on side: "buy" and "sell" are in every row group, so its min/max never
# lets a reader skip one, and string statistics cost ~0.008 µs a row.
_NO_STATISTICS = ("side",)


def conform(table: pa.Table, key: SeriesKey, what: str = "chunk") -> pa.Table:
    """``table`` in exactly ``key.schema`` (no metadata); ``ValueError`` if it is not one.

    Column names and types must match: a page in another unit or layout is an adapter bug
    that must not be papered over by a cast. Nullability is enforced here (null ts or id).
    """
    schema = key.schema
    got = table.schema
    if got.names != schema.names or any(a.type != b.type for a, b in zip(got, schema)):
        raise ValueError(f"a {key.kind} {what} must have the schema\n{schema}\nnot\n{got}")
    if not got.equals(schema, check_metadata=False):
        try:
            table = table.cast(schema)  # only nullability differs; the cast checks for nulls
        except (ValueError, pa.ArrowInvalid) as exc:
            raise ValueError(f"a {key.kind} {what} breaks its schema: {exc}") from exc
    # A table built with a non-nullable schema is not checked for nulls by pyarrow.
    for name in (key.key_column, "ts"):
        if table.column(name).null_count:
            raise ValueError(f"a {key.kind} {what} has null values in its {name!r} column")
    return table.replace_schema_metadata(None)


def read_data_file(path: Path, key: SeriesKey) -> pa.Table | None:
    """The rows of one data file in ``key.schema``, or None if there is no such file.

    An unreadable file raises ``StorageError`` and is left as it is: merging would
    otherwise replace it and lose its rows.
    """
    try:
        with pq.ParquetFile(str(path)) as pf:
            table = pf.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error("read", path, exc) from exc
    except pa.ArrowException as exc:  # not Parquet, truncated, corrupt
        raise StorageError(
            f"the existing file {path} cannot be read ({exc}); it was left as it is — "
            "move it away to download that period again"
        ) from exc
    try:
        return conform(table, key, what="file")
    except ValueError as exc:
        raise StorageError(f"the existing file {path} was left as it is: {exc}") from exc


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """The Parquet writer settings of every data file of a series of ``schema``."""
    names = schema.names
    return {
        "compression": COMPRESSION,
        "use_dictionary": [n for n in names if n not in _NO_DICTIONARY],
        "column_encoding": {n: e for n, e in _COLUMN_ENCODING.items() if n in names},
        "write_statistics": [n for n in names if n not in _NO_STATISTICS],
        # Declares the sort order in the footer; engines may skip a sort on read. Only ts:
        # trades sharing one are in execution order, which no column's text order states
        # (ids compare as numbers, or have no order at all: dccd_cli.tradeorder).
        "sorting_columns": [pq.SortingColumn(0)],
    }


def write_data_file(path: Path, table: pa.Table, metadata: dict[str, str]) -> int:
    """Write ``table`` (sorted, unique) to ``path`` atomically; returns the file's size."""
    table = table.replace_schema_metadata(metadata)

    def write(tmp: Path) -> None:
        pq.write_table(table, str(tmp), row_group_size=ROW_GROUP_ROWS,
                       **parquet_options(table.schema))

    return atomic_write(path, write)


def _last_per_key(codes: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Indices of the last occurrence of each distinct code, ordered by code."""
    order = np.argsort(codes, kind="stable")  # stable: equal codes keep arrival order
    ordered = codes[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = ordered[1:] != ordered[:-1]
    return order[last].astype(np.int64)


def merge_rows(key: SeriesKey, existing: pa.Table | None, new: pa.Table) -> tuple[pa.Table, int]:
    """Union of ``existing`` and ``new`` rows, unique on the key column, in order (trades:
    in trade order, ``dccd_cli.tradeorder``).

    On a key conflict the row from ``new`` wins (and among ``new`` rows, the later one),
    and takes its place: trades without integer ids that share a timestamp keep the order
    of the newest fetch, after any stored ones it did not return.
    Returns the merged table and how many of its rows came from ``new``.
    """
    n_old = 0 if existing is None else existing.num_rows
    combined = new if n_old == 0 or existing is None else pa.concat_tables([existing, new])
    n = combined.num_rows
    if n == 0:
        return combined, 0
    ts = ts_ns_column(combined).to_numpy()
    if key.kind == "ohlc":
        keep = _last_per_key(ts)  # already in ts order
    else:
        nums = integer_ids(combined.column("id"))
        if nums is not None:
            # Distinct numbers are distinct strings: no hashing of a day's ids.
            if in_trade_order(ts, nums, strict=True) and all_distinct(nums):
                # The common case — a new day, or rows after the stored ones: nothing to
                # merge, and no copy either (a day of trades is tens of MB).
                return combined, n - n_old
            codes = combined.column("id").combine_chunks().dictionary_encode().indices
        else:
            encoded = combined.column("id").combine_chunks().dictionary_encode()
            if len(encoded.dictionary) == n and in_trade_order(ts, None):
                return combined, n - n_old
            codes = encoded.indices
        # The newest row of each id, where it arrived; then stably into trade order.
        unique = np.sort(_last_per_key(codes.to_numpy(zero_copy_only=False)))
        keep = unique[trade_order(ts[unique], None if nums is None else nums[unique])]
    from_new = int(np.count_nonzero(keep >= n_old))
    if len(keep) == n and np.array_equal(keep, np.arange(n)):
        return combined.combine_chunks(), from_new  # already sorted and unique: no copy
    return combined.take(pa.array(keep)).combine_chunks(), from_new


def all_distinct(nums: npt.NDArray[np.int64]) -> bool:
    """Whether no integer repeats: at once when they rise (exchanges number their trades),
    else by sorting a copy (8 bytes a row)."""
    if len(nums) < 2 or bool(np.all(nums[1:] > nums[:-1])):
        return True
    ordered = np.sort(nums)
    return not bool((ordered[1:] == ordered[:-1]).any())


def all_unique(ids: pa.Array) -> bool:
    """Whether no string id repeats, by sorting (a hash set of a million strings would
    cost ~60 MB more). Integer ids are checked cheaper (``all_distinct``); ids equal only
    as numbers ("07", "7") then cost a merge, never a row."""
    if len(ids) < 2:
        return True
    ordered = ids.take(pc.sort_indices(ids))
    return not pc.any(pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))).as_py()
