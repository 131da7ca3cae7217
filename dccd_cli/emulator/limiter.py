"""The emulated venues' rate limits, per client key: fixed windows of request weight with
escalation to bans (:class:`WeightLimiter`), and continuously refilled token buckets
(:class:`TokenBuckets`).

Both run on real monotonic time, never on the market clock: a test that freezes or
advances the market's 'now' must not reset or stretch the rate limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple


class Verdict(Enum):
    OK = "ok"
    LIMITED = "limited"  # over the window's weight: HTTP 429 on most venues
    BANNED = "banned"  # kept sending while limited: HTTP 418 on Binance


@dataclass
class Decision:
    """What the limiter says about one request."""

    verdict: Verdict
    used: int  # weight used in the current window, this request included when admitted
    retry_after_s: int  # whole seconds to wait (0 when admitted)
    banned_until: float = 0.0  # monotonic time the ban lifts (BANNED only)


@dataclass
class _State:
    window: int = -1
    used: int = 0
    rejected: int = 0
    banned_until: float = 0.0


class WeightLimiter:
    """``limit`` weight per ``window_s``; more than ``ban_after`` rejected requests in a
    window ban the client for ``ban_s`` (``ban_after=None``: never ban).

    Windows are aligned on multiples of ``window_s`` since the limiter was created, like an
    exchange's per-minute windows aligned on the wall clock."""

    def __init__(self, limit: int, window_s: float, *, ban_after: int | None = None,
                 ban_s: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        if limit <= 0 or window_s <= 0:
            raise ValueError("rate limit and window must be positive")
        self.limit = limit
        self.window_s = window_s
        self.ban_after = ban_after
        self.ban_s = ban_s
        self._clock = clock
        self._origin = clock()
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def reset(self) -> None:
        with self._lock:
            self._states.clear()

    def used(self, key: str) -> int:
        """Weight used by ``key`` in the current window."""
        with self._lock:
            st = self._states.get(key)
            now = self._clock()
            return st.used if st is not None and st.window == self._window(now) else 0

    def _window(self, now: float) -> int:
        return int((now - self._origin) // self.window_s)

    def charge(self, key: str, weight: int) -> Decision:
        """Admit (and count) a request of ``weight``, or say why not."""
        with self._lock:
            now = self._clock()
            st = self._states.setdefault(key, _State())
            if st.banned_until > now:
                return Decision(Verdict.BANNED, st.used, math.ceil(st.banned_until - now),
                                st.banned_until)
            w = self._window(now)
            if w != st.window:
                st.window, st.used, st.rejected = w, 0, 0
            if st.used + weight <= self.limit:
                st.used += weight
                return Decision(Verdict.OK, st.used, 0)
            st.rejected += 1
            if self.ban_after is not None and st.rejected > self.ban_after:
                st.banned_until = now + self.ban_s
                return Decision(Verdict.BANNED, st.used, math.ceil(self.ban_s), st.banned_until)
            window_end = self._origin + (w + 1) * self.window_s
            return Decision(Verdict.LIMITED, st.used, max(1, math.ceil(window_end - now)))


class Take(NamedTuple):
    """What a token bucket says about one request."""

    admitted: bool
    tokens: float  # left in the bucket after this request (below 0: a penalized debt)


class TokenBuckets:
    """Per-key token buckets: at most ``capacity`` tokens, refilled continuously at ``rate``
    a second; a request spends ``cost`` and is refused when fewer are left.

    One class for what venues describe in different words: Coinbase's "10 requests per
    second, bursts up to 15", BitMEX's counter that "refills continuously", and Kraken's
    call counter that decays (the counter is ``capacity - tokens``). ``penalize``: a
    refused request spends too, into debt, so a client that keeps calling stays locked
    out longer (Kraken's "or possibly longer if calls continue").
    """

    def __init__(self, capacity: float, rate: float, *, penalize: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate, self.penalize = capacity, rate, penalize
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, cost: float = 1.0) -> Take:
        """Spend ``cost`` tokens of ``key`` if it has them (or always, when penalizing)."""
        with self._lock:
            now = self._clock()
            tokens, at = self._state.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            admitted = tokens >= cost
            if admitted or self.penalize:
                tokens -= cost
            self._state[key] = (tokens, now)
            return Take(admitted, tokens)

    def reset(self) -> None:
        with self._lock:
            self._state.clear()
