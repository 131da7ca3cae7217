"""Datasets written by older dccd versions: read as they are, upgraded before a write.

Two things changed in the layout (see ``layout``):

* spans of a day and longer (``1d``, ``3d``, ``1w``, ``1M``, ...) are stored a file per
  UTC year (``2024.parquet``), not per month (``2024-01.parquet``: a ``1M`` series was one
  row a file);
* month spans live in ``span=1mo``, not ``span=1M``, which a case-insensitive filesystem
  takes for ``span=1m``.

Readers (``read_series``, ``dccd inventory``) read both layouts. ``upgrade_series`` brings
one series to the current layout; the download commands and ``dccd sync`` call it, under
the series' lock, before they read its ledger and write. Every step keeps the dataset
whole if the process is killed at any moment:

1. an older ``span=NM`` directory is renamed ``span=Nmo`` (one atomic rename that carries
   the files and the ledger along); if both exist (an older dccd wrote after a newer one),
   the old one's rows are merged into the new files, its ledger into the new ledger, and
   only then is it removed;
2. the monthly files of a day+ series are merged into their year's file (rows of the year
   file win a conflict: it is the newer), written atomically and fsynced, and recorded in
   the ledger's manifest in place of the monthly files; only then are the monthly files
   removed. A crash in between leaves rows in both, which the next upgrade merges again
   (idempotent); the ledger's ranges are time, not files, and stay valid throughout.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dccd_cli._version import __version__
from dccd_cli.errors import StorageError
from dccd_cli.storage.atomic import fsync_dir, series_lock, storage_error
from dccd_cli.storage.datafile import merge_rows, read_data_file, write_data_file
from dccd_cli.storage.layout import (
    LEDGER_NAME,
    LOCK_NAME,
    Partition,
    SeriesKey,
    file_metadata,
    is_current_name,
    partition_files,
    partition_for,
)
from dccd_cli.storage.ledger import Ledger
from dccd_cli.storage.manifest import table_entry


def _month_key(key: SeriesKey) -> SeriesKey | None:
    """The month series whose older directory name (``span=NM``) a case-insensitive
    filesystem confuses with ``key``'s: ``key`` itself for ``NM``, the month of the same
    count for a minute span ``Nm``; None for every other key."""
    if key.kind != "ohlc" or key.span is None or key.span[-1] not in "mM":
        return None
    return SeriesKey("ohlc", key.exchange, key.symbol, key.span[:-1] + "M")


def legacy_dir(root: Path, key: SeriesKey) -> Path | None:
    """The ``span=NM`` directory an older dccd wrote the month series ``key`` to, if it
    exists under exactly that name (compared as listed, so that ``span=1m`` is never taken
    for it on a case-insensitive filesystem)."""
    if key.kind != "ohlc" or key.span is None or not key.span.endswith("M"):
        return None
    parent = key.dir(root).parent
    name = f"span={key.span}"
    try:
        with os.scandir(parent) as it:
            found = any(e.name == name and e.is_dir() for e in it)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return parent / name if found else None


def series_dirs(root: Path, key: SeriesKey) -> list[Path]:
    """The directories holding ``key``'s files: its own, and an older dccd's if present."""
    old = legacy_dir(root, key)
    return [key.dir(root), *([old] if old is not None else [])]


def stored_ledger(root: Path, key: SeriesKey) -> Ledger:
    """``key``'s ledger as stored, in whichever layout, without changing anything (for
    planning, ``--dry-run`` and ``dccd inventory``): an older dccd's ``span=NM`` one (its
    manifest naming its files there) when it is the only one; when both directories have
    one, the current one's with the older one's ranges added."""
    dirs = series_dirs(root, key)
    if len(dirs) > 1 and not (dirs[0] / LEDGER_NAME).exists():
        return Ledger.load(dirs[1])
    ledger = Ledger.load(dirs[0])
    for other in dirs[1:]:
        _merge_ledger(ledger, Ledger.load(other))
    return ledger


def _merge_ledger(into: Ledger, other: Ledger) -> None:
    for f in other.failed:
        into.add_failed(f.start_ns, f.end_ns, f.error)
    for s, e in other.fetched:  # fetched last: a range fetched in either is not failed
        into.add_fetched(s, e)


def upgrade_series(root: Path, key: SeriesKey) -> list[str]:
    """Bring ``key``'s stored files to the current layout; say what was done (notes for
    the run's summary), nothing when there was nothing to do. ``StorageError`` on a disk
    failure, with every file still readable and no row lost."""
    root = Path(root)
    notes: list[str] = []
    month = _month_key(key)
    if month is not None:
        old = legacy_dir(root, month)
        if old is not None:
            notes.append(_move_month_dir(root, month, old))
    if key.kind == "ohlc" and key.yearly and key.dir(root).is_dir():
        with series_lock(key.dir(root)):
            folded = fold_monthly_files(key, key.dir(root))
        if folded:
            notes.append(f"{key}: {folded} monthly files of an older dccd merged into yearly "
                         "files (spans of a day and longer are stored a file per year)")
    return notes


def _move_month_dir(root: Path, key: SeriesKey, old: Path) -> str:
    new = key.dir(root)
    with series_lock(old):
        if not new.exists():
            try:
                os.rename(old, new)
                fsync_dir(new.parent)
            except OSError as exc:
                raise storage_error("rename", old, exc) from exc
            return (f"{key}: moved {old.name} to {new.name} (months have their own directory "
                    "value, distinct from minutes on any filesystem)")
        with series_lock(new):
            _merge_dir_into(key, old, new)
    return f"{key}: merged an older dccd's {old.name} into {new.name}"


def _merge_dir_into(key: SeriesKey, old: Path, new: Path) -> None:
    """The rows and coverage of ``old`` into ``new`` (both locked by the caller), then
    ``old`` removed: files first, so that a crash leaves the rows in both places."""
    meta = _metadata_of(key, [p for _, p in partition_files(key.kind, old)])
    by_file: dict[Partition, list[pa.Table]] = {}
    for part, path in partition_files(key.kind, old):
        table = read_data_file(path, key)
        if table is not None and table.num_rows:
            by_file.setdefault(partition_for(key, part.start_ns), []).append(table)
    written: list[tuple[Partition, Path, pa.Table]] = []
    for part, tables in sorted(by_file.items()):
        target = new / part.name
        ours = read_data_file(target, key)
        merged, _ = merge_rows(key, pa.concat_tables(tables), ours if ours is not None
                               else key.schema.empty_table())
        write_data_file(target, merged, meta)
        written.append((part, target, merged))
    ledger = Ledger.load(new, key)
    _merge_ledger(ledger, Ledger.load(old, key))
    if ledger.files_known:
        for part, path, table in written:
            ledger.record_file(table_entry(path, part.start_ns, part.end_ns, table))
    if ledger.fetched or ledger.failed:
        ledger.save()
    fold_monthly_files(key, new)
    try:
        for _, path in partition_files(key.kind, old):
            path.unlink()
        with contextlib.suppress(FileNotFoundError):
            (old / LEDGER_NAME).unlink()  # after the files: the rows were its claim
        fsync_dir(old)
    except OSError as exc:
        raise storage_error("remove", old, exc) from exc
    # The lock file goes too, unlike in a live series (see series_lock): the directory
    # must go, or a case-insensitive filesystem keeps confusing it with span=Nm. Only an
    # older dccd could still be waiting on it. A directory with anything else in it stays.
    with contextlib.suppress(OSError):
        (old / LOCK_NAME).unlink()
        old.rmdir()


def fold_monthly_files(key: SeriesKey, directory: Path) -> int:
    """Merge the monthly files of a yearly series into their years' files; how many were.

    The caller holds ``series_lock(directory)``. Memory: a year of the series at a time
    (366 rows of 1d bars)."""
    if key.kind != "ohlc" or not key.yearly:
        return 0
    by_year: dict[Partition, list[Path]] = {}
    for part, path in partition_files(key.kind, directory):
        if not is_current_name(key, part):
            by_year.setdefault(partition_for(key, part.start_ns), []).append(path)
    folded = 0
    for year, months in sorted(by_year.items()):
        tables = [t for t in (read_data_file(p, key) for p in months) if t is not None]
        target = directory / year.name
        ours = read_data_file(target, key)
        meta = _metadata_of(key, [*([target] if ours is not None else []), *months])
        old_rows = pa.concat_tables(tables) if tables else key.schema.empty_table()
        merged, _ = merge_rows(key, old_rows, ours if ours is not None
                               else key.schema.empty_table())
        write_data_file(target, merged, meta)  # durable before any month file goes
        _record_files(directory, key, [(year, target, merged)], [p.name for p in months])
        try:
            for path in months:
                path.unlink()
            fsync_dir(directory)
        except OSError as exc:
            raise storage_error("remove", months[0], exc) from exc
        folded += len(months)
    return folded


def _record_files(directory: Path, key: SeriesKey, written: list[tuple[Partition, Path, pa.Table]],
                  removed: list[str]) -> None:
    """Keep the ledger's manifest (``storage.manifest``) naming the files as they are now:
    the files written, not the ones about to be removed. Saved before they are removed, so
    a crash in between leaves removed names recorded for files still present. A ledger that
    never recorded its files (or none at all) is left to the writer."""
    if not (directory / LEDGER_NAME).exists():
        return
    ledger = Ledger.load(directory, key)
    if not ledger.files_known:
        return
    for part, path, table in written:
        ledger.record_file(table_entry(path, part.start_ns, part.end_ns, table))
    for name in removed:
        ledger.forget_file(name)
    ledger.save()


def _metadata_of(key: SeriesKey, paths: list[Path]) -> dict[str, str]:
    """The file metadata for ``key``, keeping the exchange's own symbol its files record."""
    native = ""
    for path in paths:
        try:
            raw = pq.read_schema(str(path)).metadata or {}
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"the existing file {path} cannot be read ({exc}); it was "
                               "left as it is") from exc
        native = raw.get(b"dccd.native_symbol", b"").decode()
        if native:
            break
    return dict(file_metadata(key, native_symbol=native, version=__version__))
