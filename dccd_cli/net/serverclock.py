"""What every reply's headers tell the client besides its data: the exchange's clock (the
``Date`` header) and how much of its request budget is spent (its usage header, fed to the
exchange's ``TokenBucket``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from dccd_cli.net.headers import parse_http_date
from dccd_cli.net.ratelimit import Clock, RateLimit, TokenBucket

__all__ = ["ServerClock", "UsageFeedback"]

log = logging.getLogger("dccd.http")

_WINDOW_RE = re.compile(r"-(\d+)([smhd])$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ServerClock:
    """The exchange's clock, from the ``Date`` header of the latest reply."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        #: The exchange's clock (ns, whole seconds) at the latest reply, or None.
        self.last_date_ns: int | None = None
        self._seen_at: float | None = None  # our monotonic clock then
        self._memo: tuple[str, float | None] = ("", None)  # the last Date header, parsed

    def observe(self, headers: Mapping[str, str]) -> float | None:
        """Record the reply's ``Date``; the server's time it says (Unix s), or None."""
        date = headers.get("date")
        if not date:
            return None
        if date == self._memo[0]:
            server_now = self._memo[1]  # the same second as the last reply's
        else:
            server_now = parse_http_date(date)
            self._memo = (date, server_now)
        if server_now is not None:
            ns = int(server_now) * 1_000_000_000
            # Replies may arrive out of order; the exchange's clock never goes back.
            if self.last_date_ns is None or ns >= self.last_date_ns:
                self.last_date_ns = ns
                self._seen_at = self._clock()
        return server_now

    def now_ns(self) -> int | None:
        """The exchange's clock now, extrapolated from the last ``Date`` header (or None)."""
        if self.last_date_ns is None or self._seen_at is None:
            return None
        return self.last_date_ns + int((self._clock() - self._seen_at) * 1e9)


class UsageFeedback:
    """Feeds the exchange's count of what it has spent (``RateLimit.used_weight_header``)
    to its bucket, which then never asks for more than the exchange still grants."""

    def __init__(self, exchange: str, rate_limit: RateLimit | None, bucket: TokenBucket | None) -> None:
        self._exchange = exchange
        self._name = rate_limit.used_weight_header if rate_limit is not None else None
        self._bucket = bucket if self._name else None
        self.window_s = self.window_of(rate_limit)

    @staticmethod
    def window_of(rate_limit: RateLimit | None) -> float:
        """The window the usage header counts over: its name tells it
        (X-MBX-USED-WEIGHT-1M: one minute), else the rate limit's own window."""
        if rate_limit is None:
            return 60.0
        match = _WINDOW_RE.search(rate_limit.used_weight_header or "")
        if match:
            return int(match.group(1)) * _UNIT_S[match.group(2).lower()]
        return rate_limit.window_s

    def observe(self, headers: Mapping[str, str], server_now: float | None) -> None:
        """Read the usage header of a reply, if the exchange sends one."""
        if self._bucket is None or self._name is None:
            return
        raw = headers.get(self._name)
        if raw is None:
            return
        try:
            used = float(raw)
        except ValueError:
            log.debug("%s: unreadable %s header %r", self._exchange, self._name, raw)
            return
        self._bucket.observe_used(used, self.window_s, server_now)
