"""Fixed-window request-weight limiting with escalation to bans, per client key.

Windows are measured in real monotonic time, never on the market clock: a test that
freezes or advances the market's 'now' must not reset or stretch the rate limit.
Windows are aligned on multiples of ``window_s`` since the limiter was created, like an
exchange's per-minute windows aligned on the wall clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


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
    window ban the client for ``ban_s`` (``ban_after=None``: never ban)."""

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
