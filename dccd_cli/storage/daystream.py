"""A day of trades streamed to its temporary file a row group at a time, so that memory
holds a row group, not the day (a busy day is a million rows); renamed into place when the
day completes or the writer commits, like every other write.

Rows are staged as they come and checked a row group at a time, just before it is written
— one vectorised pass over ~100 pages instead of a few compute calls per page. A stream may
continue a stored file of the day (``base``: a commit of this run, or a run that was
stopped): its row groups are copied first, one at a time, so a re-opened day is streamed
too, never held in memory. When rows do not extend the streamed ones in trade order, or an
id repeats, the day goes back to memory (``read_back``) and is merged the careful way.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from dccd_cli.errors import StorageError
from dccd_cli.schema import ts_ns_column
from dccd_cli.storage.atomic import ensure_dir, fsync_dir, storage_error, temp_path_for
from dccd_cli.storage.datafile import (
    ROW_GROUP_ROWS,
    all_distinct,
    all_unique,
    conform,
    parquet_options,
)
from dccd_cli.storage.layout import Partition, SeriesKey
from dccd_cli.storage.manifest import FileEntry, footer_entry, stat_of
from dccd_cli.tradeorder import in_trade_order, integer_ids


@dataclass
class DayStream:
    """One day's rows on their way to ``tmp``; see the module docstring."""

    tmp: Path
    key: SeriesKey
    metadata: dict[str, str]
    writer: pq.ParquetWriter | None = None
    staged: list[pa.Table] = field(default_factory=list)
    staged_rows: int = 0
    written_rows: int = 0
    # (ts, integer id or None) of the last row written: the next row group must start
    # after it (at or after its ts, for ids that are not integers).
    last: tuple[int, int | None] | None = None
    # Ids as integers (most exchanges'), 8 bytes a row, to prove them unique at the end
    # without reading the day back; None once an id is not an integer.
    numeric_ids: list[npt.NDArray[np.int64]] | None = field(default_factory=list)
    # Every numeric id so far above the one before (exchanges that number their trades):
    # then they are unique without sorting the day's ids.
    ids_rising: bool = True
    # A stored (committed) file of the day that this stream continues: its row groups are
    # copied first, and its stat tells whether someone else replaced it meanwhile.
    base: Path | None = None
    base_stat: tuple[int, int] | None = None
    base_rows: int = 0
    # Set by a failed write or a drop: the file may be torn, and must never be renamed.
    broken: bool = False

    @property
    def new_rows(self) -> int:
        """Rows written to the stream that were not in the stored file it continues."""
        return self.written_rows - self.base_rows

    def stage(self, table: pa.Table) -> None:
        self.staged.append(table)
        self.staged_rows += table.num_rows

    def write_staged(self) -> bool:
        """Check the staged rows and write them as one row group; False when they do not
        extend the streamed rows in order (then ``read_back`` and merge)."""
        self._check_whole()
        if not self.staged:
            return True
        batch = pa.concat_tables(self.staged)
        try:
            if self.writer is None:
                self._open()
        except (OSError, StorageError) as exc:
            self.broken = True
            if isinstance(exc, StorageError):
                raise
            raise storage_error("write", self.tmp, exc) from exc
        nums = integer_ids(batch.column("id")) if self.numeric_ids is not None else None
        if not self._continues(batch, nums):
            return False
        self._note_ids(nums)
        assert self.writer is not None
        try:
            # The whole batch as one row group (unless it is a huge chunk): never a small
            # remainder group after a full one.
            self.writer.write_table(batch, row_group_size=min(batch.num_rows, ROW_GROUP_ROWS))
        except OSError as exc:
            self.broken = True
            raise storage_error("write", self.tmp, exc) from exc
        self.written_rows += batch.num_rows
        self.staged, self.staged_rows = [], 0
        return True

    def finish(self, path: Path) -> int | None:
        """Close the stream and rename it over ``path``; the file's size, or None when the
        day must be merged instead (``read_back``): ``path`` was replaced by another writer
        since, the rows are out of order, or an id repeats. Nothing streamed: 0."""
        self._check_whole()
        try:
            now: tuple[int, int] | None = stat_of(path)
        except FileNotFoundError:
            now = None
        if now is not None and now != self.base_stat:
            return None  # another writer stored this day meanwhile: merge with it
        if not self.write_staged():
            return None
        if self.writer is None:
            return 0  # nothing was streamed (every slice went to memory)
        try:
            self.writer.close()
            self.writer = None
            if not self._unique():
                return None  # one id at two instants: the merge keeps the newest
            fd = os.open(self.tmp, os.O_RDWR)
            try:
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            os.replace(self.tmp, path)
            fsync_dir(path.parent)
        except OSError as exc:
            self.drop()
            raise storage_error("write", path, exc) from exc
        return size

    def read_back(self) -> list[pa.Table]:
        """The streamed and staged rows, as tables to merge in memory; the stream is
        dropped (rare: see ``write_staged`` and ``finish``)."""
        self._check_whole()
        tables: list[pa.Table] = []
        try:
            if self.writer is not None:
                self.writer.close()
                self.writer = None
            if self.written_rows:
                tables.append(pq.read_table(self.tmp).replace_schema_metadata(None))
        except OSError as exc:
            raise storage_error("read back", self.tmp, exc) from exc
        tables += self.staged
        self.drop()
        return tables

    def drop(self) -> None:
        """Close and remove the temporary file (never raises)."""
        self.broken = True
        with contextlib.suppress(Exception):
            if self.writer is not None:
                self.writer.close()
        self.writer = None
        with contextlib.suppress(OSError):
            self.tmp.unlink()

    def entry(self, path: Path, part: Partition) -> FileEntry:
        """The manifest entry of the day just renamed to ``path``: rows and ts from its
        footer, ids from the integers kept while streaming."""
        try:
            entry = footer_entry(path, part.start_ns, part.end_ns)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"could not read back {path}: {exc}") from exc
        if self.numeric_ids:
            lo = min(int(a.min()) for a in self.numeric_ids if len(a))
            hi = max(int(a.max()) for a in self.numeric_ids if len(a))
            entry = replace(entry, id_min=lo, id_max=hi)
        return entry

    # -- internals --

    def _check_whole(self) -> None:
        if self.broken:
            raise StorageError(f"the rows streamed to {self.tmp} were lost to an earlier "
                               "failure; the day is fetched again by the next run")

    def _open(self) -> None:
        """Open the temporary file and copy the stored day it continues, one row group at
        a time (read without threads: pyarrow's pool then keeps ~40 MB less)."""
        ensure_dir(self.tmp.parent)
        self.writer = pq.ParquetWriter(
            str(self.tmp), self.key.schema.with_metadata(self.metadata),
            **parquet_options(self.key.schema),
        )
        if self.base is None:
            return
        try:
            with pq.ParquetFile(str(self.base)) as pf:
                for i in range(pf.num_row_groups):
                    group = conform(pf.read_row_group(i, use_threads=False), self.key, what="file")
                    if not group.num_rows:
                        continue
                    nums = (integer_ids(group.column("id")) if self.numeric_ids is not None
                            else None)
                    self._note_ids(nums)
                    self.writer.write_table(group, row_group_size=group.num_rows)
                    self.written_rows += group.num_rows
                    last_ts = int(ts_ns_column(group.slice(group.num_rows - 1)).to_numpy()[0])
                    self.last = (last_ts, None if nums is None else int(nums[-1]))
        except pa.ArrowException as exc:
            raise StorageError(f"could not read back {self.base}: {exc}") from exc
        self.base_rows = self.written_rows

    def _continues(self, batch: pa.Table, nums: npt.NDArray[np.int64] | None) -> bool:
        """Whether ``batch`` (with integer ids ``nums``, or None) extends the streamed rows
        in trade order (``dccd_cli.tradeorder``), repeating no (ts, integer id)."""
        ts = ts_ns_column(batch).to_numpy()
        if not in_trade_order(ts, nums, strict=True):
            return False
        if self.last is not None:
            last_ts, last_id = self.last
            if int(ts[0]) < last_ts or (
                int(ts[0]) == last_ts and nums is not None and last_id is not None
                and int(nums[0]) <= last_id
            ):
                return False
        self.last = (int(ts[-1]), None if nums is None else int(nums[-1]))
        return True

    def _note_ids(self, nums: npt.NDArray[np.int64] | None) -> None:
        """Keep a row group's integer ids, to prove the day's unique when it ends."""
        if self.numeric_ids is None:
            return
        if nums is None:
            self.numeric_ids = None
            return
        if self.ids_rising:
            after = not self.numeric_ids or nums[0] > self.numeric_ids[-1][-1]
            self.ids_rising = bool(after and np.all(nums[1:] > nums[:-1]))
        self.numeric_ids.append(nums)

    def _unique(self) -> bool:
        if self.numeric_ids is not None and self.ids_rising:
            return True
        if self.numeric_ids is not None:
            return all_distinct(np.concatenate(self.numeric_ids))
        ids = pq.ParquetFile(self.tmp).read(columns=["id"], use_threads=False).column("id")
        return all_unique(ids.combine_chunks())


def stream_for(
    path: Path, part: Partition, ts: int, key: SeriesKey, metadata: dict[str, str]
) -> DayStream | None:
    """A stream for a day's rows from ``ts`` on: a new file, or one continuing the stored
    day when all its rows come before ``ts`` (a commit, a resumed run); None when the rows
    are to be merged into it in memory."""
    try:
        stored = footer_entry(path, part.start_ns, part.end_ns)
    except FileNotFoundError:
        return DayStream(temp_path_for(path), key, metadata)
    except (OSError, pa.ArrowException):
        return None  # the merge reports it (read_data_file)
    if stored.ts_max is None or stored.ts_max >= ts:
        return None
    return DayStream(temp_path_for(path), key, metadata, base=path,
                     base_stat=(stored.size, stored.mtime_ns))
