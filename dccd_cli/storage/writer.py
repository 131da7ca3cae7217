"""The streaming writer: paginator pieces in, partitioned, deduplicated Parquet files out.

``SeriesWriter`` takes the pieces of one series in time order (``Chunk`` with rows,
``FailedRange`` without) and buffers rows per partition (UTC day for trades; for OHLC the UTC
month, or year for spans of a day and longer). A partition is merged into its file as soon as
the pieces have moved past its end, so memory holds about one partition plus the chunk being
added, however long the range; a day of trades streams to disk a row group at a time
(``storage.daystream``). Monthly files an older dccd wrote for a day+ span are folded into
their year's file at the first write (``storage.upgrade``).

Each partition write re-reads the existing file under the series lock, merges (the newer
fetch wins on a key conflict: a late correction, or a stored unfinished bar replaced by
its final version), sorts, and replaces the file atomically. Only then is the coverage up
to that point added to the ledger, so the ledger never claims rows a crash could lose.

A kill loses seconds, not a partition: every ``COMMIT_EVERY_S`` of wall time (longer when
a commit is costly, so that commits take at most ``COMMIT_COST_SHARE`` of the time) the
partitions in progress are written as they stand and the ledger records the coverage up
to there. A trades day carries on streaming afterwards: its next temporary file starts
with a copy of the committed file's row groups (one at a time, so memory stays bounded),
and is renamed over it at the next commit. A later run resuming inside a stored day does
the same. ``abort()`` (an interrupt, a termination, an error elsewhere) commits what was
received rather than dropping it.

What was received and is not yet in the ledger waits in ``storage.coverage``.

All methods do blocking disk I/O: async code drives a writer through
``storage.background.BackgroundWriter``, which runs them on a thread of its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import pyarrow as pa

from dccd_cli.errors import StorageError
from dccd_cli.pieces import Chunk, FailedRange
from dccd_cli.schema import ts_ns_column
from dccd_cli.storage.atomic import clean_stale_temps, series_lock, storage_error
from dccd_cli.storage.coverage import NEG_INF, PendingCoverage
from dccd_cli.storage.datafile import (
    conform,
    merge_rows,
    read_data_file,
    write_data_file,
)
from dccd_cli.storage.daystream import DayStream, stream_for
from dccd_cli.storage.layout import Partition, SeriesKey, file_metadata, partition_for
from dccd_cli.storage.manifest import table_entry
from dccd_cli.storage.upgrade import fold_monthly_files
from dccd_cli.tradeorder import integer_ids, trade_order

log = logging.getLogger("dccd.storage")

# Rows of a streamed day written per row group (bounds the memory of a trades download).
STREAM_GROUP_ROWS = 1 << 17
# Wall time between commits of the partitions in progress: what a kill can lose at most...
COMMIT_EVERY_S = 5.0
# ... unless a commit costs more than this share of it (a trades day's commit copies the
# day so far): then commits are spaced out to keep that share.
COMMIT_COST_SHARE = 0.1


# -- the writer --------------------------------------------------------------------------


@dataclass
class WriteStats:
    """What a ``SeriesWriter`` did.

    ``rows_added``: rows that are in the files now and were not before (after dedup
    against the existing files). ``rows_written``: fetched rows now stored, new or
    replacing an older version of themselves. ``files_touched``: data files (re)written;
    a partition whose merge changes nothing is not rewritten. ``bytes``: their size.
    """

    rows_added: int = 0
    rows_written: int = 0
    files_touched: list[Path] = field(default_factory=list)
    bytes: int = 0


@dataclass
class _Pending:
    """Rows buffered for one partition: zero-copy slices of the chunks, in time order."""

    partition: Partition
    first_ts: int
    tables: list[pa.Table] = field(default_factory=list)
    rows: int = 0
    stream: DayStream | None = None


class SeriesWriter:
    """Stream one series' pieces into its Parquet files and coverage ledger.

    ``add`` the pieces in time order, then ``close()`` (or ``abort()`` on interruption).
    Usable as a context manager: a clean exit closes, an exception aborts.
    """

    def __init__(self, root: Path, key: SeriesKey, *, native_symbol: str, version: str) -> None:
        self.root = Path(root)
        self.key = key
        self.directory = key.dir(self.root)
        self._metadata = dict(file_metadata(key, native_symbol=native_symbol, version=version))
        self._buffer: dict[int, _Pending] = {}  # by partition start; one between calls
        self._last_pending: _Pending | None = None  # the partition the last rows went to
        # All received rows with ts < _frontier are buffered or on disk.
        self._frontier = NEG_INF
        self._last_end = NEG_INF
        self._coverage = PendingCoverage(self.directory, key)  # received, not yet recorded
        self._stats = WriteStats()
        self._cleaned = False
        self._state = "open"
        self._next_commit = time.monotonic() + COMMIT_EVERY_S

    # -- public surface --

    def add(self, piece: Chunk | FailedRange) -> None:
        """Take the next piece. Pieces must not overlap and must come in time order.

        May write the partitions the piece moved past (and update the ledger), and every
        ``COMMIT_EVERY_S`` or so the partitions in progress too.
        Raises ``ValueError`` for a piece out of order or with rows outside its range,
        ``StorageError`` for a disk failure (then call ``abort()``).
        """
        self._check_open()
        self._add(piece)
        if time.monotonic() >= self._next_commit:
            self._commit_progress()

    def _add(self, piece: Chunk | FailedRange) -> None:
        if piece.start_ns > piece.end_ns:
            raise ValueError(f"piece [{piece.start_ns}, {piece.end_ns}) ends before it starts")
        if piece.start_ns < self._last_end:
            raise ValueError(
                f"pieces must come in time order: [{piece.start_ns}, {piece.end_ns}) starts "
                f"before the previous piece's end {self._last_end}"
            )
        if isinstance(piece, FailedRange):
            if piece.start_ns < piece.end_ns:
                self._coverage.add_failed(piece.start_ns, piece.end_ns, piece.error)
            self._advance(piece.end_ns)
            return
        table = conform(piece.table, self.key)
        ts = ts_ns_column(table).to_numpy() if table.num_rows else np.empty(0, np.int64)
        if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
            # Stable: trades of one instant keep the exchange's order unless ids order them.
            nums = integer_ids(table.column("id")) if self.key.kind == "trades" else None
            table = table.take(pa.array(trade_order(ts, nums)))
            ts = ts_ns_column(table).to_numpy()
        if len(ts) and (ts[0] < piece.start_ns or ts[-1] >= piece.end_ns):
            raise ValueError(
                f"chunk [{piece.start_ns}, {piece.end_ns}) has rows outside its range "
                f"(ts {int(ts[0])} .. {int(ts[-1])}); the paginator must filter them"
            )
        if piece.start_ns < piece.end_ns:
            self._coverage.add_fetched(piece.start_ns, piece.end_ns)
        i = 0
        while i < len(ts):
            t = int(ts[i])
            # Every row before t has been placed: partitions ending by then are complete.
            self._advance(t)
            pending = self._pending_at(t)
            j = len(ts) if ts[-1] < pending.partition.end_ns else int(
                np.searchsorted(ts, pending.partition.end_ns, side="left"))
            self._append(pending, table.slice(i, j - i) if i or j < len(ts) else table)
            i = j
        self._advance(piece.end_ns)

    def mark_provisional(self, start_ns: int, end_ns: int) -> None:
        """Record ``[start_ns, end_ns)`` (a bar stored while still forming) as provisional
        once it is durable, so that any later run covering it fetches it again."""
        self._check_open()
        if start_ns < end_ns:
            self._coverage.add_provisional(start_ns, end_ns)

    def flush(self) -> None:
        """Write the buffered partitions now, complete or not, and record the coverage.

        A partition flushed early is continued (trades) or merged into (OHLC) when more of
        its rows come.
        """
        self._check_open()
        self._flush(self._buffered(), commit_anyway=True)

    def close(self) -> WriteStats:
        """Write every buffered partition, record the coverage, return the stats.

        If that fails (a full disk), the days being streamed have their temporary files
        removed before the error is raised; the ledger claims none of their rows.
        """
        try:
            self.flush()
        except BaseException:
            for pending in self._buffer.values():
                self._drop_stream(pending)
            raise
        self._state = "closed"
        return self.stats

    def abort(self) -> None:
        """Stop after an interruption or error: the rows received so far are written and
        recorded, as a commit would (a Ctrl-C after a minute keeps that minute), with the
        failed ranges, so the next run resumes from there. If that write fails too (the
        disk is full), buffered rows are dropped and the ledger records exactly what is
        already durable. Never raises for a disk error: it is called on the way out of
        another failure.
        """
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._flush(self._buffered(), commit_anyway=True)
            return
        except Exception as exc:  # noqa: BLE001 - on the way out of another failure
            # Most often the failure that brought us here, which the caller reports.
            log.debug("could not write the rows in progress of %s: %s", self.key, exc)
        mark = self._watermark()
        for pending in self._buffer.values():
            self._drop_stream(pending)
        self._buffer.clear()
        try:
            if self._coverage.commits_anything(mark):
                with series_lock(self.directory):
                    self._coverage.commit(mark)
        except StorageError as exc:
            log.warning("could not update the coverage ledger of %s: %s", self.key, exc)

    @property
    def stats(self) -> WriteStats:
        """A snapshot of the stats so far."""
        return replace(self._stats, files_touched=list(self._stats.files_touched))

    @property
    def buffered_rows(self) -> int:
        """Rows held in memory, waiting for their partition to complete."""
        return sum(p.rows - (p.stream.new_rows if p.stream else 0) for p in self._buffer.values())

    @property
    def buffered_partitions(self) -> list[Partition]:
        return [p.partition for p in self._buffered()]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            if self._state == "open":
                self.close()
        else:
            self.abort()

    # -- internals --

    def _check_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"the writer of {self.key} is {self._state}")

    def _advance(self, ts: int) -> None:
        """Time has moved to ``ts``: write every buffered partition that ends by then."""
        self._frontier = max(self._frontier, ts)
        self._last_end = max(self._last_end, ts)
        done = [p for p in self._buffered() if p.partition.end_ns <= ts]
        if done:
            self._flush(done, commit_anyway=False)

    def _commit_progress(self) -> None:
        """Write the partitions in progress and record them (see the module docstring)."""
        t0 = time.monotonic()
        self._flush(self._buffered(), commit_anyway=True)
        now = time.monotonic()
        self._next_commit = now + max(COMMIT_EVERY_S, (now - t0) / COMMIT_COST_SHARE)

    def _pending_at(self, ts: int) -> _Pending:
        """The buffered partition holding time ``ts``, started if there is none yet."""
        last = self._last_pending
        if last is not None and last.partition.contains(ts) and (
            self._buffer.get(last.partition.start_ns) is last
        ):
            return last  # the usual case: the next page of the partition being filled
        part = partition_for(self.key, ts)
        pending = self._buffer.get(part.start_ns)
        if pending is None:
            pending = self._buffer[part.start_ns] = _Pending(part, ts)
            path = self.directory / part.name
            if self.key.kind == "trades":
                pending.stream = stream_for(path, part, ts, self.key, self._metadata)
        self._last_pending = pending
        return pending

    def _buffered(self) -> list[_Pending]:
        return sorted(self._buffer.values(), key=lambda p: p.partition.start_ns)

    def _watermark(self) -> int:
        """Every received row with ts below this is durably in a data file."""
        mark = self._frontier
        for p in self._buffer.values():
            mark = min(mark, p.first_ts)
        return mark

    def _flush(self, pendings: list[_Pending], *, commit_anyway: bool) -> None:
        if not pendings and not (commit_anyway and self._coverage.ranges_waiting):
            return
        with series_lock(self.directory):
            if not self._cleaned:
                clean_stale_temps(self.directory)
                fold_monthly_files(self.key, self.directory)  # an older dccd's layout
                self._cleaned = True
            for pending in pendings:
                self._write_partition(pending)
                # Dropped only once durable: after a failure, _watermark stays below it.
                del self._buffer[pending.partition.start_ns]
            self._coverage.commit(self._watermark())

    def _append(self, pending: _Pending, table: pa.Table) -> None:
        """Add a slice of rows (sorted by ts) to a partition: in memory, or streamed."""
        pending.rows += table.num_rows
        st = pending.stream
        if st is None:
            pending.tables.append(table)
            return
        st.stage(table)
        if st.staged_rows >= STREAM_GROUP_ROWS and not st.write_staged():
            self._unstream(pending)  # out of order or repeated: merge it the careful way

    def _drop_stream(self, pending: _Pending) -> None:
        if pending.stream is not None:
            pending.stream.drop()
            pending.stream = None

    def _unstream(self, pending: _Pending) -> None:
        """Turn a streamed partition back into an in-memory one (rare: see daystream)."""
        st = pending.stream
        assert st is not None
        pending.tables = st.read_back()
        pending.stream = None

    def _finish_stream(self, pending: _Pending, path: Path) -> bool:
        """Close a streamed day and rename it into place; False if it must be merged."""
        st = pending.stream
        assert st is not None
        size = st.finish(path)
        if size is None:
            self._unstream(pending)
            return False
        pending.stream = None
        if not size:
            return True  # nothing was streamed
        self._coverage.record_file(st.entry(path, pending.partition))
        self._stats.files_touched.append(path)
        self._stats.bytes += size
        self._stats.rows_added += st.new_rows
        self._stats.rows_written += st.new_rows
        return True

    def _write_partition(self, pending: _Pending) -> None:
        path = self.directory / pending.partition.name
        if pending.stream is not None and self._finish_stream(pending, path):
            if not pending.tables:
                return
        new = pa.concat_tables(pending.tables)
        existing = read_data_file(path, self.key)
        merged, from_new = merge_rows(self.key, existing, new)
        n_old = 0 if existing is None else existing.num_rows
        # Re-fetched rows identical to the stored ones: leave the file alone.
        if existing is None or not merged.equals(existing):
            size = write_data_file(path, merged, self._metadata)
            self._stats.files_touched.append(path)
            self._stats.bytes += size
        if merged.num_rows:
            try:
                entry = table_entry(path, pending.partition.start_ns, pending.partition.end_ns,
                                    merged)
            except OSError as exc:
                raise storage_error("read back", path, exc) from exc
            self._coverage.record_file(entry)
        self._stats.rows_added += merged.num_rows - n_old
        self._stats.rows_written += from_new
