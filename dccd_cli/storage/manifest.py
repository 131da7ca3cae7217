"""What each data file of a series holds, as the ledger records it (its manifest).

The ledger's ``fetched`` ranges say what was asked of the exchange; the manifest says in
which file the answer lies: per file its partition's range, rows, first and last ts, first
and last trade id (when ids are integers), and its size and mtime. A file lost to a
clean-up, an rsync or a copy is then seen by a ``stat`` alone (``filecheck``), and its
range is fetched again rather than taken for a quiet market.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dccd_cli.schema import ts_ns_column
from dccd_cli.tradeorder import integer_ids


@dataclass(frozen=True)
class FileEntry:
    """One data file as the ledger records it. ``start_ns``/``end_ns`` is the partition's
    range (what the file answers for); ``ts_min``/``ts_max`` its first and last row;
    ``id_min``/``id_max`` its trade ids when they are integers, else None."""

    name: str
    start_ns: int
    end_ns: int
    rows: int
    ts_min: int | None
    ts_max: int | None
    size: int
    mtime_ns: int
    id_min: int | None = None
    id_max: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "range": [self.start_ns, self.end_ns],
                               "rows": self.rows, "ts": [self.ts_min, self.ts_max]}
        if self.id_min is not None:
            doc["id"] = [self.id_min, self.id_max]
        doc["size"] = self.size
        doc["mtime_ns"] = self.mtime_ns
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> FileEntry:
        if not isinstance(doc, dict):
            raise TypeError(f"file entry {doc!r} is not an object")
        s, e = doc["range"]
        ts_min, ts_max = doc["ts"]
        ids = doc.get("id") or [None, None]
        values = [s, e, doc["rows"], doc["size"], doc["mtime_ns"]]
        optional = [ts_min, ts_max, *ids]
        if not isinstance(doc["name"], str) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        ) or not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in optional):
            raise TypeError(f"file entry {doc!r} has a field of the wrong type")
        return cls(doc["name"], s, e, doc["rows"], ts_min, ts_max, doc["size"], doc["mtime_ns"],
                   ids[0], ids[1])

    def holds_at_least(self, other: FileEntry) -> bool:
        """Whether this file holds as many rows as ``other`` and bounds as wide."""
        if self.rows < other.rows:
            return False
        if other.ts_min is None or other.ts_max is None:
            return True
        return (self.ts_min is not None and self.ts_max is not None
                and self.ts_min <= other.ts_min and self.ts_max >= other.ts_max)


def stat_of(path: Path) -> tuple[int, int]:
    """Size and mtime (ns) of ``path``: what tells a replaced or truncated file."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def id_bounds(ids: pa.ChunkedArray | pa.Array) -> tuple[int | None, int | None]:
    """The smallest and largest trade id as integers; (None, None) when an id is not one."""
    nums = integer_ids(ids)
    if nums is None or len(nums) == 0:
        return None, None
    return int(nums.min()), int(nums.max())


def table_entry(path: Path, start_ns: int, end_ns: int, table: pa.Table) -> FileEntry:
    """The entry of the file just written at ``path`` from ``table`` (sorted by ts)."""
    size, mtime = stat_of(path)
    ts = ts_ns_column(table).to_numpy() if table.num_rows else np.empty(0, np.int64)
    lo, hi = (int(ts[0]), int(ts[-1])) if len(ts) else (None, None)
    id_lo, id_hi = id_bounds(table.column("id")) if "id" in table.column_names else (None, None)
    return FileEntry(path.name, start_ns, end_ns, table.num_rows, lo, hi, size, mtime, id_lo, id_hi)


def footer_entry(path: Path, start_ns: int, end_ns: int) -> FileEntry:
    """The entry of ``path`` from its Parquet footer alone (rows and ts statistics; no
    ids). Raises ``OSError`` or ``pyarrow.ArrowException`` for a file that cannot be read."""
    size, mtime = stat_of(path)
    meta = pq.read_metadata(str(path))
    lo: int | None = None
    hi: int | None = None
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        if not group.num_rows:
            continue
        stats = group.column(0).statistics  # ts is the first column of every series
        if stats is None or not stats.has_min_max:
            lo = hi = None
            break
        lo = stats.min_raw if lo is None else min(lo, stats.min_raw)
        hi = stats.max_raw if hi is None else max(hi, stats.max_raw)
    return FileEntry(path.name, start_ns, end_ns, meta.num_rows, lo, hi, size, mtime)
