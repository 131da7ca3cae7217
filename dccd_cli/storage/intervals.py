"""Interval algebra on sorted, merged lists of half-open ``[start_ns, end_ns)`` ranges.

What the coverage ledger, the writer and the planners compute with: ``normalize`` makes a
list canonical (sorted, overlapping and touching ranges joined, empty ones dropped), and
``union``, ``subtract`` and ``intersect`` take and give canonical lists. ``FailedInterval``
is a range with the error that failed it; ``subtract_failed`` and ``join_failed`` keep a
list of them canonical.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

Interval = tuple[int, int]


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, merged (overlapping and touching ranges joined), empty ranges dropped."""
    out: list[Interval] = []
    for s, e in sorted(iv for iv in intervals if iv[0] < iv[1]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def union(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """``a`` ∪ ``b``, normalized."""
    return normalize([*a, *b])


def subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """``a`` minus ``b``; both normalized. Linear in ``len(a) + len(b)``."""
    out: list[Interval] = []
    j = 0
    for s, e in a:
        cur = s
        # Skip subtrahends entirely left of this range; they cannot touch later ones either.
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < e:
            bs, be = b[k]
            if bs > cur:
                out.append((cur, bs))
            cur = max(cur, be)
            if cur >= e:
                break
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """``a`` ∩ ``b``; both normalized."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s = max(a[i][0], b[j][0])
        e = min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return normalize(out)


def total(intervals: Iterable[Interval]) -> int:
    """Total length covered by normalized ``intervals``."""
    return sum(e - s for s, e in intervals)


class FailedInterval(NamedTuple):
    """A range that could not be fetched, with the error that said why."""

    start_ns: int
    end_ns: int
    error: str


def subtract_failed(
    failed: Sequence[FailedInterval], b: Sequence[Interval]
) -> list[FailedInterval]:
    """The parts of ``failed`` outside ``b`` (normalized), each keeping its error."""
    out: list[FailedInterval] = []
    for f in failed:
        out.extend(FailedInterval(s, e, f.error) for s, e in subtract([(f.start_ns, f.end_ns)], b))
    return out


def join_failed(failed: Iterable[FailedInterval]) -> list[FailedInterval]:
    """Sort, and join touching entries that carry the same error (keeps the file short)."""
    out: list[FailedInterval] = []
    for f in sorted(failed):
        if out and out[-1].end_ns == f.start_ns and out[-1].error == f.error:
            out[-1] = FailedInterval(out[-1].start_ns, f.end_ns, f.error)
        else:
            out.append(f)
    return out
