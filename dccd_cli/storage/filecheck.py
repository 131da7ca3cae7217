"""The cheap check of a series' data files against the ledger's manifest.

``check_files`` is what a download or sync runs before it plans: one ``stat`` per recorded
file, and a Parquet footer read only for a file whose size or mtime changed. A file that
still holds at least what was recorded (more rows, bounds as wide: a write the ledger had
not recorded yet when a run was killed) is fine. A missing file, or one that holds less,
makes its partition's range missing again. A file whose footer cannot be read is moved
aside to ``_NAME.corrupt`` (``_`` names are skipped by dataset readers and by dccd; it is
never deleted) and its range is fetched again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from dccd_cli.storage.intervals import Interval, normalize
from dccd_cli.storage.ledger import Ledger
from dccd_cli.storage.manifest import footer_entry, stat_of

CORRUPT_SUFFIX = ".corrupt"


def quarantine(path: Path) -> Path:
    """Move an unreadable data file aside to ``_NAME.corrupt`` (``.1``, ``.2``, ... if
    taken) in the same directory; returns the new path. Never deletes anything."""
    target = path.with_name(f"_{path.name}{CORRUPT_SUFFIX}")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"_{path.name}{CORRUPT_SUFFIX}.{n}")
    os.replace(path, target)
    return target


@dataclass
class FileCheck:
    """What ``check_files`` found: the ranges whose files are gone or hold less than
    recorded (to fetch again), one sentence per file, and the entries still good."""

    lost: list[Interval] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_files(
    ledger: Ledger, *, move_unreadable: bool = True, within: Interval | None = None,
    deep: bool = False,
) -> FileCheck:
    """Stat the files the ledger's manifest names; see the module docstring.

    ``within`` limits the check to files whose range meets it; ``deep`` reads every
    footer, not only those of files whose size or mtime changed (``--refetch`` does, to
    find a file damaged in place). With ``move_unreadable`` False (a dry run) an
    unreadable file is only reported.
    """
    out = FileCheck()
    for entry in ledger.files.values():
        if within is not None and (entry.end_ns <= within[0] or entry.start_ns >= within[1]):
            continue
        path = ledger.directory / entry.name
        try:
            size, mtime = stat_of(path)
        except FileNotFoundError:
            out.lost.append((entry.start_ns, entry.end_ns))
            out.notes.append(f"{entry.name} is missing (the ledger recorded {entry.rows} rows "
                             "in it); its range is fetched again")
            continue
        except OSError as exc:
            out.notes.append(f"{entry.name} cannot be checked ({exc}); it was left as it is")
            continue
        if not deep and (size, mtime) == (entry.size, entry.mtime_ns):
            continue
        try:
            now = footer_entry(path, entry.start_ns, entry.end_ns)
        except (OSError, pa.ArrowException) as exc:
            out.lost.append((entry.start_ns, entry.end_ns))
            if move_unreadable:
                try:
                    moved = quarantine(path)
                except OSError as move_exc:
                    out.notes.append(f"{entry.name} cannot be read ({exc}) nor moved aside "
                                     f"({move_exc}); move it away to fetch its range again")
                    out.lost.pop()
                    continue
                out.notes.append(f"{entry.name} cannot be read ({exc}); it was moved aside to "
                                 f"{moved.name} and its range is fetched again")
            else:
                out.notes.append(f"{entry.name} cannot be read ({exc}); its range would be "
                                 "fetched again")
            continue
        if not now.holds_at_least(entry):
            out.lost.append((entry.start_ns, entry.end_ns))
            out.notes.append(f"{entry.name} holds {now.rows} rows where the ledger recorded "
                             f"{entry.rows}; its range is fetched again")
    out.lost = normalize(out.lost)
    return out
