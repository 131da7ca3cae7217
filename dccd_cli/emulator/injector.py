"""Fault injection at run time: the :class:`FaultInjector` applies the plans of
:mod:`.faults` (the grammar and what each kind does) around each venue's handler.

The server calls :meth:`FaultInjector.pick` before the venue, :meth:`~FaultInjector.reply`
for a fault that replaces the venue's answer, :meth:`~FaultInjector.alter` on the venue's
answer and :meth:`~FaultInjector.deliver` for the faults that happen on the wire.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from dccd_cli.emulator.faults import FaultPlan, FaultRule
from dccd_cli.emulator.venue import Response, Venue

__all__ = ["Fault", "FaultInjector", "InjectedFault"]

ASGIMessage = dict[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]

# Query parameters that move along a series (time bounds, cursors, sizes): pages that
# differ only in these belong to one series, whose previous page ``dup`` repeats.
_CURSOR_PARAMS = frozenset(
    "starttime endtime fromid limit since start end after before cursor from to count "
    "offset".split()
)
_SEEN_MAX = 200_000  # exact requests remembered for their occurrence counts (an LRU)
_LOG_MAX = 10_000  # injected faults kept for inspection

_CHALLENGE = (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
              b"<body>Checking your browser before accessing the API.</body></html>")


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) determined by ``parts`` (stable across runs and Pythons)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class InjectedFault:
    """A fault that was applied: which venue, kind, request and occurrence of it."""

    venue: str
    kind: str
    path: str
    query: str
    occurrence: int  # 1 = the first time this exact request was seen


@dataclass
class Fault:
    """The fault chosen for one request, and its own seeded randomness."""

    rule: FaultRule
    venue: str
    path: str
    query: str
    occurrence: int
    rng: random.Random = field(repr=False)

    @property
    def kind(self) -> str:
        return self.rule.kind

    @property
    def on_wire(self) -> bool:
        return self.rule.layer == "wire"


# uvicorn logs "ASGI callable returned without completing response." when a reply is cut
# short, which ``reset`` does on purpose; those lines (and only as many as were cut) are
# dropped so that a faulty emulator's log shows real problems only.
_CUT_MESSAGE = "ASGI callable returned without completing response."
_cuts_lock = threading.Lock()
_cuts_expected = 0


class _ExpectedCutFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        global _cuts_expected
        if record.getMessage() != _CUT_MESSAGE:
            return True
        with _cuts_lock:
            if _cuts_expected > 0:
                _cuts_expected -= 1
                return False
        return True


_CUT_FILTER = _ExpectedCutFilter()


def _expect_cut() -> None:
    global _cuts_expected
    logger = logging.getLogger("uvicorn.error")
    if _CUT_FILTER not in logger.filters:
        logger.addFilter(_CUT_FILTER)
    with _cuts_lock:
        _cuts_expected += 1


def _rows(doc: Any) -> list[Any] | None:
    """The list of rows in a data page: a top-level list, or the longest list of rows
    inside an envelope (up to two levels deep); None when there is none."""
    if isinstance(doc, list):
        return None if doc and doc[0] == "error" else doc
    best: list[Any] | None = None
    if isinstance(doc, dict):
        candidates: list[Any] = list(doc.values())
        candidates += [v for d in doc.values() if isinstance(d, dict) for v in d.values()]
        for value in candidates:
            if isinstance(value, list) and all(isinstance(r, (list, dict)) for r in value):
                if best is None or len(value) > len(best):
                    best = value
    return best


def _series_key(venue: str, path: str, query: list[tuple[str, str]]) -> tuple[object, ...]:
    return venue, path, tuple(sorted((k, v) for k, v in query
                                     if k.lower() not in _CURSOR_PARAMS))


class FaultInjector:
    """Decides, per request, which fault (if any) applies, and applies it.

    One per server. The server calls :meth:`pick` before the venue, :meth:`reply` for a
    fault that replaces the venue's answer, :meth:`alter` on the venue's answer, and
    :meth:`deliver` for the faults that happen on the wire.
    """

    def __init__(self, plans: Mapping[str, FaultPlan | str] | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(plans or {})

    def configure(self, plans: Mapping[str, FaultPlan | str]) -> None:
        """Replace every venue's plan (a plan, or its spec) and forget all counts: a fresh
        scenario. ``configure({})`` turns faults off."""
        parsed = {v: FaultPlan.parse(p) if isinstance(p, str) else p for v, p in plans.items()}
        with self._lock:
            self.plans = {v: p for v, p in parsed.items() if p}
            self._counts: dict[tuple[str, int], int] = {}
            self._requests: Counter[str] = Counter()
            self._seen: OrderedDict[tuple[str, str, str, str], int] = OrderedDict()
            self._previous: dict[tuple[object, ...], list[Any]] = {}
            self.injected: list[InjectedFault] = []
            self.counts: Counter[tuple[str, str]] = Counter()

    def __bool__(self) -> bool:
        return bool(self.plans)

    def summary(self) -> dict[str, Any]:
        """Plans, requests seen and faults injected per venue (``GET /_emulator/faults``)."""
        with self._lock:
            injected: dict[str, dict[str, int]] = {}
            for (venue, kind), n in sorted(self.counts.items()):
                injected.setdefault(venue, {})[kind] = n
            return {"plans": {v: str(p) for v, p in sorted(self.plans.items())},
                    "seed": {v: p.seed for v, p in sorted(self.plans.items())},
                    "requests": dict(sorted(self._requests.items())),
                    "injected": injected}

    # -- deciding ------------------------------------------------------------------------

    def pick(self, venue: str, method: str, path: str, query: str,
             data_page: bool = False) -> Fault | None:
        """The fault for this request, or None. Counts the request against every rule.
        ``data_page``: the venue declares ``path`` a data page (the row faults' target)."""
        plan = self.plans.get(venue)
        if not plan:
            return None
        with self._lock:
            self._requests[venue] += 1
            key = (venue, method, path, query)
            occurrence = self._seen.pop(key, 0) + 1
            self._seen[key] = occurrence
            if len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
            chosen: Fault | None = None
            for i, rule in enumerate(plan.rules):
                if not rule.matches(path, query, data_page):
                    continue
                n = self._counts[(venue, i)] = self._counts.get((venue, i), 0) + 1
                if chosen is not None or n < rule.first or (
                        rule.last is not None and n > rule.last):
                    continue
                if rule.probability < 1.0 and _unit(
                        plan.seed, venue, i, method, path, query, occurrence) >= rule.probability:
                    continue
                rng = random.Random(_unit(plan.seed, "rng", venue, i, path, query, occurrence))
                chosen = Fault(rule, venue, path, query, occurrence, rng)
            return chosen

    def _record(self, fault: Fault) -> None:
        with self._lock:
            self.counts[(fault.venue, fault.kind)] += 1
            if len(self.injected) < _LOG_MAX:
                self.injected.append(InjectedFault(fault.venue, fault.kind, fault.path,
                                                   fault.query, fault.occurrence))

    def wants_pages(self, venue: str) -> bool:
        """Whether the venue's data pages must be remembered (for ``dup``)."""
        plan = self.plans.get(venue)
        return plan is not None and any(r.kind == "dup" for r in plan.rules)

    # -- applying ------------------------------------------------------------------------

    def reply(self, fault: Fault, venue: Venue[Any], now_ms: int) -> Response | None:
        """The answer that replaces the venue's for a "reply" fault, else None."""
        rule = fault.rule
        if rule.layer != "reply":
            return None
        self._record(fault)
        if rule.kind == "5xx":
            status = int(rule.arg) if rule.arg is not None else fault.rng.choice(
                (500, 502, 503, 504))
            page = f"<html><body><h1>{status} Server Error</h1></body></html>".encode()
            return Response(status, page, content_type="text/html")
        if rule.kind in ("429", "418"):
            seconds = int(rule.value or 0)
            what = "Too many requests" if rule.kind == "429" else (
                f"IP banned until {now_ms + seconds * 1000}")
            return Response.json({"code": -1003, "msg": what, "error": what},
                                 int(rule.kind), [("Retry-After", str(seconds))])
        # error200: the venue's own words, with a success status.
        return Response.json(venue.error_in_200(), 200)

    def alter(self, fault: Fault | None, venue: str, path: str,
              query: list[tuple[str, str]], response: Response,
              data_page: bool = False) -> Response:
        """The venue's answer after a "body" or "rows" fault (and remembered for ``dup``
        when ``data_page``)."""
        remember = self.wants_pages(venue) and data_page
        if fault is not None and fault.rule.layer not in ("body", "rows"):
            fault = None  # handled by reply() or deliver()
        if response.status != 200 or (fault is None and not remember):
            return response  # a fault meant for a data page does not touch an error reply
        if fault is not None and fault.kind == "truncated" and len(response.body) > 1:
            self._record(fault)
            return Response(200, response.body[: len(response.body) // 2],
                            list(response.headers), response.content_type)
        if fault is not None and fault.kind == "malformed":
            self._record(fault)
            return Response(200, _CHALLENGE, list(response.headers), "text/html")
        try:
            doc = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            return response
        rows = _rows(doc)
        if rows is None:
            return response
        series = _series_key(venue, path, query)
        if fault is not None and fault.rule.layer == "rows":
            self._record(fault)
            if fault.kind == "empty":
                rows.clear()
            elif fault.kind == "shuffle":
                fault.rng.shuffle(rows)
            elif fault.kind == "dup":
                k = max(1, int(fault.rule.value or 1))
                with self._lock:
                    before = self._previous.get(series)
                rows[:0] = before[-k:] if before else rows[:k]
        if remember and rows:
            with self._lock:
                self._previous[series] = list(rows[-8:])  # as served, faults included
        return Response(200, orjson.dumps(doc), list(response.headers), response.content_type)

    async def deliver(self, fault: Fault, start: ASGIMessage, body: bytes, receive: Receive,
                      send: Send) -> None:
        """Send the reply the way a "wire" fault says: cut short, or late (if at all)."""
        self._record(fault)
        if fault.kind == "reset":
            # Content-Length promises the whole body; half of it comes, then the connection
            # closes (uvicorn closes it when the app returns without finishing the reply).
            await send(start)
            await send({"type": "http.response.body", "body": body[: len(body) // 2],
                        "more_body": True})
            _expect_cut()
            return
        # stall: wait until the client gives up (it disconnects) or the stall is over.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(fault.rule.value or 0.0)
        while (left := deadline - loop.time()) > 0:
            try:
                message = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                break
            if message.get("type") == "http.disconnect":
                return
        await send(start)
        await send({"type": "http.response.body", "body": body})
