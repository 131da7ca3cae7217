"""The coverage ledger: which time ranges of a series were fetched, which failed, and
what each data file holds.

A series directory keeps ``_coverage.json`` beside its Parquet files (the ``_`` makes
dataset readers skip it)::

    {
      "format": "dccd.coverage",
      "version": 2,
      "series": {"kind": "ohlc", "exchange": "binance", "symbol": "BTC-USDT", "span": "1h"},
      "fetched": [[1704067200000000000, 1706745600000000000]],
      "failed": [{"start_ns": 1706745600000000000, "end_ns": 1706832000000000000,
                  "error": "HTTP 503 ..."}],
      "provisional": [[1709251200000000000, 1709254800000000000]],
      "files": [{"name": "2024-01.parquet", "range": [1704067200000000000, 1706745600000000000],
                 "rows": 744, "ts": [1704067200000000000, 1706742000000000000],
                 "size": 40123, "mtime_ns": 1717000000000000000}]
    }

Ranges are half-open ``[start_ns, end_ns)`` in ns since the epoch, UTC. ``fetched`` is
sorted and merged (no overlapping or touching ranges) and includes ranges where the
exchange simply had no rows, which is what tells a quiet market from a gap. ``failed``
is sorted, non-overlapping, and disjoint from ``fetched``: a later successful fetch of a
failed range removes it. A range is added to ``fetched`` only after its rows are durably
in the Parquet files (the writer sees to that), so the ledger never claims data that a
crash could have lost; the converse does not hold (a crash between a file write and the
ledger update leaves rows the ledger does not yet claim, which the next run re-fetches).

``provisional`` holds the bars stored while still forming (``--include-partial``): fetched,
but to be fetched again by any later run that covers them; a later fetch of the range
clears the mark. ``files`` is the manifest (``storage.manifest``): what each data file
holds, so that a lost or damaged file is noticed by a ``stat`` and its range fetched again.

Version 1 ledgers (no ``provisional``, no ``files``) load as they are; their manifest is
unknown (``files_known`` False) until the writer next saves the ledger, which records the
files then present from their Parquet footers, and writes version 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dccd_cli.errors import OutputPathError, StorageError
from dccd_cli.storage.atomic import atomic_write_bytes, storage_error
from dccd_cli.storage.intervals import (
    FailedInterval,
    Interval,
    join_failed,
    normalize,
    subtract,
    subtract_failed,
    union,
)
from dccd_cli.storage.layout import LEDGER_NAME, SeriesKey
from dccd_cli.storage.manifest import FileEntry

__all__ = ["FORMAT", "FORMAT_VERSION", "Ledger"]

FORMAT = "dccd.coverage"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# Error texts are for people; a page of HTML from a proxy need not be kept whole.
MAX_ERROR_CHARS = 1000


def _check_range(start_ns: int, end_ns: int) -> None:
    if isinstance(start_ns, bool) or isinstance(end_ns, bool):
        raise TypeError("range bounds are ints of ns, not bools")
    if start_ns > end_ns:
        raise ValueError(f"range start {start_ns} is after its end {end_ns}")


# -- the ledger file ---------------------------------------------------------------------


class Ledger:
    """The coverage of one series, loaded from and saved to ``directory/_coverage.json``.

    Mutations (``add_fetched``, ``add_failed``) keep both lists canonical; ``save`` writes
    the file atomically. Not safe for concurrent use: the storage writer reloads it under
    the series lock before applying its own changes.
    """

    def __init__(
        self,
        directory: Path,
        fetched: Iterable[Interval] = (),
        failed: Iterable[FailedInterval] = (),
        key: SeriesKey | None = None,
        *,
        provisional: Iterable[Interval] = (),
        files: Iterable[FileEntry] | None = (),
    ) -> None:
        self.directory = Path(directory)
        self.key = key
        self._fetched: list[Interval] = []
        self._failed: list[FailedInterval] = []
        fetched = list(fetched)
        for s, e in fetched:
            _check_range(s, e)
        self._fetched = normalize(fetched)
        provisional = list(provisional)
        for s, e in provisional:
            _check_range(s, e)
        self._provisional = normalize(provisional)
        # None: a version-1 ledger, whose files were never recorded.
        self._files: dict[str, FileEntry] | None = (
            None if files is None else {f.name: f for f in files})
        # Later entries override earlier ones where they overlap, as if added in order.
        for f in failed:
            self.add_failed(f.start_ns, f.end_ns, f.error)

    @classmethod
    def load(cls, directory: Path, key: SeriesKey | None = None) -> Ledger:
        """The ledger of the series in ``directory``; empty if it has none yet.

        A ledger that cannot be read or parsed raises ``StorageError``: silently starting
        over would re-download the whole series and forget its failed ranges.
        """
        directory = Path(directory)
        path = directory / LEDGER_NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(directory, key=key)
        except OSError as exc:
            raise storage_error("read the coverage ledger", path, exc) from exc
        try:
            doc = json.loads(raw)
            fetched, failed = _parse(doc)
            provisional, files = _parse_v2(doc)
        except (ValueError, TypeError, KeyError) as exc:
            raise StorageError(
                f"the coverage ledger {path} is damaged ({exc}); delete it to have the "
                "series' coverage worked out again by re-downloading"
            ) from exc
        return cls(directory, fetched, failed, key or _series_of(doc),
                   provisional=provisional, files=files)

    @property
    def path(self) -> Path:
        return self.directory / LEDGER_NAME

    @property
    def fetched(self) -> list[Interval]:
        """Fetched ranges, sorted and merged (a copy)."""
        return list(self._fetched)

    @property
    def failed(self) -> list[FailedInterval]:
        """Failed ranges with their error text, sorted, disjoint from ``fetched`` (a copy)."""
        return list(self._failed)

    @property
    def provisional(self) -> list[Interval]:
        """Ranges of bars stored while still forming, to be fetched again (a copy)."""
        return list(self._provisional)

    @property
    def files_known(self) -> bool:
        """False for a version-1 ledger, which never recorded its files."""
        return self._files is not None

    @property
    def files(self) -> dict[str, FileEntry]:
        """The manifest: each recorded data file by name (a copy; empty when unknown)."""
        return dict(self._files or {})

    def set_files(self, entries: Iterable[FileEntry]) -> None:
        """Record the whole manifest (a version-1 ledger's, worked out from its files)."""
        self._files = {f.name: f for f in entries}

    def record_file(self, entry: FileEntry) -> None:
        """Record what a data file holds now (after the writer replaced it)."""
        if self._files is None:
            self._files = {}
        self._files[entry.name] = entry

    def forget_file(self, name: str) -> None:
        """Drop a file from the manifest (it is gone, and its range was fetched again)."""
        if self._files is not None:
            self._files.pop(name, None)

    def add_provisional(self, start_ns: int, end_ns: int) -> None:
        """Mark ``[start_ns, end_ns)`` (a bar stored while forming) to be fetched again."""
        _check_range(start_ns, end_ns)
        self._provisional = union(self._provisional, [(start_ns, end_ns)])

    def missing(self, start_ns: int, end_ns: int) -> list[Interval]:
        """Sub-ranges of ``[start_ns, end_ns)`` not yet fetched (failed ones included)."""
        _check_range(start_ns, end_ns)
        return subtract([(start_ns, end_ns)] if start_ns < end_ns else [], self._fetched)

    def covers(self, start_ns: int, end_ns: int) -> bool:
        """True if all of ``[start_ns, end_ns)`` was fetched."""
        return not self.missing(start_ns, end_ns)

    def add_fetched(self, start_ns: int, end_ns: int) -> None:
        """Record ``[start_ns, end_ns)`` as fetched; it stops being failed."""
        _check_range(start_ns, end_ns)
        if start_ns == end_ns:
            return
        iv = [(start_ns, end_ns)]
        self._fetched = union(self._fetched, iv)
        self._failed = subtract_failed(self._failed, iv)
        # Fetched again: the bars in it are what the exchange says now, no longer forming
        # (the writer marks a bar still forming again after this).
        self._provisional = subtract(self._provisional, iv)

    def add_failed(self, start_ns: int, end_ns: int, error: str) -> None:
        """Record ``[start_ns, end_ns)`` as failed with ``error``.

        Parts already fetched stay fetched (their rows are on disk; a failed re-fetch
        does not undo that). Overlapped older failures take the newer error.
        """
        _check_range(start_ns, end_ns)
        if start_ns == end_ns:
            return
        error = str(error)[:MAX_ERROR_CHARS]
        iv = [(start_ns, end_ns)]
        fresh = [FailedInterval(s, e, error) for s, e in subtract(iv, self._fetched)]
        self._failed = join_failed([*subtract_failed(self._failed, iv), *fresh])

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION}
        if self.key is not None:
            doc["series"] = {
                "kind": self.key.kind,
                "exchange": self.key.exchange,
                "symbol": self.key.symbol,
                "span": self.key.span,
            }
        doc["fetched"] = [[s, e] for s, e in self._fetched]
        doc["failed"] = [
            {"start_ns": f.start_ns, "end_ns": f.end_ns, "error": f.error} for f in self._failed
        ]
        doc["provisional"] = [[s, e] for s, e in self._provisional]
        if self._files is not None:
            doc["files"] = [self._files[n].to_json() for n in sorted(self._files)]
        return doc

    def to_bytes(self) -> bytes:
        """The file's bytes: valid JSON with one range per line, for people who open it."""
        doc = self.to_json()
        lines = []
        for name, value in doc.items():
            if isinstance(value, list) and value:
                items = ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value)
                lines.append(f" {json.dumps(name)}: [\n{items}\n ]")
            else:
                lines.append(f" {json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}")
        return ("{\n" + ",\n".join(lines) + "\n}\n").encode()

    def save(self) -> None:
        """Write the ledger atomically (temporary file, fsync, rename, directory fsync)."""
        atomic_write_bytes(self.path, self.to_bytes())

    def same_coverage(self, other: Ledger) -> bool:
        """Whether both record the same ranges and the same files (nothing to save)."""
        return (self._fetched == other._fetched and self._failed == other._failed
                and self._provisional == other._provisional and self._files == other._files)

    def copy(self) -> Ledger:
        return Ledger(self.directory, self._fetched, self._failed, self.key,
                      provisional=self._provisional,
                      files=None if self._files is None else self._files.values())


def _int(value: Any) -> int:
    # bool is an int subclass; a float would silently lose ns precision.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not an integer of ns")
    return value


def _series_of(doc: dict[str, Any]) -> SeriesKey | None:
    """The key recorded in a ledger (informational: kept when re-saved without a key)."""
    series = doc.get("series")
    if not isinstance(series, dict):
        return None
    try:
        return SeriesKey(series["kind"], series["exchange"], series["symbol"], series.get("span"))
    except (KeyError, OutputPathError):
        return None


def _range_list(doc: dict[str, Any], name: str) -> list[Interval]:
    """The ``[start_ns, end_ns]`` pairs of the list ``name`` (fetched, provisional)."""
    out: list[Interval] = []
    for item in doc.get(name, []):
        if not isinstance(item, list) or len(item) != 2:
            raise TypeError(f"{name} range {item!r} is not [start_ns, end_ns]")
        s, e = _int(item[0]), _int(item[1])
        if s > e:
            raise ValueError(f"{name} range {item!r} ends before it starts")
        out.append((s, e))
    return out


def _parse(doc: Any) -> tuple[list[Interval], list[FailedInterval]]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a dccd coverage ledger")
    version = doc.get("version")
    if version not in READABLE_VERSIONS:
        raise ValueError(
            f"ledger version {version!r} is not supported by this dccd (it reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))})"
        )
    fetched = _range_list(doc, "fetched")
    failed: list[FailedInterval] = []
    for item in doc.get("failed", []):
        if not isinstance(item, dict):
            raise TypeError(f"failed range {item!r} is not an object")
        s, e = _int(item["start_ns"]), _int(item["end_ns"])
        if s > e:
            raise ValueError(f"failed range {item!r} ends before it starts")
        failed.append(FailedInterval(s, e, str(item.get("error", ""))))
    return fetched, failed


def _parse_v2(doc: dict[str, Any]) -> tuple[list[Interval], list[FileEntry] | None]:
    """The provisional ranges and the manifest (None for a version-1 ledger)."""
    provisional = _range_list(doc, "provisional")
    if doc.get("version") == 1:
        return provisional, None
    return provisional, [FileEntry.from_json(item) for item in doc.get("files", [])]
