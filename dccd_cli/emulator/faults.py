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

The row faults (``empty``, ``dup``, ``shuffle``) touch only data pages (the routes a venue
declares with ``data=True``: klines, candles, OHLC, trades; a rule with a ``PATH`` chooses
its own) and only 200 replies; they find "the rows" generically: a top-level JSON list (Binance, Bitfinex) or
the longest list of rows inside an envelope (OKX ``data``, Bybit ``result.list``,
Kraken ``result.<pair>``, Bitstamp ``data.ohlc``). A maintenance window — no trades and
no bars at all — is a market setting, not a fault (``EmulatorSettings.maintenance``,
``dccd emulator --maintenance``).

Deterministic: whether a probabilistic rule fires is a hash of (seed, venue, rule, the
exact request, how many times that exact request was seen before), so a run's faults do
not depend on the order in which concurrent requests arrive; ``@`` ranges count arrivals.

This module is the grammar (:class:`FaultRule`, :class:`FaultPlan`, :func:`parse_faults`);
:mod:`.injector` applies the plans to the venues' replies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["FAULT_KINDS", "FaultPlan", "FaultRule", "FaultSpecError", "parse_faults",
           "resolve_faults"]

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

    def matches(self, path: str, query: str = "", data_page: bool = False) -> bool:
        """Whether the rule applies to this request: its ``PATH`` is in the path and
        query; without one, every request, and only data pages for a row fault."""
        if self.path is not None:
            return self.path in (f"{path}?{query}" if query else path)
        return self.layer != "rows" or data_page

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
