"""``dccd inventory``: what a dataset holds, its coverage and its gaps, drawn.

Per series: first and last timestamp, rows, files, size on disk, coverage of its range
(the span from its first ledger entry or row to its last), and its gaps, told apart:

* **no data at the exchange** — inside a fetched range (the ledger says the exchange was
  asked) but no row: a quiet market. For OHLC, bar positions of the grid without a bar;
  for trades, whole minutes without a trade (a minute is fine enough to see an illiquid
  pair's quiet stretches, and coarse enough to stay cheap over years of ticks);
* **failed** — ranges the ledger records as failed, with the error;
* **file missing** — fetched, but the file the ledger's manifest names for it is gone or
  holds less than recorded (``storage.filecheck``): never taken for a quiet market, and
  the next download or sync of the range fetches it again;
* **never fetched** — inside the series' range, in neither list.

The strip draws a series' range in a fixed number of cells, each the worst of what it
covers: ``✗`` failed, ``·`` never fetched, else by how much of it holds rows: ``█`` all,
``▒`` partly (a quiet market), ``░`` none (the exchange had no data). ``--verify``
re-reads every file (``storage.verify_series``: contract, and each file against the
ledger's manifest, missing and unrecorded files included) and checks for unfinished bars:
a bar whose close lies after the end of the ledger range it was fetched in was still
forming.

Bar positions are numbered as consecutive integers (``_Grid``), months included, so all
of this is searchsorted arithmetic on the sorted positions that hold rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from dccd_cli.errors import OutputPathError, StorageError
from dccd_cli.schema import ts_ns_column
from dccd_cli.storage import Interval, Ledger, SeriesKey, list_series, verify_series
from dccd_cli.storage.filecheck import check_files
from dccd_cli.storage.intervals import intersect, normalize, subtract, total, union
from dccd_cli.storage.layout import partition_files
from dccd_cli.storage.lock import holder_if_locked
from dccd_cli.storage.upgrade import series_dirs, stored_ledger
from dccd_cli.timeutil import DAY_NS, Span, datetime_to_ns, format_ns, json_time

MINUTE = Span.parse("1m")
MAX_LISTED = 1000  # no-data stretches listed per series in JSON (all are counted)
STRIP_CHARS = {"unicode": {"S": "█", "P": "▒", "E": "░", "X": "✗", "N": "·"},
               "ascii": {"S": "#", "P": "+", "E": "-", "X": "x", "N": "."}}
LEGEND = {"S": "stored", "P": "partly empty (quiet market)", "E": "no data at the exchange",
          "X": "failed", "N": "never fetched"}
I64 = npt.NDArray[np.int64]
_MONTHS_TO_1970 = 1970 * 12
_MONDAY_OFFSET_NS = 4 * DAY_NS  # 1970-01-01 was a Thursday


class _Grid:
    """Bar opens of a span as consecutive integers: ``index`` floors, ``open`` inverts."""

    def __init__(self, unit: Span) -> None:
        self.unit = unit
        self.step = unit.fixed_ns  # None for months
        self.offset = _MONDAY_OFFSET_NS if unit.unit == "w" else 0

    def index(self, ns: I64) -> I64:
        if self.step is not None:
            return (ns - self.offset) // self.step
        months = ns.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
        return (months + _MONTHS_TO_1970) // self.unit.count

    def floor(self, ns: int) -> int:
        return int(self.index(np.array([ns], dtype=np.int64))[0])

    def ceil(self, ns: int) -> int:
        i = self.floor(ns)
        return i if self.open(i) == ns else i + 1

    def open(self, i: int) -> int:
        if self.step is not None:
            return i * self.step + self.offset
        months = i * self.unit.count
        return datetime_to_ns(datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC))


@dataclass
class Stretch:
    """A gap: ``reason`` is "no data" (the exchange had none), "failed" or "not fetched"."""

    start_ns: int
    end_ns: int
    reason: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"start": json_time(self.start_ns), "end": json_time(self.end_ns),
                               "reason": self.reason}
        if self.error is not None:
            doc["error"] = self.error
        return doc


@dataclass
class SeriesInventory:
    """One stored series, as ``dccd inventory`` reports it."""

    key: SeriesKey
    rows: int = 0
    files: int = 0
    bytes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    start_ns: int | None = None  # the series' range: ledger and rows together
    end_ns: int | None = None
    coverage: float = 0.0  # % of the range fetched (with or without rows)
    gaps: list[Stretch] = field(default_factory=list)  # failed and never fetched, all
    no_data: list[Stretch] = field(default_factory=list)  # the first MAX_LISTED
    no_data_units: int = 0  # bars (OHLC) or minutes (trades) without data
    no_data_stretches: int = 0
    longest_no_data: Stretch | None = None
    cells: str = ""  # one state code per strip cell: S P E X N
    notes: list[str] = field(default_factory=list)
    problems: list[str] | None = None  # --verify only

    @property
    def unit(self) -> str:
        return "bar" if self.key.kind == "ohlc" else "minute"

    def drawn(self, charset: str = "unicode") -> str:
        chars = STRIP_CHARS[charset]
        return "".join(chars[c] for c in self.cells)

    def to_json(self) -> dict[str, Any]:
        def ts(ns: int | None) -> str | None:
            return None if ns is None else json_time(ns)

        doc: dict[str, Any] = {
            "kind": self.key.kind, "exchange": self.key.exchange, "symbol": self.key.symbol,
            "span": self.key.span, "first": ts(self.first_ns), "last": ts(self.last_ns),
            "rows": self.rows, "files": self.files, "bytes": self.bytes,
            "range": {"start": ts(self.start_ns), "end": ts(self.end_ns)},
            "coverage_pct": round(self.coverage, 3),
            "gaps": [g.to_json() for g in self.gaps],
            "no_data": {"unit": self.unit, "count": self.no_data_units,
                        "stretches": self.no_data_stretches,
                        "longest": self.longest_no_data.to_json() if self.longest_no_data else None,
                        "listed": [g.to_json() for g in self.no_data]},
            "strip": self.drawn(), "notes": self.notes,
        }
        if self.problems is not None:
            doc["problems"] = self.problems
        return doc


@dataclass
class Inventory:
    root: str
    series: list[SeriesInventory] = field(default_factory=list)
    verified: bool = False
    writer: str | None = None  # who holds the dataset lock now, if anyone

    @property
    def exit_code(self) -> int:
        return 1 if self.verified and any(s.problems for s in self.series) else 0

    def to_json(self) -> dict[str, Any]:
        return {"command": "inventory", "root": self.root, "verified": self.verified,
                "ok": self.exit_code == 0, "exit_code": self.exit_code,
                "error": None if self.exit_code == 0 else
                f"verify found problems in {sum(1 for s in self.series if s.problems)} series",
                "writer": self.writer,
                "legend": LEGEND, "series": [s.to_json() for s in self.series]}


def take_inventory(root: Path, *, verify: bool = False, width: int = 60) -> Inventory:
    """Scan the dataset under ``root``; with ``verify``, check every file's contract too."""
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise OutputPathError(f"no dataset at {str(root)!r}: not a directory; pass the --out of your downloads")
    holder = holder_if_locked(root)
    inv = Inventory(str(root), verified=verify,
                    writer=holder.describe() if holder is not None else None)
    for key in list_series(root):
        inv.series.append(_series(root, key, verify=verify, width=max(8, width)))
    return inv


def _read_ts(path: Path) -> I64:
    table = pq.read_table(str(path), columns=["ts"])
    return np.asarray(ts_ns_column(table).to_numpy(), dtype=np.int64)


def _series(root: Path, key: SeriesKey, *, verify: bool, width: int) -> SeriesInventory:
    inv = SeriesInventory(key)
    directory = key.dir(root)
    grid = _Grid(Span.parse(key.span) if key.span else MINUTE)
    dirs = series_dirs(root, key)  # an older dccd's span=1M too, until the next download
    try:
        ledger = stored_ledger(root, key)
    except StorageError as exc:
        inv.notes.append(str(exc))
        ledger = Ledger(directory)
    # A range whose file is gone is not stored, whatever the ledger says: never "no data".
    lost = check_files(ledger, move_unreadable=False).lost
    fetched = subtract(ledger.fetched, lost)
    failed = ledger.failed
    problems = verify_series(root, key) if verify else []
    occupied: list[I64] = []
    for _, path in (f for d in dirs for f in partition_files(key.kind, d)):
        inv.files += 1
        try:
            inv.bytes += path.stat().st_size
            ts = _read_ts(path)
        except (OSError, pa.ArrowException, KeyError) as exc:
            inv.notes.append(f"{path.name}: cannot be read ({exc})")
            continue
        if not len(ts):
            continue
        inv.rows += len(ts)
        lo, hi = int(ts.min()), int(ts.max())
        inv.first_ns = lo if inv.first_ns is None else min(inv.first_ns, lo)
        inv.last_ns = hi if inv.last_ns is None else max(inv.last_ns, hi)
        occupied.append(np.unique(grid.index(ts)))
        if verify and key.kind == "ohlc":
            problems.extend(_unfinished(path.name, ts, grid, fetched, ledger.provisional))
    occ: I64 = np.unique(np.concatenate(occupied)) if occupied else np.empty(0, np.int64)
    starts = [iv[0] for iv in [*fetched, *lost]] + [f.start_ns for f in failed]
    ends = [iv[1] for iv in [*fetched, *lost]] + [f.end_ns for f in failed]
    if inv.first_ns is not None and inv.last_ns is not None:
        starts.append(inv.first_ns)
        ends.append(grid.open(grid.floor(inv.last_ns) + 1) if key.kind == "ohlc" else inv.last_ns + 1)
    if verify:
        inv.problems = problems
    if not starts:
        return inv
    r0, r1 = min(starts), max(ends)
    inv.start_ns, inv.end_ns = r0, r1
    inv.coverage = 100.0 * total(intersect(fetched, [(r0, r1)])) / max(1, r1 - r0)
    failed_iv = normalize((f.start_ns, f.end_ns) for f in failed)
    never = subtract([(r0, r1)], union(fetched, failed_iv))
    gone = subtract(lost, failed_iv)
    inv.gaps = sorted([Stretch(f.start_ns, f.end_ns, "failed", f.error) for f in failed]
                      + [Stretch(s, e, "file missing") for s, e in gone]
                      + [Stretch(s, e, "not fetched") for s, e in subtract(never, gone)],
                      key=lambda g: g.start_ns)
    _no_data(inv, grid, occ, fetched)
    inv.cells = _cells(grid, occ, fetched, failed_iv, never, r0, r1, width, key.kind)
    return inv


def _positions(grid: _Grid, s: int, e: int, kind: str) -> tuple[int, int]:
    """The grid positions a fetched range ``[s, e)`` answers for: OHLC, the bars opening in
    it; trades, the minutes wholly inside it."""
    return grid.ceil(s), (grid.ceil(e) if kind == "ohlc" else grid.floor(e))


def _no_data(inv: SeriesInventory, grid: _Grid, occ: I64, fetched: list[Interval]) -> None:
    for s, e in fetched:
        a, b = _positions(grid, s, e, inv.key.kind)
        if b <= a:
            continue
        inside = occ[np.searchsorted(occ, a):np.searchsorted(occ, b)]
        bounds = np.concatenate(([a - 1], inside, [b]))
        gaps = np.diff(bounds) - 1  # positions missing between consecutive stored ones
        where = np.nonzero(gaps > 0)[0]
        inv.no_data_units += int(gaps.sum())
        inv.no_data_stretches += len(where)
        if not len(where):
            continue
        longest = int(where[np.argmax(gaps[where])])
        first, n = int(bounds[longest]) + 1, int(gaps[longest])
        # Compared in ns: positions of a month span differ in length.
        candidate = Stretch(grid.open(first), grid.open(first + n), "no data")
        old = inv.longest_no_data
        if old is None or candidate.end_ns - candidate.start_ns > old.end_ns - old.start_ns:
            inv.longest_no_data = candidate
        for k in where[: max(0, MAX_LISTED - len(inv.no_data))]:
            lo = int(bounds[k]) + 1
            inv.no_data.append(Stretch(grid.open(lo), grid.open(lo + int(gaps[k])), "no data"))


def _touches(intervals: list[Interval], lo: int, hi: int) -> bool:
    return bool(intersect(intervals, [(lo, hi)])) if lo < hi else False


def _cells(grid: _Grid, occ: I64, fetched: list[Interval], failed: list[Interval],
           never: list[Interval], r0: int, r1: int, width: int, kind: str) -> str:
    """One state code per cell of the strip across ``[r0, r1)``."""
    edges = [r0 + (r1 - r0) * j // width for j in range(width + 1)]
    spans = [_positions(grid, s, e, kind) for s, e in fetched]
    out: list[str] = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:  # a range narrower than the strip: repeat the previous cell
            out.append(out[-1] if out else "N")
            continue
        if _touches(failed, lo, hi):
            out.append("X")
            continue
        if _touches(never, lo, hi):
            out.append("N")
            continue
        a, b = grid.ceil(lo), grid.ceil(hi)
        if b <= a:  # the cell is inside one bar: that bar speaks for it
            a, b = grid.floor(lo), grid.floor(lo) + 1
        expected = sum(max(0, min(b, pb) - max(a, pa)) for pa, pb in spans)
        stored = int(np.searchsorted(occ, b) - np.searchsorted(occ, a))
        if expected == 0:
            out.append("S" if stored else "E")
        elif stored >= expected:
            out.append("S")
        else:
            out.append("P" if stored else "E")
    return "".join(out)


def _unfinished(name: str, ts: I64, grid: _Grid, fetched: list[Interval],
                provisional: list[Interval]) -> list[str]:
    """Bars whose close is after the end of the ledger range they were fetched in: they
    were still forming then (stored on request, or by an older dccd). Those the ledger
    marks provisional are fetched again by the next run that covers them; the others
    (an older dccd's) only by a download with ``--refetch``."""
    if not fetched or not len(ts):
        return []
    starts = np.array([s for s, _ in fetched], dtype=np.int64)
    ends = np.array([e for _, e in fetched], dtype=np.int64)
    where = np.searchsorted(starts, ts, side="right") - 1
    inside = where >= 0
    if not inside.any():
        return []
    end_of = np.where(inside, ends[np.maximum(where, 0)], np.iinfo(np.int64).max)
    inside &= ts < end_of  # rows outside the ledger are verify_series' to report
    candidates = np.nonzero(inside & (ts >= end_of - (grid.step or 31 * DAY_NS)))[0]
    bad = [(int(ts[i]), int(end_of[i])) for i in candidates
           if grid.open(grid.floor(int(ts[i])) + 1) > int(end_of[i])]
    if not bad:
        return []
    t, end = bad[0]
    marked = all(intersect(provisional, [(t0, t0 + 1)]) for t0, _ in bad)
    advice = ("the ledger marks it provisional: the next download or sync that covers it "
              "replaces it" if marked else
              "a download from that bar with --refetch replaces it")
    return [f"{name}: {len(bad)} unfinished bar(s): the bar opening {format_ns(t)} closes after "
            f"{format_ns(end)}, where the fetch that stored it ended (it was still forming); "
            + advice]
