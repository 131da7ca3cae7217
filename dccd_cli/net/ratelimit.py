"""Per-exchange request budget: a weighted, FIFO-fair token bucket fed back by the exchange.

Why not a plain token bucket that starts full? Exchanges count weight in *fixed* windows
(Binance: 1-minute windows aligned to the minute of its clock). A bucket holding a full
``capacity`` of burst, refilled at ``capacity / window``, can spend its burst at the end of
one fixed window and then a whole window's refill inside the next — about 2× capacity in
one window, which is a 429 and, repeated, a 418 ban. So this bucket keeps two promises:

1. Pacing. It refills at ``rate = min(safety·C, C − burst) / window`` with a *small* burst
   (a couple of % of C, at least the heaviest request seen). In any interval of length
   ``window`` it admits at most ``burst + rate·window ≤ C``, whatever the window's
   alignment — and the gap ``C − burst − safety·C`` absorbs latency jitter between our
   clock and the exchange's.
2. Feedback. ``observe_used`` takes the exchange's own count of the current window (the
   ``X-MBX-USED-WEIGHT-1M`` header). It includes other processes on the same IP and what
   an earlier run spent seconds ago, which our pacing cannot know. When that count plus
   what we admitted since would pass ``safety·C``, acquirers wait for the exchange's
   window to roll over. Requests still in flight when the count was taken are not in it;
   that error is at most the in-flight weight (concurrency × weight, a few dozen units),
   well inside the ``(1 − safety)·C`` margin.

Window mode (``RateLimit.counts_per_window``, Binance). An exchange that counts weight per
window — rather than draining a leaky bucket — lets a whole window's budget go at once, and
a short download (a year of 1m bars is ~1000 weight of Binance's 6000 a minute) then needs
no pacing at all. Once the exchange has reported its count (so we know what others on the
IP spent), the bucket admits a request when our own sends of the last ``window + skew``
seconds plus it stay within ``safety·C``. Requests reach the exchange within ``skew`` of
each other's latency, so every window the exchange can count — fixed at any alignment, or
sliding — then holds at most ``safety·C`` of ours; the feedback above still guards against
others' usage. Sustained, this spends ``safety·C`` per ``window + skew``, about the pacing
rate; what it gains is the first window's burst.

A wait of ``NOTIFY_WAIT_S`` or more (a 429's Retry-After, a window full of others' usage)
is told to every request then waiting that has a ``wait_listener`` (the series fetching,
so its progress can say until when it waits).

Waiters are served strictly in arrival order (one waiter holds an ``asyncio.Lock``, which
is FIFO and does not let newcomers barge), so a heavy request is never starved by light
ones. Only the head waiter sleeps, once per shortfall: CPU stays negligible at full rate.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = [
    "NOTIFY_WAIT_S", "Clock", "RateLimit", "Sleep", "TokenBucket", "bucket_for", "wait_listener",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

log = logging.getLogger("dccd.ratelimit")


@dataclass(frozen=True)
class RateLimit:
    """An exchange's request budget: ``capacity`` weight units per ``window_s`` seconds.

    ``used_weight_header`` names the response header in which the exchange reports the
    weight already used in its current window (Binance ``X-MBX-USED-WEIGHT-1M``), so the
    client can follow the exchange's own count rather than only its estimate.

    ``counts_per_window`` says the exchange counts weight per window (Binance: in each
    minute) rather than draining a leaky bucket, so a whole window's budget may be spent at
    once; the client does so only once the exchange has reported its count (``ratelimit``).
    """

    capacity: float
    window_s: float
    used_weight_header: str | None = None
    counts_per_window: bool = False

    @property
    def per_second(self) -> float:
        return self.capacity / self.window_s

# Sleeping less than this is pointless (timer granularity), and a floor guarantees progress
# when a float deadline minus a large clock value rounds to almost nothing.
_MIN_SLEEP = 1e-3
# Tolerance for float refill arithmetic, so ``tokens == need - 1e-12`` counts as enough.
_EPS = 1e-9
# How far the exchange's clock may wander against ours (whole-second Date headers, latency
# jitter, an event loop busy for seconds) before its windows are no longer believed.
_CLOCK_SLACK_S = 10.0
# Shorter waits are the pacing of a download at the rate limit: not worth telling anyone.
NOTIFY_WAIT_S = 2.0

#: Who hears of a long wait for the budget, with its length in seconds: a series sets it in
#: its task (``job.run_series``), and the tasks its paginator spawns inherit it.
wait_listener: ContextVar[Callable[[float], None] | None] = ContextVar("dccd_wait_listener", default=None)


class TokenBucket:
    """Weighted token bucket shared by all concurrent requests of one exchange.

    ``clock`` is monotonic seconds; ``sleep`` is awaited to wait (both injectable for
    tests). ``safety`` is the fraction of the exchange's budget we allow ourselves;
    ``burst_fraction`` sizes the burst relative to the capacity. ``skew_s`` (window mode
    only) is how much later than its neighbours a request may reach the exchange.
    """

    def __init__(
        self,
        rate_limit: RateLimit,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        safety: float = 0.95,
        burst_fraction: float = 0.02,
        skew_s: float = 1.0,
    ) -> None:
        if rate_limit.capacity <= 0 or rate_limit.window_s <= 0:
            raise ValueError(f"rate limit must be positive, got {rate_limit}")
        if not 0.0 < safety <= 1.0:
            raise ValueError(f"safety must be in (0, 1], got {safety}")
        self.rate_limit = rate_limit
        self.capacity = float(rate_limit.capacity)
        self.window_s = float(rate_limit.window_s)
        self.safety = safety
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._burst_floor = burst_fraction * self.capacity
        self.burst = 0.0
        self.rate = 0.0
        self._set_burst(max(self._burst_floor, 1.0))
        self._tokens = self.burst
        self._last = clock()
        self._paused_until = -math.inf
        self._listeners: list[Callable[[float], None]] = []  # of the requests waiting now
        self._head_until = -math.inf  # when the head waiter's sleep ends
        # The exchange's view: its count in its current window, when that window ends (on
        # our clock), its index (to drop reports of a window that already rolled over), and
        # what we admitted since that count was taken.
        self._srv_used = 0.0
        self._srv_end: float | None = None
        self._srv_index: int | None = None
        self._since_report = 0.0
        # Replies overtake each other by at most the weight in flight; a count that falls by
        # more than this margin means the exchange's window rolled over.
        self._rollover_drop = (1.0 - safety) * self.capacity
        # Window mode: our own admissions of the last ``horizon`` seconds, oldest first.
        self.windowed = rate_limit.counts_per_window
        self.horizon = self.window_s + skew_s
        self._sent: deque[tuple[float, float]] = deque()
        self._sent_sum = 0.0
        self._reported = False
        # Smallest and largest (exchange clock − ours) seen, to notice a clock that stalls.
        self._offsets = (math.inf, -math.inf)
        self._clock_untrusted = False
        # Counters for the run summary.
        self.acquired = 0.0
        self.waited_s = 0.0

    @property
    def threshold(self) -> float:
        """The most of the exchange's own count we let a window reach."""
        return self.safety * self.capacity

    def _set_burst(self, burst: float) -> None:
        # A burst above half the capacity would leave too little to pace; heavier requests
        # are admitted on debt instead (no exchange has one request worth half its budget).
        self.burst = min(burst, self.capacity / 2)
        self.rate = min(self.safety * self.capacity, self.capacity - self.burst) / self.window_s

    async def acquire(self, weight: float = 1) -> None:
        """Wait until ``weight`` units may be spent now, then spend them. FIFO-fair."""
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        if weight > self.burst and self.burst < self.capacity / 2:
            self._set_burst(weight)
        listener = wait_listener.get()
        if listener is not None:
            self._listeners.append(listener)
            ahead = self._head_until - self._clock()
            if ahead >= NOTIFY_WAIT_S:  # queued behind a long sleep: waits at least as long
                listener(ahead)
        try:
            async with self._lock:
                while True:
                    now = self._clock()
                    wait = self._wait_time(weight, now)
                    if wait <= 0:
                        break
                    wait = max(wait, _MIN_SLEEP)
                    self.waited_s += wait
                    self._head_until = now + wait
                    if wait >= NOTIFY_WAIT_S:  # everyone queued behind waits as long
                        for hear in dict.fromkeys(self._listeners):
                            hear(wait)
                    await self._sleep(wait)
                self._tokens -= weight
                self._since_report += weight
                self.acquired += weight
                if self.windowed:
                    self._sent.append((now, weight))
                    self._sent_sum += weight
        finally:
            if listener is not None:
                self._listeners.remove(listener)

    def _wait_time(self, weight: float, now: float) -> float:
        """Seconds until ``weight`` may go; <= 0 means now. Refills as a side effect."""
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        if self._srv_end is not None and now >= self._srv_end:
            # The exchange's window rolled over: its count restarts from zero.
            self._srv_used = 0.0
            self._since_report = 0.0
            self._srv_end = None
            if self._srv_index is not None:
                self._srv_index += 1
        wait = self._paused_until - now
        if self.windowed and self._reported:
            wait = max(wait, self._window_wait(weight, now))
        else:
            need = min(weight, self.burst)
            if self._tokens < need - _EPS:
                wait = max(wait, (need - self._tokens) / self.rate)
        if (
            self._srv_end is not None
            and self._srv_used + self._since_report + weight > self.threshold
        ):
            wait = max(wait, self._srv_end - now)
        return wait

    def _window_wait(self, weight: float, now: float) -> float:
        """Window mode: seconds until our sends of the last ``horizon`` leave room for
        ``weight`` under the threshold (0: now)."""
        sent = self._sent
        while sent and sent[0][0] <= now - self.horizon:
            self._sent_sum -= sent.popleft()[1]
        if not sent:
            self._sent_sum = 0.0  # no float residue from many additions and removals
            return 0.0  # even a request heavier than the threshold goes, alone
        excess = self._sent_sum + weight - self.threshold
        if excess <= _EPS:
            return 0.0
        freed = 0.0
        for t, w in sent:  # the oldest sends leave the horizon first
            freed += w
            if freed >= excess - _EPS:
                return t + self.horizon - now
        return sent[-1][0] + self.horizon - now  # heavier than the threshold: once alone

    def observe_used(self, used: float, window_s: float, server_now: float | None) -> None:
        """Take the exchange's own count of weight used in its current window.

        ``server_now`` is the exchange's clock (Unix seconds, e.g. from the ``Date`` header)
        when it reported ``used``; windows are aligned to multiples of ``window_s`` on it.
        Without it the window's alignment is unknown and the bucket assumes, to be safe,
        that the window only just started.
        """
        now = self._clock()
        self._reported = True
        server_now = self._trusted(server_now, now, window_s)
        rolled = self._srv_used - used > self._rollover_drop
        if server_now is not None:
            index = math.floor(server_now / window_s)
            if self._srv_index is not None and index < self._srv_index:
                return  # a late reply counted in a window that has already rolled over
            if index == self._srv_index and used < self._srv_used and not rolled:
                return  # replies overtook each other; the higher count is the newer one
            if index == self._srv_index and rolled:
                # The count restarted though the clock (in whole seconds) does not show a
                # new window yet: it ends a window from now at the latest.
                self._srv_end = now + window_s
            else:
                # The Date header has whole seconds and the reply took time to reach us, so
                # the window really ends sooner than this: waiting that long is safe.
                self._srv_end = now + ((index + 1) * window_s - server_now)
            self._srv_index = index
        elif self._srv_end is None or rolled:
            self._srv_end = now + window_s  # the window began before this reply, not earlier
        elif used < self._srv_used:
            return  # replies overtook each other
        self._srv_used = float(used)
        self._since_report = 0.0
        if used > self.threshold:
            log.debug("exchange reports %.0f of %.0f weight used", used, self.capacity)

    def _trusted(self, server_now: float | None, now: float, window_s: float) -> float | None:
        """``server_now`` if the exchange's clock keeps pace with ours, else None.

        A clock that stands still or jumps (an emulator's frozen market clock) would place
        the exchange's count in the wrong window — and end that window too early, which
        lets a burst in while the exchange still counts the old one.
        """
        if server_now is None or self._clock_untrusted:
            return None
        offset = server_now - now
        self._offsets = (min(self._offsets[0], offset), max(self._offsets[1], offset))
        if self._offsets[1] - self._offsets[0] <= _CLOCK_SLACK_S:
            return server_now
        log.debug("the exchange's clock does not keep pace with ours; windows assumed to "
                  "end a whole window after their first report")
        self._clock_untrusted = True
        if self._srv_end is not None:
            self._srv_end = max(self._srv_end, now + window_s)
        return None

    def pause_until(self, t: float) -> None:
        """Block every acquirer until monotonic time ``t`` (e.g. on 429 Retry-After)."""
        self._paused_until = max(self._paused_until, t)

    def pause_for(self, seconds: float) -> None:
        """Block every acquirer for ``seconds`` from now, on this bucket's clock."""
        self.pause_until(self._clock() + max(0.0, seconds))

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def __repr__(self) -> str:
        return (
            f"TokenBucket(capacity={self.capacity:g}/{self.window_s:g}s, "
            f"rate={self.rate:g}/s, burst={self.burst:g})"
        )


# One bucket per exchange per event loop: asyncio primitives belong to the loop they were
# first used on, and a process runs one loop per command (tests run one per test).
_buckets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, TokenBucket]] = (
    weakref.WeakKeyDictionary()
)
_buckets_no_loop: dict[str, TokenBucket] = {}


def bucket_for(exchange: str, rate_limit: RateLimit) -> TokenBucket:
    """The bucket every request to ``exchange`` in this process shares (created on first use).

    Several symbols or jobs of one command then share one budget, as the exchange sees them
    all from one IP. The first caller's ``rate_limit`` wins.
    """
    try:
        table = _buckets.setdefault(asyncio.get_running_loop(), {})
    except RuntimeError:
        table = _buckets_no_loop
    bucket = table.get(exchange)
    if bucket is None:
        bucket = table[exchange] = TokenBucket(rate_limit)
    elif bucket.rate_limit != rate_limit:
        log.debug("bucket for %s already exists with %s; keeping it", exchange, bucket.rate_limit)
    return bucket
