"""The coverage a writer has received but its ledger does not record yet, and its commit.

``SeriesWriter`` notes here what each piece covers (fetched, failed), the bars stored while
still forming and the files it has written. ``commit(mark)`` moves into the ledger the part
that is durable — every row received below ``mark`` is in a data file — so the ledger never
claims rows a crash could lose; the rest waits for a later commit.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from dccd_cli.storage.intervals import (
    FailedInterval,
    Interval,
    intersect,
    normalize,
    subtract,
    union,
)
from dccd_cli.storage.layout import SeriesKey, partition_files
from dccd_cli.storage.ledger import Ledger
from dccd_cli.storage.manifest import FileEntry, footer_entry

NEG_INF = -(1 << 63)


class PendingCoverage:
    """One series' coverage received and not yet in its ledger (``directory/_coverage.json``)."""

    def __init__(self, directory: Path, key: SeriesKey) -> None:
        self.directory = directory
        self.key = key
        self._fetched: list[Interval] = []  # received, rows not yet all durable
        self._failed: list[FailedInterval] = []
        self._provisional: list[Interval] = []
        self._files: dict[str, FileEntry] = {}  # written, not yet in the ledger

    def add_fetched(self, start_ns: int, end_ns: int) -> None:
        """``[start_ns, end_ns)`` was received (its rows are buffered or written)."""
        self._fetched = union(self._fetched, [(start_ns, end_ns)])

    def add_failed(self, start_ns: int, end_ns: int, error: str) -> None:
        """``[start_ns, end_ns)`` could not be fetched, for ``error``."""
        self._failed.append(FailedInterval(start_ns, end_ns, error))

    def add_provisional(self, start_ns: int, end_ns: int) -> None:
        """``[start_ns, end_ns)`` holds a bar stored while still forming."""
        self._provisional = union(self._provisional, [(start_ns, end_ns)])

    def record_file(self, entry: FileEntry) -> None:
        """A data file was (re)written and holds what ``entry`` says."""
        self._files[entry.name] = entry

    @property
    def ranges_waiting(self) -> bool:
        """Whether any range (fetched, failed or provisional) waits to be recorded."""
        return bool(self._fetched or self._failed or self._provisional)

    def commits_anything(self, mark: int) -> bool:
        """Whether a commit at ``mark`` has something to record: failed ranges, files
        written, or fetched ranges durable below ``mark``."""
        return bool(self._failed or self._files or intersect(self._fetched, [(NEG_INF, mark)]))

    def commit(self, mark: int) -> None:
        """Add the durable part of the pending coverage, the failures, the files written and
        the provisional bars to the ledger.

        Reloads the ledger from disk (the caller holds the series lock) so that another
        process' updates since are kept. A version-1 ledger gets its manifest from the
        files' footers here, and is saved as version 2.
        """
        below = [(NEG_INF, mark)]
        durable = intersect(self._fetched, below)
        # A bar's row is durable once its open is below the mark (its range runs past it).
        provisional = [p for p in self._provisional if p[0] < mark]
        if not (durable or self._failed or self._files or provisional):
            return
        ledger = Ledger.load(self.directory, self.key)
        before = ledger.copy()
        if not ledger.files_known:
            ledger.set_files(self._footer_entries())
        for f in self._failed:
            ledger.add_failed(f.start_ns, f.end_ns, f.error)
        for s, e in durable:
            ledger.add_fetched(s, e)
        for s, e in provisional:
            ledger.add_provisional(s, e)
        for entry in self._files.values():
            ledger.record_file(entry)
        # A recorded file that is gone and whose whole range was fetched again without a
        # row: the exchange has no data there now, and the manifest must stop naming it.
        for entry in ledger.files.values():
            if (entry.name not in self._files
                    and not subtract([(entry.start_ns, entry.end_ns)], durable)
                    and not (self.directory / entry.name).exists()):
                ledger.forget_file(entry.name)
        if not ledger.same_coverage(before):
            ledger.save()
        self._fetched = normalize(subtract(self._fetched, durable))
        self._provisional = normalize(subtract(self._provisional, provisional))
        self._failed = []
        self._files = {}

    def _footer_entries(self) -> list[FileEntry]:
        """The manifest of the files present, from their footers (a version-1 ledger's);
        a file that cannot be read is left out (``--verify`` names it)."""
        entries = []
        for part, path in partition_files(self.key.kind, self.directory):
            try:
                entries.append(footer_entry(path, part.start_ns, part.end_ns))
            except (OSError, pa.ArrowException):
                continue
        return entries
