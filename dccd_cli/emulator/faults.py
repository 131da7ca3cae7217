"""Fault injection: the emulator misbehaves the way real exchanges, proxies and networks do.

A venue-agnostic layer the server applies around each venue's handler, configured per
venue by :class:`FaultPlan` (``EmulatorSettings.faults``) or a spec string
(``dccd emulator --faults``)::

    SPEC  := GROUP [";" GROUP]...          GROUP := [VENUE "="] RULE ["," RULE]...
    RULE  := KIND ["(" ARG ")"] [":" PROBABILITY] ["@" FIRST ["-" [LAST]]] ["/" PATH]

    5xx:0.05,reset:0.02,slow:0.01      every venue: 5 % 5xx, 2 % resets, 1 % stalls
    binance=429@3-7/aggTrades          Binance's 3rd to 7th aggTrades requests answer 429
    binance=418(900)@10                its 10th request gets a 15-minute ban
    okx=error200:0.1;kraken=empty@2-   one group per venue

``@FIRST-LAST`` counts, from 1, the requests the rule matches (its ``PATH`` filter, a
substring of the venue-relative path and query such as ``/klines`` or
``/klines?symbol=ETHUSDT``); ``@N-`` is "from the N-th on". Without ``@`` every matching request is a candidate, and ``:P`` keeps a fraction of
them. When several rules fire for one request the first one in the spec wins.

=========  =====================================================================  =========
kind       what the client sees                                                   ARG
=========  =====================================================================  =========
5xx        HTTP 500/502/503/504 (a gateway's page), venue not consulted           status
429        HTTP 429 with ``Retry-After`` (alias ``ratelimit``)                    s (1)
418        HTTP 418, an IP ban, with ``Retry-After`` (alias ``ban``)              s (600)
error200   HTTP 200 carrying the venue's own error body (Kraken ``{"error":[…]}``,
           OKX ``code``, Bybit ``retCode``, Binance ``{"code":-1003,…}``)
reset      headers and half the body, then the connection is closed
stall      nothing for ARG seconds, or until the client gives up (alias ``slow``)  s (120)
truncated  HTTP 200 whose body stops halfway: a complete message, invalid JSON
malformed  HTTP 200 with an HTML page (a proxy's challenge) instead of JSON
empty      the page's rows removed                                                —
dup        the previous page's last ARG rows prepended: rows repeated across a    rows (3)
           page boundary
shuffle    the page's rows in random order                                        —
=========  =====================================================================  =========

The row faults (``empty``, ``dup``, ``shuffle``) touch only data endpoints (paths about
klines, candles, OHLC, trades; a rule with a ``PATH`` chooses its own) and only 200
replies; they find "the rows" generically: a top-level JSON list (Binance, Bitfinex) or
the longest list of rows inside an envelope (OKX ``data``, Bybit ``result.list``,
Kraken ``result.<pair>``, Bitstamp ``data.ohlc``). A maintenance window — no trades and
no bars at all — is a market setting, not a fault (``EmulatorSettings.maintenance``,
``dccd emulator --maintenance``).

Deterministic: whether a probabilistic rule fires is a hash of (seed, venue, rule, the
exact request, how many times that exact request was seen before), so a run's faults do
not depend on the order in which concurrent requests arrive; ``@`` ranges count arrivals.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from dccd_cli.emulator.venue import Response

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "FaultRule",
    "FaultSpecError",
    "InjectedFault",
    "parse_faults",
    "resolve_faults",
]

log = logging.getLogger("dccd.emulator.faults")

ASGIMessage = dict[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]

# Canonical kind -> (layer, default ARG). Layers: "reply" replaces the venue's answer;
# "body" rewrites a 200 body; "rows" rewrites the rows of a data page; "wire" misbehaves
# while sending.
FAULT_KINDS: dict[str, tuple[str, float | None]] = {
    "5xx": ("reply", None),
    "429": ("reply", 1.0),
    "418": ("reply", 600.0),
    "error200": ("reply", None),
    "reset": ("wire", None),
    "stall": ("wire", 120.0),
    "truncated": ("body", None),
    "malformed": ("body", None),
    "empty": ("rows", None),
    "dup": ("rows", 3.0),
    "shuffle": ("rows", None),
}
_ALIASES = {"slow": "stall", "ban": "418", "ratelimit": "429", "500": "5xx"}

_RULE_RE = re.compile(
    r"""^(?P<kind>[a-z0-9]+)
        (?:\((?P<arg>[0-9]+(?:\.[0-9]+)?)\))?
        (?::(?P<prob>[0-9]*\.?[0-9]+))?
        (?:@(?P<first>[0-9]+)(?:(?P<dash>-)(?P<last>[0-9]+)?)?)?
        (?P<path>/\S*)?$""",
    re.VERBOSE,
)
_VENUE_RE = re.compile(r"^([a-z0-9_]+)=(.*)$", re.DOTALL)
# Row faults only make sense on data pages; market lists, clocks and pings are left alone.
DATA_PATH_RE = re.compile(r"(?i)kline|candle|ohlc|trade|bucketed|transactions")
# Query parameters that move along a series (time bounds, cursors, sizes): pages that
# differ only in these belong to one series, whose previous page ``dup`` repeats.
_CURSOR_PARAMS = frozenset(
    "starttime endtime fromid limit since start end after before cursor from to count "
    "offset".split()
)
_SEEN_MAX = 200_000  # exact requests remembered for their occurrence counts (an LRU)
_LOG_MAX = 10_000  # injected faults kept for inspection

# The error bodies that each exchange sends inside an HTTP 200 (docs/exchanges.md);
# a venue class may provide its own with an ``error_in_200()`` method.
ERRORS_IN_200: dict[str, Any] = {
    "binance": {"code": -1003, "msg": "Too much request weight used; current limit is 6000 "
                "request weight per 1 MINUTE. Please use WebSocket Streams for live "
                "updates to avoid polling the API."},
    "kraken": {"error": ["EService:Unavailable"]},
    "okx": {"code": "50001", "msg": "Service temporarily unavailable. Please try again later.",
            "data": []},
    "bybit": {"retCode": 10016, "retMsg": "Internal system error.", "result": {},
              "retExtInfo": {}},
    "bitfinex": ["error", 20060, "maintenance"],
    "coinbase": {"message": "Internal server error"},
    "bitstamp": {"status": "error", "reason": "Internal error", "code": "API0000"},
    "bitmex": {"error": {"message": "Service unavailable", "name": "HTTPError"}},
}
_GENERIC_ERROR = {"error": "internal error"}
_CHALLENGE = (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
              b"<body>Checking your browser before accessing the API.</body></html>")


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed; the message says what is accepted."""


@dataclass(frozen=True)
class FaultRule:
    """One rule: ``kind`` fires on matching requests ``first..last`` with ``probability``."""

    kind: str
    probability: float = 1.0
    first: int = 1
    last: int | None = None
    path: str | None = None
    arg: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FaultSpecError(
                f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)} "
                f"(aliases: {', '.join(f'{a}={k}' for a, k in _ALIASES.items())})")
        if not 0.0 < self.probability <= 1.0:
            raise FaultSpecError(f"fault probability {self.probability} is not in (0, 1]")
        if self.first < 1 or (self.last is not None and self.last < self.first):
            raise FaultSpecError(f"fault request range {self.first}-{self.last} is empty; "
                                 "requests are counted from 1")
        if self.kind == "5xx" and self.arg is not None and not 500 <= self.arg <= 599:
            raise FaultSpecError(f"5xx status {self.arg:g} is not in 500..599")

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        m = _RULE_RE.match(text.strip())
        if m is None:
            raise FaultSpecError(
                f"fault rule {text.strip()!r} is not KIND[(ARG)][:PROBABILITY][@FIRST[-[LAST]]]"
                "[/PATH], e.g. 5xx:0.05, 429@3-7/aggTrades, stall(40)@2")
        kind = _ALIASES.get(m["kind"], m["kind"])
        first = int(m["first"]) if m["first"] else 1
        if m["first"] and not m["dash"]:
            last: int | None = first  # "@5": the 5th request only
        else:
            last = int(m["last"]) if m["last"] else None
        return cls(kind=kind, probability=float(m["prob"]) if m["prob"] else 1.0,
                   first=first, last=last, path=m["path"] or None,
                   arg=float(m["arg"]) if m["arg"] else None)

    @property
    def layer(self) -> str:
        return FAULT_KINDS[self.kind][0]

    @property
    def value(self) -> float | None:
        """ARG, or the kind's default."""
        return self.arg if self.arg is not None else FAULT_KINDS[self.kind][1]

    def matches(self, path: str, query: str = "") -> bool:
        if self.path is not None:
            return self.path in (f"{path}?{query}" if query else path)
        return self.layer != "rows" or DATA_PATH_RE.search(path) is not None

    def __str__(self) -> str:
        text = self.kind + (f"({self.arg:g})" if self.arg is not None else "")
        if self.probability < 1.0:
            text += f":{self.probability:g}"
        if self.first != 1 or self.last is not None:
            text += f"@{self.first}" if self.last == self.first else (
                f"@{self.first}-{self.last if self.last is not None else ''}")
        return text + (self.path or "")


@dataclass(frozen=True)
class FaultPlan:
    """The rules of one venue, in priority order, and the seed of their randomness."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 0

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> FaultPlan:
        """``"5xx:0.05,reset@3"`` (no venue prefix) -> a plan."""
        items = [t for t in text.split(",") if t.strip()]
        return cls(tuple(FaultRule.parse(t) for t in items), seed)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __str__(self) -> str:
        return ",".join(map(str, self.rules))


def parse_faults(specs: str | Iterable[str], venues: Iterable[str], seed: int = 0,
                 ) -> dict[str, FaultPlan]:
    """Spec strings (``--faults``, repeatable) -> a plan per venue.

    A group without ``VENUE=`` applies to every venue in ``venues``; groups add up, in
    order, so ``"5xx:0.1"`` then ``"binance=429@3"`` gives Binance both rules.
    """
    known = list(venues)
    texts = [specs] if isinstance(specs, str) else list(specs)
    rules: dict[str, list[FaultRule]] = {}
    for text in texts:
        for group in (g.strip() for g in text.split(";")):
            if not group:
                continue
            m = _VENUE_RE.match(group)
            targets = known
            if m is not None:
                if m[1] not in known:
                    raise FaultSpecError(f"faults for unknown venue {m[1]!r}; venues: "
                                         f"{', '.join(sorted(known))}")
                targets, group = [m[1]], m[2]
            plan = FaultPlan.parse(group)
            for venue in targets:
                rules.setdefault(venue, []).extend(plan.rules)
    return {v: FaultPlan(tuple(r), seed) for v, r in rules.items() if r}


def resolve_faults(faults: Mapping[str, FaultPlan | str] | str | None, venues: Iterable[str],
             seed: int) -> dict[str, FaultPlan]:
    """``EmulatorSettings.faults`` in any of its accepted forms -> a plan per venue."""
    known = list(venues)
    if faults is None:
        return {}
    if isinstance(faults, str):
        return parse_faults(faults, known, seed)
    out: dict[str, FaultPlan] = {}
    for venue, plan in faults.items():
        if venue not in known:
            raise FaultSpecError(f"faults for unknown venue {venue!r}; venues: "
                                 f"{', '.join(sorted(known))}")
        out[venue] = FaultPlan.parse(plan, seed) if isinstance(plan, str) else plan
    return {v: p for v, p in out.items() if p}


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

    def pick(self, venue: str, method: str, path: str, query: str) -> Fault | None:
        """The fault for this request, or None. Counts the request against every rule."""
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
                if not rule.matches(path, query):
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

    def reply(self, fault: Fault, venue: Any, now_ms: int) -> Response | None:
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
        make = getattr(venue, "error_in_200", None)
        body = make() if callable(make) else ERRORS_IN_200.get(fault.venue, _GENERIC_ERROR)
        return Response.json(body, 200)

    def alter(self, fault: Fault | None, venue: str, path: str,
              query: list[tuple[str, str]], response: Response) -> Response:
        """The venue's answer after a "body" or "rows" fault (and remembered for ``dup``)."""
        remember = self.wants_pages(venue) and DATA_PATH_RE.search(path) is not None
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
