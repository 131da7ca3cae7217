"""What an exchange's reply holds, declared as data: where its rows sit (``Envelope``) and
how its errors read and map onto dccd's error tree (``ErrorTable``).

Paths are dotted field names into a parsed JSON body: ``result.list``, ``error.message``;
a segment of digits indexes a list (``1`` of ``["error", 11010, "..."]``) and ``*`` is the
one list-valued entry of a mapping, whatever its key (Kraken's ``result.XXBTZUSD``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dccd_cli.errors import (
    DccdError,
    ExchangeError,
    FetchError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    UnknownSymbolError,
)
from dccd_cli.net.headers import parse_http_date, parse_retry_after

__all__ = ["Envelope", "ErrorTable", "Wait", "error_text", "pick"]

# Seconds to wait before retrying a rate-limited reply, read from the reply itself.
Wait = Callable[[Mapping[str, str], Any], float | None]


def pick(body: Any, path: str) -> Any:
    """The value at ``path`` in ``body`` (see the module's docstring), or None."""
    value = body
    for part in path.split(".") if path else ():
        if isinstance(value, Mapping):
            if part == "*":
                lists = [v for v in value.values() if isinstance(v, list)]
                value = lists[0] if len(lists) == 1 else None
            else:
                value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        else:
            return None
    return value


def error_text(message: Any, code: Any) -> str:
    """An exchange's words as dccd shows them: ``Invalid symbol. (code -1121)``."""
    text = str(message or "").strip()
    if code in (None, "", 0, "0"):
        return text or "no message"
    return f"{text} (code {code})" if text else f"code {code}"


@dataclass(frozen=True)
class Envelope:
    """Where the rows of a reply sit: ``data`` (OKX), ``result.list`` (Bybit),
    ``result.*`` (Kraken), ``data.ohlc`` (Bitstamp); ``""`` for a bare list."""

    rows: str = ""

    def unwrap(self, body: Any, *, what: str, exchange: str) -> list[Any]:
        """The list of rows, or a ProtocolError naming the path that was not a list."""
        rows = pick(body, self.rows)
        if not isinstance(rows, list):
            where = f"no {self.rows} list" if self.rows else f"a {type(body).__name__}, not a list"
            raise ProtocolError(f"{what}: {where} in the reply", exchange=exchange)
        return rows


def _codes(*codes: object) -> frozenset[str]:
    return frozenset(str(c) for c in codes)


@dataclass(frozen=True)
class ErrorTable:
    """How an exchange's error replies read, and which error of dccd each one is.

    A body holds an error when its ``code`` is present and not in ``ok``, or, for a table
    without ``ok`` codes, when it has a message (``read``). Its class is, in this order:
    rate limited (HTTP 429, a code of ``rate_limited`` or a message with one of
    ``rate_limited_words``), an unknown symbol (``unknown_symbol`` codes or
    ``unknown_statuses``), a server error (``server`` codes or words, retried after
    ``server_wait``, or a status of ``busy`` retried after its wait), a refusal
    (``refused`` codes), then ``unlisted`` for any other code when set, else by HTTP
    status: 5xx a server error, a 2xx ``in_ok_reply``, anything else a refusal. A refusal
    whose message has one of ``unknown_symbol_words`` is an unknown symbol.

    Replies without an error in their body are left to the generic HTTP rules of
    ``dccd_cli.net.client`` (which read the raw text), except statuses the table has its
    own answer for (429 with ``rate_limit_wait``, ``busy``, ``unknown_statuses``). 418 is
    always the client's: a ban.
    """

    code: str | None = None
    message: tuple[str, ...] = ("msg", "message")
    ok: frozenset[str] = frozenset()
    rate_limited: frozenset[str] = frozenset()
    unknown_symbol: frozenset[str] = frozenset()
    server: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()
    rate_limited_words: tuple[str, ...] = ()
    unknown_symbol_words: tuple[str, ...] = ()
    server_words: tuple[str, ...] = ()
    unknown_statuses: frozenset[int] = frozenset()
    busy: Mapping[int, float] = field(default_factory=dict)
    # Seconds to wait after a rate limit when the reply has no Retry-After: a number, or
    # read from the reply (Bybit's reset timestamp, Kraken's "Throttled: <until>").
    rate_limit_wait: float | Wait | None = None
    server_wait: float | None = None
    unlisted: type[FetchError] | None = None
    in_ok_reply: type[FetchError] = ExchangeError

    @staticmethod
    def codes(*codes: object) -> frozenset[str]:
        """A set of codes as the table compares them (strings): ``codes(10006, 10018)``."""
        return _codes(*codes)

    def read(self, body: Any) -> tuple[Any, str] | None:
        """The (code, message) of an error body, or None when the body holds no error.
        Adapters of exchanges whose errors are shaped otherwise override this."""
        if not isinstance(body, Mapping):
            return None
        message = next((str(m) for p in self.message if (m := pick(body, p))), "")
        code = pick(body, self.code) if self.code else None
        if code is not None and code != "":
            return None if str(code) in self.ok else (code, message)
        if self.ok and self.code:
            return None  # an enveloped exchange: no code, no error of its own
        return (None, message) if message else None

    def check(self, exchange: str, status: int, headers: Mapping[str, str],
              body: Any) -> DccdError | None:
        """The error a reply is, or None for a success or the generic rules."""
        if status == 418:
            return None
        found = self.read(body)
        if found is None:
            if status == 429 and self.rate_limit_wait is not None:
                found = (None, "HTTP 429")
            elif status in self.busy or status in self.unknown_statuses:
                found = (None, f"HTTP {status}")
            else:
                return None
        code, message = found
        key = "" if code is None else str(code)
        text = error_text(message, code)
        lowered = message.lower()
        if status == 429 or key in self.rate_limited or _has(lowered, self.rate_limited_words):
            return RateLimitedError(f"rate limited: {text}",
                                    retry_after=self._rate_limit_wait(headers, body))
        if key in self.unknown_symbol or status in self.unknown_statuses:
            return UnknownSymbolError(f"{exchange}: {text}")
        if key in self.server or _has(lowered, self.server_words):
            return ServerError(f"server error: {text}",
                               retry_after=_header_wait(headers, self.server_wait))
        if status in self.busy:
            return ServerError(f"server busy: {text}",
                               retry_after=_header_wait(headers, self.busy[status]))
        kind: type[FetchError]
        if key in self.refused:
            kind = ExchangeError
        elif key and self.unlisted is not None:
            kind = self.unlisted
        elif status >= 500:
            kind = ServerError
        elif 200 <= status < 300:
            kind = self.in_ok_reply
        else:
            kind = ExchangeError
        if kind is ExchangeError and _has(lowered, self.unknown_symbol_words):
            return UnknownSymbolError(f"{exchange}: {text}")
        if kind is ServerError:
            said = f"error inside an HTTP {status} reply" if status < 500 else "server error"
            return ServerError(f"{said}: {text}", retry_after=_header_wait(headers, None))
        return kind(text)

    def _rate_limit_wait(self, headers: Mapping[str, str], body: Any) -> float | None:
        wait = self.rate_limit_wait
        if callable(wait):
            return _header_wait(headers, wait(headers, body))
        return _header_wait(headers, wait)


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(w in text for w in words)


def _header_wait(headers: Mapping[str, str], default: float | None) -> float | None:
    """The reply's Retry-After (seconds or an HTTP date, against the reply's own Date),
    else ``default``."""
    date = headers.get("date")
    now = parse_http_date(date) if date else None
    given = parse_retry_after(headers.get("retry-after"), now=time.time() if now is None else now)
    return default if given is None else given

