"""What a reply, or a failure to get one, means: the data, or one of ``dccd_cli.errors``.

``read_reply`` applies the adapter's ``check`` hook first (Kraken's errors arrive with HTTP
200, Bitfinex's as ``["error", 11010, ...]``), then the generic rules: 2xx → the data
(an unparsable or empty body is a ``ProtocolError``); 418 → ``BannedError``; 429 →
``RateLimitedError``; 5xx → ``ServerError``; other 4xx → ``ExchangeError`` with the
exchange's own message. ``transport_errors`` maps the httpx exceptions a transport raises
(and the client's total timeout): httpx exceptions never go further than the client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx
import orjson

from dccd_cli.errors import (
    BannedError,
    DccdError,
    ExchangeError,
    FetchError,
    NetworkError,
    ProtocolError,
    RateLimitedError,
    ServerError,
)
from dccd_cli.net.headers import error_message, parse_retry_after

__all__ = ["Check", "Decode", "Response", "Retryable", "read_reply", "transport_errors"]

#: An adapter's reply inspector: (status, headers, parsed JSON or None) -> an error or None.
Check = Callable[[int, Mapping[str, str], Any], DccdError | None]

#: A caller's fast reader of a 2xx body: its data when the body is exactly in the shape the
#: caller expects, else None (then the body is parsed as JSON, as without it).
Decode = Callable[[bytes], Any]


@dataclass(frozen=True, slots=True)
class Response:
    """A successful reply: status, headers (case-insensitive), parsed JSON and the URL; or,
    when the request's ``decode`` read the body, its result in ``decoded`` (``json`` None)."""

    status: int
    headers: Mapping[str, str]
    json: Any
    url: str
    decoded: Any = None


class Retryable(Exception):
    """A failed attempt whose request may succeed if sent again: ``error`` says why."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(error)
        self.error = error


def _caused(err: FetchError, exc: BaseException) -> FetchError:
    """``err`` with ``exc`` as its cause, as ``raise err from exc`` would set it."""
    err.__cause__ = exc
    err.__suppress_context__ = True
    return err


class transport_errors:  # noqa: N801 -- used as a context manager, named as one
    """``with transport_errors(where, timeout):`` turns what sending a request raises into
    dccd's errors: ``Retryable`` for what another attempt may cure (no reply within
    ``timeout``, a connection refused or reset, a reply cut short or undecodable), the
    ``NetworkError`` itself for requests that cannot be sent at all (a bad URL, a scheme no
    transport speaks, endless redirects). A class, not a generator: it wraps every request."""

    __slots__ = ("_timeout", "_where")

    def __init__(self, where: Mapping[str, Any], timeout: float) -> None:
        self._where = where
        self._timeout = timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            return
        where = self._where
        err: FetchError
        if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
            err = NetworkError(f"no reply within {self._timeout:g} s", **where)
            raise Retryable(_caused(err, exc)) from exc
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.TooManyRedirects)):
            raise NetworkError(f"cannot request: {exc}", **where) from exc
        if isinstance(exc, httpx.DecodingError):
            err = ProtocolError(f"undecodable reply: {exc}", **where)
            raise Retryable(_caused(err, exc)) from exc
        if isinstance(exc, httpx.TransportError):
            # Connection refused or reset, reply cut short mid-body (RemoteProtocolError), ...
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise Retryable(_caused(NetworkError(f"network error: {text}", **where), exc)) from exc
        if isinstance(exc, (httpx.HTTPError, httpx.InvalidURL)):
            raise NetworkError(f"cannot request: {exc}", **where) from exc


def read_reply(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    url: str,
    exchange: str,
    hook: Check | None,
    decode: Decode | None,
    server_now: float | None,
    wall_now: float,
) -> Response | FetchError:
    """The ``Response`` of a reply, or the error to act on; raises what the check hook
    returns that is no ``FetchError`` (e.g. ``UnknownSymbolError``: never retried).

    ``url`` is the URL as shown; ``server_now`` the server's time by its ``Date`` header,
    ``wall_now`` ours (``Retry-After`` dates are read against the server's when known).
    """
    where: dict[str, Any] = {"exchange": exchange, "url": url, "status": status}
    parsed: Any = None
    decoded: Any = None
    bad_json: orjson.JSONDecodeError | None = None
    if decode is not None and 200 <= status < 300 and body:
        decoded = decode(body)
    if decoded is None:
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as exc:
            bad_json = exc
    if hook is not None:
        verdict = hook(status, headers, parsed if decoded is None else decoded)
        if verdict is not None:
            if not isinstance(verdict, FetchError):
                raise verdict
            for name, value in where.items():
                if getattr(verdict, name, None) is None:
                    setattr(verdict, name, value)
            return verdict
    retry_after = parse_retry_after(headers.get("retry-after"),
                                    now=server_now if server_now is not None else wall_now)
    if 200 <= status < 300:
        if bad_json is not None or not body:
            detail = f"invalid JSON ({bad_json})" if bad_json else "an empty body"
            err = ProtocolError(f"reply with {detail}", **where)
            return _caused(err, bad_json) if bad_json else err
        return Response(status, headers, parsed, url, decoded)
    if status == 418:
        until = "for an unknown time"
        if retry_after is not None:
            ends = datetime.fromtimestamp(wall_now + retry_after, tz=UTC)
            until = f"until {ends:%Y-%m-%d %H:%M:%S} UTC ({retry_after:.0f} s)"
        message = f"{exchange} has banned this IP {until}; no more requests are sent to it"
        return BannedError(message, retry_after=retry_after, **where)
    text = error_message(parsed, body.decode("utf-8", "replace"))
    if status == 429:
        return RateLimitedError(f"rate limited: {text}", retry_after=retry_after, **where)
    if status >= 500:
        return ServerError(f"server error: {text}", retry_after=retry_after, **where)
    return ExchangeError(text, **where)
