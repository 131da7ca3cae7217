"""What an exchange's reply says beyond its data: HTTP dates, ``Retry-After``, and the
exchange's own words in an error body. Shared by the HTTP client and the adapters."""

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


def exchange_message(body: Any, text: str) -> str:
    """The exchange's own words from an error body, in the common shapes, else the raw text.

    ``{"code":-1121,"msg":"Invalid symbol."}`` → ``Invalid symbol. (code -1121)``.
    """
    msg: Any = None
    code: Any = None
    if isinstance(body, Mapping):
        err = body.get("error")
        msg = body.get("msg") or body.get("message") or body.get("retMsg") or body.get("reason")
        if not msg and isinstance(err, Mapping):
            msg = err.get("message")
        elif not msg and isinstance(err, list) and err:
            msg = "; ".join(map(str, err))
        elif not msg and isinstance(err, str):
            msg = err
        code = body.get("code", body.get("retCode"))
    elif isinstance(body, list) and len(body) >= 3 and body[0] == "error":
        code, msg = body[1], body[2]
    if msg:
        return f"{msg} (code {code})" if code not in (None, "", 0, "0") else str(msg)
    return text.strip()[:200] or "no message"
