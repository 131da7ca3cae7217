"""Result objects: what a command did, for one renderer to print for people or as JSON.

``MarketsResult`` is frozen; a run's results (``RunResult``, ``SyncResult`` and their
series) are filled in as the run goes, and are the caller's once returned."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dccd_cli.errors import FailedPiece, PartialDownloadError
from dccd_cli.exchange.adapter import Market
from dccd_cli.timeutil import json_time


@dataclass
class FailedSpan:
    start_ns: int
    end_ns: int
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"start": json_time(self.start_ns), "end": json_time(self.end_ns), "error": self.error}


@dataclass
class Gap:
    """A range asked for that is still not stored after the run: ``reason`` is "failed"
    (with the error) or "not fetched" (e.g. the exchange banned us before reaching it)."""

    start_ns: int
    end_ns: int
    reason: str
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"start": json_time(self.start_ns), "end": json_time(self.end_ns),
                "reason": self.reason, "error": self.error}


@dataclass
class Estimate:
    """What a download would cost (``--dry-run``), for one series or one exchange's series.

    ``requests`` the run would send, their ``weight``, and the ``seconds`` they take at the
    exchange's rate limit (exchanges run at once; the series of one share its budget);
    ``rows`` it would store (OHLC: the bars asked; an exchange that skips empty bars
    stores fewer) and the Parquet ``bytes`` they take. ``how`` says where the rows come
    from: ``bars`` (the bars asked: exact), ``ids`` (consecutive trade ids at both ends:
    exact), ``counted`` (one page held the whole range: exact), ``sampled`` (a few pages
    over the range: an estimate, ``rows_low``..``rows_high`` from the lowest and highest
    rate a page saw), ``stored`` (the rate of the newest stored days), ``unknown`` (trades
    with nothing to tell the rate from: ``at_least``, the requests are a floor, the rows
    unknown); for an exchange whose series differ, ``exact`` if each is, else ``mixed``.
    ``probes``: requests the estimate itself sent (for an exchange, every request of the
    dry run: its market list and clock too).
    """

    requests: int = 0
    weight: int = 0
    seconds: float = 0.0
    rows: int = 0
    bytes: int = 0
    how: str = "bars"
    rows_low: int | None = None
    rows_high: int | None = None
    probes: int = 0
    at_least: bool = False

    @property
    def exact(self) -> bool:
        return self.how in ("bars", "ids", "counted", "exact")

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "weight": self.weight,
                "seconds": round(self.seconds, 1), "rows": self.rows, "bytes": self.bytes,
                "how": self.how, "exact": self.exact, "rows_low": self.rows_low,
                "rows_high": self.rows_high, "probes": self.probes, "at_least": self.at_least}


@dataclass
class SeriesResult:
    """One series (exchange, symbol, kind, span) of one run.

    ``start_ns``/``end_ns`` is the range asked; ``fetched`` the parts of it requested this
    run (what the ledger lacked, plus the overlap a sync re-fetches); ``gaps`` what of the
    range is still not stored afterwards; ``empty_bars`` (OHLC) how many bar positions in
    the fetched ranges the exchange had no bar for (a quiet market, not a gap).
    """

    exchange: str
    symbol: str
    native_symbol: str | None  # None when the exchange was not asked (a remembered ban)
    kind: str
    span: str | None
    start_ns: int
    end_ns: int
    rows_added: int = 0
    rows_written: int = 0
    requests: int = 0
    files: list[str] = field(default_factory=list)
    already_stored: bool = False
    failed: list[FailedSpan] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    job: str | None = None
    fetched: list[tuple[int, int]] = field(default_factory=list)
    retries: int = 0
    rate_limited: int = 0
    empty_bars: int | None = None
    gaps: list[Gap] = field(default_factory=list)
    estimate: Estimate | None = None  # a dry run's: what fetching ``fetched`` would cost

    @property
    def ok(self) -> bool:
        return not self.failed and self.error is None

    @property
    def label(self) -> str:
        tail = f" {self.span}" if self.span else ""
        return f"{self.exchange} {self.symbol} {self.kind}{tail}"

    def to_json(self) -> dict[str, Any]:
        return {
            **({"job": self.job} if self.job is not None else {}),
            "exchange": self.exchange,
            "symbol": self.symbol,
            "native_symbol": self.native_symbol,
            "kind": self.kind,
            "span": self.span,
            "start": json_time(self.start_ns),
            "end": json_time(self.end_ns),
            "rows_added": self.rows_added,
            "rows_written": self.rows_written,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "fetched": [{"start": json_time(a), "end": json_time(b)} for a, b in self.fetched],
            "empty_bars": self.empty_bars,
            "gaps": [g.to_json() for g in self.gaps],
            "files": self.files,
            "already_stored": self.already_stored,
            "failed": [f.to_json() for f in self.failed],
            "error": self.error,
            "notes": self.notes,
            **({"estimate": self.estimate.to_json()} if self.estimate is not None else {}),
        }


def failed_pieces(series: list[SeriesResult]) -> list[FailedPiece]:
    """Every failed range of ``series``, and each series that failed whole (its error)."""
    pieces: list[FailedPiece] = []
    for s in series:
        pieces += [FailedPiece(s.label, json_time(f.start_ns), json_time(f.end_ns), f.error)
                   for f in s.failed]
        if s.error is not None and not s.failed:
            pieces.append(FailedPiece(s.label, None, None, s.error))
    return pieces


def raise_partial(pieces: list[FailedPiece], summary: str | None) -> None:
    """Raise ``PartialDownloadError`` naming every piece in ``pieces``; nothing when empty."""
    if not pieces:
        return
    lines = [f"{label} {start}..{end}: {error}" if start is not None else f"{label}: {error}"
             for label, start, end, error in pieces]
    raise PartialDownloadError("\n".join([summary or f"{len(pieces)} pieces not fetched", *lines]),
                               failed=tuple(pieces))


def incomplete(series: list[SeriesResult], unplanned: int = 0) -> str | None:
    """The ``error`` of a summary: None when every series was fetched, else which were not
    (the series' own entries say why)."""
    bad = [s.label for s in series if not s.ok]
    parts = [f"{len(bad)} of {len(series)} series not complete: {', '.join(bad)}"] if bad else []
    if unplanned:
        parts.append(f"{unplanned} job{'s' if unplanned > 1 else ''} could not be planned")
    return "; ".join(parts) or None


@dataclass
class RunResult:
    command: str
    out: str
    series: list[SeriesResult] = field(default_factory=list)
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    dry_run: bool = False
    estimate: Estimate | None = None  # dry run: the exchange's series together

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 0 if all(s.ok for s in self.series) else 1

    def raise_for_failures(self) -> None:
        """Raise ``PartialDownloadError`` naming every range not fetched (each series'
        failed ranges, and every series that failed whole); return when all was fetched."""
        raise_partial(failed_pieces(self.series), incomplete(self.series))

    def to_json(self) -> dict[str, Any]:
        """The object ``dccd ohlc``/``trades --json`` prints."""
        doc = {
            "command": self.command,
            "out": self.out,
            "ok": self.exit_code == 0,
            "exit_code": self.exit_code,
            "error": incomplete(self.series),
            "seconds": round(self.seconds, 3),
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "series": [s.to_json() for s in self.series],
        }
        if self.dry_run:
            doc["dry_run"] = True
            doc["estimate"] = self.estimate.to_json() if self.estimate is not None else None
        return doc


@dataclass
class JobFailure:
    """A job (or part of one) that could not even be planned: the exchange's market list
    or clock could not be read, so its series are not known."""

    job: str
    exchange: str
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "exchange": self.exchange, "error": self.error}


@dataclass
class SyncResult:
    """What ``dccd sync`` did (or, with ``dry_run``, would do). ``config`` is the job
    file, or None for jobs given as Python objects (``dccd_cli.sync(jobs=...)``)."""

    config: str | None
    outs: list[str] = field(default_factory=list)
    dry_run: bool = False
    series: list[SeriesResult] = field(default_factory=list)
    failures: list[JobFailure] = field(default_factory=list)
    exchanges: dict[str, Estimate] = field(default_factory=dict)  # dry run only
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 0 if not self.failures and all(s.ok for s in self.series) else 1

    @property
    def rows_added(self) -> int:
        return sum(s.rows_added for s in self.series)

    def raise_for_failures(self) -> None:
        """Raise ``PartialDownloadError`` naming every range not fetched, every series that
        failed whole and every job that could not be planned; return when all was fetched."""
        pieces = failed_pieces(self.series)
        pieces += [FailedPiece(f"job {f.job!r} ({f.exchange})", None, None, f.error) for f in self.failures]
        raise_partial(pieces, incomplete(self.series, len(self.failures)))

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.series)

    def to_json(self) -> dict[str, Any]:
        """The object ``dccd sync --json`` prints."""
        series = [s.to_json() for s in self.series]
        doc: dict[str, Any] = {
            "command": "sync",
            "config": self.config,
            "outs": self.outs,
            "dry_run": self.dry_run,
            "ok": self.exit_code == 0,
            "exit_code": self.exit_code,
            "error": incomplete(self.series, len(self.failures)),
            "seconds": round(self.seconds, 3),
            "rows_added": self.rows_added,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "series": series,
            "failures": [f.to_json() for f in self.failures],
        }
        if self.dry_run:
            doc["exchanges"] = {k: v.to_json() for k, v in self.exchanges.items()}
        return doc


@dataclass(frozen=True)
class MarketsResult:
    """What ``dccd markets`` found: the exchange's markets (all, or those ``pattern``
    stands for), sorted by unified symbol."""

    exchange: str
    pattern: str | None
    markets: list[Market] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "markets",
            "exchange": self.exchange,
            "pattern": self.pattern,
            "ok": True,
            "exit_code": 0,
            "error": None,
            "markets": [
                {"symbol": m.symbol, "native_symbol": m.native, "base": m.base, "quote": m.quote,
                 "listed": json_time(m.listed_ns) if m.listed_ns is not None else None}
                for m in self.markets
            ],
        }
