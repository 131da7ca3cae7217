"""What a reply says beyond its data: HTTP dates, ``Retry-After``, and the words of an
error body no adapter has read. Shared by the HTTP client and the exchange SDK."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any


def parse_http_date(value: str) -> float | None:
    """Unix seconds of an RFC 7231 HTTP-date (IMF-fixdate, RFC 850 or asctime), else None."""
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:  # the asctime form carries no zone; HTTP dates are always GMT
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds, or an HTTP-date vs ``now``."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        when = parse_http_date(value)
        return None if when is None else max(0.0, when - now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def error_message(body: Any, text: str) -> str:
    """The words of an error reply that no adapter's check has read, else its raw text.

    Each exchange's own error shapes are its adapter's (``ErrorTable`` in
    ``dccd_cli.exchange.replies``, consulted through the client's ``check``); only the
    plain JSON object ``{"code": -1121, "msg": "Invalid symbol."}`` or ``{"message": ...}``
    is read here: ``Invalid symbol. (code -1121)``.
    """
    if isinstance(body, Mapping):
        msg, code = body.get("msg") or body.get("message"), body.get("code")
        if isinstance(msg, str) and msg:
            return f"{msg} (code {code})" if code not in (None, "", 0, "0") else msg
    return text.strip()[:200] or "no message"
