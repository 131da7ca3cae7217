"""Reading the dataset back: one series as a table, the series present, and a contract check.

These helpers read what ``SeriesWriter`` wrote without pyarrow's dataset discovery, so
they see exactly one series' files. Users read the dataset with any Parquet engine;
``verify_series`` is what ``dccd inventory --verify`` runs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dccd_cli.errors import StorageError
from dccd_cli.schema import ts_ns_column
from dccd_cli.storage.datafile import merge_rows, read_data_file
from dccd_cli.storage.intervals import Interval, normalize
from dccd_cli.storage.layout import (
    KINDS,
    LEDGER_NAME,
    SeriesKey,
    file_metadata,
    is_current_name,
    parse_series_dir,
    partition_files,
    partition_for,
    partition_from_name,
)
from dccd_cli.storage.ledger import Ledger
from dccd_cli.storage.manifest import FileEntry, id_bounds
from dccd_cli.storage.upgrade import series_dirs
from dccd_cli.timeutil import format_ns
from dccd_cli.tradeorder import in_trade_order, integer_ids, trade_order


def read_series(
    root: Path, key: SeriesKey, start_ns: int | None = None, end_ns: int | None = None
) -> pa.Table:
    """All rows of a series with ``start_ns <= ts < end_ns`` (bounds optional), sorted.

    Holds the result in memory: meant for checks, tests and modest ranges, not for
    scanning years of trades (use ``pyarrow.dataset`` with a filter for that).
    """
    lo = start_ns if start_ns is not None else -(1 << 63)
    hi = end_ns if end_ns is not None else (1 << 63) - 1
    tables: list[pa.Table] = []
    # Files of an older layout (a month file of a day+ span, a span=1M directory) until
    # the next write folds them: read first, so that the current files' rows win.
    dirs = series_dirs(root, key)
    files = sorted(
        (d == dirs[0] and is_current_name(key, part), part, path)
        for d in dirs
        for part, path in partition_files(key.kind, d)
    )
    for _, part, path in files:
        if part.end_ns <= lo or part.start_ns >= hi:
            continue  # file names tell the range: no need to open files outside it
        table = read_data_file(path, key)
        if table is None:  # removed since listed
            continue
        if lo > part.start_ns or hi < part.end_ns:
            ts = ts_ns_column(table).to_numpy()
            table = table.filter(pa.array((ts >= lo) & (ts < hi)))
        tables.append(table)
    if not tables:
        return key.schema.empty_table()
    result = pa.concat_tables(tables).combine_chunks()
    if not all(current for current, _, _ in files):
        return merge_rows(key, None, result)[0]  # unique, sorted; later files win
    ts = ts_ns_column(result).to_numpy()
    if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
        # Files are sorted and in time order, so this only runs on a damaged dataset.
        nums = integer_ids(result.column("id")) if key.kind == "trades" else None
        result = result.take(pa.array(trade_order(ts, nums)))
    return result


# The words of a difference a run stopped between writing a file and recording it leaves.
LAGGING = "written by a run stopped before the ledger recorded it"


def _subdirs(directory: Path, field: str) -> list[Path]:
    try:
        return sorted(
            p for p in directory.iterdir() if p.is_dir() and p.name.startswith(field + "=")
        )
    except (FileNotFoundError, NotADirectoryError):
        return []


def _has_series_files(directory: Path, key: SeriesKey) -> bool:
    return (directory / LEDGER_NAME).is_file() or bool(partition_files(key.kind, directory))


def list_series(root: Path) -> list[SeriesKey]:
    """Every series stored under ``root`` (with data files or a ledger), sorted.

    Directories whose names are not valid series components are skipped.
    """
    root = Path(root)
    found: list[SeriesKey] = []
    for kind in KINDS:
        for ex_dir in _subdirs(root / kind, "exchange"):
            for sym_dir in _subdirs(ex_dir, "symbol"):
                candidates = _subdirs(sym_dir, "span") if kind == "ohlc" else [sym_dir]
                for directory in candidates:
                    key = parse_series_dir(root, directory)
                    if key is not None and _has_series_files(directory, key):
                        found.append(key)
    # An older dccd's span=1M and the current span=1mo are one series.
    return sorted(set(found), key=lambda k: (k.kind, k.exchange, k.symbol, k.span or ""))


def _count_inside(ts: npt.NDArray[np.int64], intervals: list[Interval]) -> int:
    """How many of the sorted ``ts`` fall inside the normalized ``intervals``."""
    if not intervals:
        return 0
    starts = np.array([s for s, _ in intervals], dtype=np.int64)
    ends = np.array([e for _, e in intervals], dtype=np.int64)
    return int((np.searchsorted(ts, ends, "left") - np.searchsorted(ts, starts, "left")).sum())


def _verify_ledger_file(directory: Path, key: SeriesKey) -> tuple[Ledger | None, list[str]]:
    problems: list[str] = []
    try:
        ledger = Ledger.load(directory)
    except StorageError as exc:
        return None, [str(exc)]
    path = directory / LEDGER_NAME
    if not path.exists():
        return ledger, problems
    if ledger.key is not None and ledger.key != key:
        problems.append(f"{LEDGER_NAME}: records the series {ledger.key}, not {key}")
    # load() normalizes; the file itself should already have been canonical.
    raw: dict[str, Any] = json.loads(path.read_bytes())
    fetched = [tuple(iv) for iv in raw.get("fetched", [])]
    if fetched != ledger.fetched:
        problems.append(f"{LEDGER_NAME}: fetched ranges are not sorted, disjoint and merged")
    failed = [(f["start_ns"], f["end_ns"]) for f in raw.get("failed", [])]
    if failed != [(f.start_ns, f.end_ns) for f in ledger.failed]:
        problems.append(f"{LEDGER_NAME}: failed ranges overlap each other or the fetched ranges")
    return ledger, problems


def _verify_file(
    path: Path, key: SeriesKey, start_ns: int, end_ns: int, ledger: Ledger | None
) -> list[str]:
    name = path.name
    try:
        with pq.ParquetFile(str(path)) as pf:
            schema = pf.schema_arrow
            raw_meta = pf.metadata.metadata or {}
            # Names and types; nullability is checked on the values below, as the writer does.
            conforms = schema.names == key.schema.names and all(
                a.type == b.type for a, b in zip(schema, key.schema)
            )
            # Only the key columns: verifying a year of trades must not load all of it.
            table = pf.read(columns=list(key.sort_columns)) if conforms else None
    except (OSError, pa.ArrowException) as exc:
        return [f"{name}: cannot be read ({exc})"]
    problems: list[str] = []
    if table is None:
        problems.append(f"{name}: schema differs from the {key.kind} schema:\n{schema}")
        return problems
    meta = {k.decode(): v.decode() for k, v in raw_meta.items()}
    expected = file_metadata(key, native_symbol="", version="")
    for field, value in expected.items():
        if field not in meta:
            problems.append(f"{name}: metadata {field} is missing")
        elif value and meta[field] != value:
            problems.append(f"{name}: metadata {field} is {meta[field]!r}, expected {value!r}")
    for column in key.sort_columns:
        if table.column(column).null_count:
            problems.append(f"{name}: {column} has null values")
            return problems
    ts = ts_ns_column(table).to_numpy()
    n = len(ts)
    outside = int(np.count_nonzero((ts < start_ns) | (ts >= end_ns)))
    if outside:
        problems.append(f"{name}: {outside} rows lie outside the file's period")
    # Trades with integer ids: by ts, then id as a number; other ids keep the exchange's
    # order within a ts, which no column can confirm (dccd_cli.tradeorder).
    nums = integer_ids(table.column("id")) if key.kind == "trades" else None
    if not in_trade_order(ts, nums):
        rule = "ts" if nums is None else "ts, then id as an integer"
        problems.append(f"{name}: rows are not sorted by {rule}")
    unique = pc.count_distinct(table.column(key.key_column)).as_py()
    if unique != n:
        problems.append(f"{name}: {n - unique} rows repeat a {key.key_column} of another row")
    if ledger is not None and ledger.files_known:
        entry = ledger.files.get(name)
        if entry is None:
            problems.append(f"{name}: not recorded in the ledger's manifest: copied in, or "
                            f"{LAGGING}; a download of its range records it")
        else:
            problems.extend(_against_manifest(name, entry, table, ts))
    if ledger is not None and n:
        uncovered = n - _count_inside(np.sort(ts), normalize(ledger.fetched))
        if uncovered:
            problems.append(
                f"{name}: {uncovered} rows lie outside the ledger's fetched ranges "
                "(an interrupted run or a foreign write; running the download again records them)"
            )
    return problems


def _against_manifest(
    name: str, entry: FileEntry, table: pa.Table, ts: npt.NDArray[np.int64]
) -> list[str]:
    """How a file differs from what the ledger recorded of it (rows, ts and id bounds)."""
    lo, hi = (int(ts.min()), int(ts.max())) if len(ts) else (None, None)
    ids = id_bounds(table.column("id")) if "id" in table.column_names else (None, None)
    got: list[str] = []
    want: list[str] = []
    if len(ts) != entry.rows:
        got.append(f"{len(ts)} rows")
        want.append(f"{entry.rows} rows")
    if (lo, hi) != (entry.ts_min, entry.ts_max):
        got.append(f"ts {_ts(lo)} .. {_ts(hi)}")
        want.append(f"ts {_ts(entry.ts_min)} .. {_ts(entry.ts_max)}")
    if entry.id_min is not None and ids != (entry.id_min, entry.id_max):
        got.append(f"ids {ids[0]} .. {ids[1]}")
        want.append(f"ids {entry.id_min} .. {entry.id_max}")
    if not got:
        return []
    now = replace(entry, rows=len(ts), ts_min=lo, ts_max=hi)
    ids_wider = entry.id_min is None or entry.id_max is None or (
        ids[0] is not None and ids[1] is not None
        and ids[0] <= entry.id_min and ids[1] >= entry.id_max)
    if now.holds_at_least(entry) and ids_wider:
        return [f"{name}: holds {', '.join(got)} where the ledger recorded {', '.join(want)}: "
                f"{LAGGING}; the next download of its range records it"]
    return [f"{name}: holds {', '.join(got)} where the ledger recorded {', '.join(want)} "
            "(changed since it was written; `--refetch` of its range rewrites it)"]


def _ts(ns: int | None) -> str:
    return "none" if ns is None else format_ns(ns)


def _verify_manifest(directory: Path, ledger: Ledger | None) -> list[str]:
    """Files the ledger's manifest names that are not on disk."""
    if ledger is None:
        return []
    problems = []
    for name, entry in sorted(ledger.files.items()):
        if not (directory / name).exists():
            problems.append(
                f"{name}: missing; the ledger recorded {entry.rows} rows in it, "
                f"{_ts(entry.start_ns)} .. {_ts(entry.end_ns)} is not stored (the next "
                "download or sync of that range fetches it again)")
    return problems


def verify_series(root: Path, key: SeriesKey) -> list[str]:
    """Contract violations of one stored series, as sentences; empty when all is well.

    Checks each file's name, schema, metadata, row order, uniqueness and period, the
    ledger's form, that the ledger claims every stored row, and that each file holds what
    the ledger's manifest recorded of it (rows, ts and id bounds; none missing, none
    unrecorded). Files of an older dccd's layout are valid until the next download
    folds them (``storage.upgrade``), unless they repeat the current files' rows.
    """
    dirs = [d for d in series_dirs(root, key) if d.is_dir()]
    if not dirs:
        return [f"{key.dir(root)}: no such series directory"]
    problems: list[str] = []
    if len(dirs) > 1:
        problems.append(f"{dirs[1].name}: an older dccd's directory beside {dirs[0].name}; "
                        "the next download of the series merges it")
    for directory in dirs:
        problems.extend(_verify_dir(directory, key))
    return problems


def _verify_dir(directory: Path, key: SeriesKey) -> list[str]:
    problems: list[str] = []
    if key.kind == "trades":
        pattern = "YYYY-MM-DD.parquet"
    else:
        pattern = "YYYY.parquet" if key.yearly else "YYYY-MM.parquet"
    files = partition_files(key.kind, directory)
    current = {part for part, _ in files if is_current_name(key, part)}
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith((".", "_")):
            continue  # ledger, lock and temporaries; dataset readers skip them too
        part = partition_from_name(key.kind, entry.name) if entry.is_file() else None
        if part is None or (not is_current_name(key, part) and not key.yearly):
            problems.append(f"{entry.name}: not a data file of this series (expected {pattern})")
        elif not is_current_name(key, part) and partition_for(key, part.start_ns) in current:
            year = partition_for(key, part.start_ns).name
            problems.append(f"{entry.name}: an older dccd's monthly file beside {year}, left by "
                            "an interrupted upgrade; the next download folds it in")
    ledger, ledger_problems = _verify_ledger_file(directory, key)
    problems.extend(ledger_problems)
    problems.extend(_verify_manifest(directory, ledger))
    for part, path in files:
        problems.extend(_verify_file(path, key, part.start_ns, part.end_ns, ledger))
    return problems
