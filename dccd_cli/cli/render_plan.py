"""A dry run's plan for people: per series the ranges and what fetching them would cost,
per exchange the totals (``--dry-run`` of ``dccd ohlc``, ``dccd trades`` and ``dccd sync``;
``--json`` prints the same figures from ``results.Estimate``)."""

from __future__ import annotations

from dccd_cli.run.results import Estimate, SeriesResult
from dccd_cli.timeutil import format_ns

__all__ = ["exchange_line", "seconds", "series_line"]

_HOW = {
    "ids": "exact: trade ids at both ends",
    "counted": "exact: one page held them all",
    "stored": "at the rate of the stored days",
}


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def size(n: int) -> str:
    """Bytes as a person reads them: ``980 B``, ``33.4 kB``, ``8.6 MB``."""
    if n < 1000:
        return f"{n} B"
    value = n / 1000
    for unit in ("kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def seconds(sec: float) -> str:
    if sec < 0.1:
        return "< 0.1 s"
    if sec < 90:
        return f"{sec:.1f} s"
    return f"{sec / 60:.0f} min" if sec < 5400 else f"{sec / 3600:.1f} h"


def fetched_ranges(s: SeriesResult) -> str:
    """The ranges a series fetched (or plans to), the first three and how many more."""
    if not s.fetched:
        return "nothing (all stored)"
    shown = ", ".join(f"{format_ns(a)}..{format_ns(b)}" for a, b in s.fetched[:3])
    return shown + (f" and {len(s.fetched) - 3} more" if len(s.fetched) > 3 else "")


def _rows(est: Estimate, noun: str) -> str:
    if est.at_least:
        return f"{noun}s unknown (none stored, and the exchange could not be sampled)"
    if est.how == "sampled":
        spread = ""
        if est.rows_low is not None and est.rows_high is not None and est.rows_low != est.rows_high:
            spread = f"; {est.rows_low:,}..{est.rows_high:,} at the lowest and highest rate seen"
        return f"~{_count(est.rows, noun)} (sampled{spread})"
    how = _HOW.get(est.how)
    return f"{'' if est.exact else '~'}{_count(est.rows, noun)}" + (f" ({how})" if how else "")


def _cost(est: Estimate) -> str:
    floor = ">= " if est.at_least else ""
    return (f"{floor}{_count(est.requests, 'request')} (weight {est.weight:,}), "
            f"{'' if est.exact else '~'}{size(est.bytes)}, about {seconds(est.seconds)}")


def series_line(s: SeriesResult) -> str:
    """One series of the plan: what it would fetch, and its cost (or why it has none)."""
    head = f"{s.label}: {fetched_ranges(s)}"
    if s.error:
        return f"{head}; FAILED: {s.error}"
    est = s.estimate
    if est is None or not s.fetched:
        return head
    line = f"{head}; {_rows(est, 'bar' if s.span else 'trade')}, {_cost(est)}"
    if est.probes:
        line += f"; counting them took {_count(est.probes, 'request')}"
    return line


def exchange_line(name: str, est: Estimate) -> str:
    """One exchange's series together, and the requests the plan itself sent it."""
    return (f"{name}: {_cost(est)} at its rate limit; the plan itself sent it "
            f"{_count(est.probes, 'request')}")
