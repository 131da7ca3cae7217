"""The one network boundary of dccd: an httpx client with retries, rate limits and bans.

One ``AsyncHTTPClient`` per (exchange, base URL) is shared, reference-counted, by every
job of a command, so they share connections and — through ``ratelimit.bucket_for`` — one
request budget. Each request:

1. waits for its weight from the exchange's ``TokenBucket``;
2. sends ``GET base_url + path`` (total timeout per attempt; TLS always verified) —
   straight to dccd's transport when nothing calls for httpx's client (``_send``);
3. feeds the bucket the exchange's usage header and records the ``Date`` header;
4. reads a 2xx body with the caller's ``decode`` if it has one (Binance's pages straight
   into columns), else as JSON;
5. asks the adapter's ``check`` hook whether the reply is an error in disguise (Kraken's
   errors arrive with HTTP 200, Bitfinex's as ``["error", 11010, ...]``), then applies the
   generic rules: 2xx → the data; 429 → wait Retry-After with the whole exchange paused, not
   counted as a retry; 418 → ``BannedError`` now and for every later request, of this
   run and (``dccd_cli.net.bans``) of later runs until the ban ends; 5xx,
   network errors, unparsable 2xx bodies → exponential backoff with full jitter; other
   4xx → ``ExchangeError`` with the exchange's own message.

httpx exceptions never leave this module: they become the ``dccd_cli.errors`` tree here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

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
    UsageError,
)
from dccd_cli.net import bans
from dccd_cli.net.headers import error_message, parse_http_date, parse_retry_after
from dccd_cli.net.ratelimit import Clock, RateLimit, Sleep, TokenBucket, bucket_for
from dccd_cli.net.transport import StreamTransport, make_transport, proxy_configured
from dccd_cli.net.urls import PlainURL, PlainURLs, full_url, query_pairs, redact

__all__ = [
    "AsyncHTTPClient",
    "Check",
    "Decode",
    "HTTPStats",
    "Response",
    "env_options",
    "series_stats",
]

log = logging.getLogger("dccd.http")

#: An adapter's reply inspector: (status, headers, parsed JSON or None) -> an error or None.
Check = Callable[[int, Mapping[str, str], Any], DccdError | None]

#: A caller's fast reader of a 2xx body: its data when the body is exactly in the shape the
#: caller expects, else None (then the body is parsed as JSON, as without it).
Decode = Callable[[bytes], Any]

_USER_AGENT = "dccd/0.1 (+bulk historical market data)"
_WINDOW_RE = re.compile(r"-(\d+)([smhd])$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: A plain reply read without httpx's client: status, headers, body.
_Plain = tuple[int, httpx.Headers, bytes]
#: Reply headers that need httpx's client: a cookie to keep, a body to decompress.
_NOT_PLAIN = frozenset({b"set-cookie", b"content-encoding"})
_Table = dict[tuple[str, str], "AsyncHTTPClient"]


#: Environment variables that tune every shared client — for slow links, and for tests that
#: want a failure to be quick: seconds per attempt, retries of a failed request, and the
#: base of the exponential backoff between them (seconds).
ENV_OPTIONS: dict[str, tuple[str, type[int] | type[float]]] = {
    "DCCD_HTTP_TIMEOUT": ("timeout", float),
    "DCCD_HTTP_RETRIES": ("max_retries", int),
    "DCCD_HTTP_BACKOFF": ("backoff_base", float),
}


def env_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Client options set through ``ENV_OPTIONS``; a bad value is a ``UsageError``."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for var, (name, kind) in ENV_OPTIONS.items():
        raw = env.get(var, "").strip()
        if not raw:
            continue
        try:
            value: float = kind(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (name == "timeout" and value == 0):
            unit = "a whole number" if kind is int else "a positive number of seconds"
            raise UsageError(f"{var}={raw!r} is not valid; give {unit}")
        out[name] = value
    return out


def _caused(err: FetchError, exc: BaseException) -> FetchError:
    """``raise err from exc``, for an error that is raised later by the retry loop."""
    err.__cause__ = exc
    err.__suppress_context__ = True
    return err


@dataclass(frozen=True, slots=True)
class Response:
    """A successful reply: status, headers (case-insensitive), parsed JSON and the URL; or,
    when the request's ``decode`` read the body, its result in ``decoded`` (``json`` None)."""

    status: int
    headers: Mapping[str, str]
    json: Any
    url: str
    decoded: Any = None


@dataclass(slots=True)
class HTTPStats:
    """Counters for the run summary."""

    requests: int = 0  # attempts sent, retries included
    retries: int = 0  # backoff retries (network, 5xx, unparsable bodies)
    rate_limited: int = 0  # waits on 429 or an exchange's own rate-limit reply
    bytes_received: int = 0  # bytes off the wire (compressed, as transferred)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


#: Counters of the series being fetched, besides the client's own. The client is shared by
#: every series of an exchange, so its stats cannot tell them apart; a series sets this in
#: its task (``job.run_series``) and the tasks its paginator spawns inherit it.
series_stats: ContextVar[HTTPStats | None] = ContextVar("dccd_series_stats", default=None)

_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Table] = (
    weakref.WeakKeyDictionary()
)


class AsyncHTTPClient:
    """GETs JSON from one exchange, within its rate limit, retrying what is worth retrying.

    Share it with ``async with AsyncHTTPClient.shared(exchange, base_url, rate_limit)``;
    construct it directly (``transport``, ``sleep``, ``clock`` injected) in tests.
    """

    def __init__(
        self,
        exchange: str,
        base_url: str,
        rate_limit: RateLimit | None = None,
        *,
        bucket: TokenBucket | None = None,
        check: Check | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_rate_limit_waits: int = 50,
        headers: Mapping[str, str] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.exchange = exchange
        auth: httpx.BasicAuth | None = None
        parsed = httpx.URL(base_url)
        if parsed.userinfo:
            # Credentials in the base URL go into an Authorization header, never into a
            # request URL: httpx logs request URLs as they are, and errors would show them.
            auth = httpx.BasicAuth(parsed.username, parsed.password)
            base_url = redact(parsed)
        self.base_url = base_url.rstrip("/")
        self.rate_limit = rate_limit
        if bucket is None and rate_limit is not None:
            bucket = TokenBucket(rate_limit, clock=clock, sleep=sleep)
        self.bucket = bucket
        self.check = check
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_rate_limit_waits = max_rate_limit_waits
        self._sleep = sleep
        self._clock = clock
        self._wall = wall_clock
        self._jitter = jitter
        used = transport if transport is not None else make_transport()
        self._client = httpx.AsyncClient(
            transport=used,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json", **(headers or {})},
            follow_redirects=True,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            auth=auth,
        )
        # Plain requests skip httpx's client — its request and response objects, auth,
        # cookie and redirect flows cost more CPU than our transport's whole exchange — and
        # go to our transport directly with the very headers httpx would send. httpx still
        # handles all else: credentials, proxies, other transports (tests' mocks), and any
        # reply that is not a plain 2xx (redirects, cookies, compressed bodies, errors).
        self._direct: StreamTransport | None = None
        if isinstance(used, StreamTransport) and auth is None and not proxy_configured():
            self._direct = used
        self._heads: dict[tuple[str, str, int], bytes] = {}  # request headers, per origin
        self._plain_urls = PlainURLs()  # for the direct path
        self._date_memo: tuple[str, float | None] = ("", None)  # the last Date header, parsed
        self.stats = HTTPStats()
        #: The exchange's clock (ns, whole seconds) from the Date header of the latest reply.
        self.last_server_date_ns: int | None = None
        self._date_seen_at: float | None = None
        self._usage_window_s = self._window_of(rate_limit)
        self._ban: BannedError | None = None
        self._ban_until: float | None = None  # monotonic; None with a ban = until further notice
        self._ban_remembered = False
        if (earlier := bans.active(exchange, self.base_url, now=wall_clock())) is not None:
            # An earlier run was banned and the ban still holds: nothing is sent before it
            # ends, as asking would only lengthen it (``dccd_cli.net.bans``).
            self._ban = BannedError(earlier.refusal(), exchange=exchange)
            self._ban_until = clock() + (earlier.until_s - wall_clock())
            self._ban_remembered = True
        self._refs = 0
        # Where this client is registered while shared (the table of its event loop).
        self._shared_in: tuple[_Table, tuple[str, str]] | None = None

    @staticmethod
    def _window_of(rate_limit: RateLimit | None) -> float:
        # The header name tells its window (X-MBX-USED-WEIGHT-1M: one minute).
        if rate_limit is None:
            return 60.0
        match = _WINDOW_RE.search(rate_limit.used_weight_header or "")
        if match:
            return int(match.group(1)) * _UNIT_S[match.group(2).lower()]
        return rate_limit.window_s

    # -- sharing ---------------------------------------------------------------------

    @classmethod
    async def acquire(
        cls, exchange: str, base_url: str, rate_limit: RateLimit | None = None, **opts: Any
    ) -> AsyncHTTPClient:
        """The shared client of (exchange, base_url), created on first use; ``release`` it.

        Options of the first acquirer win. Unless ``bucket=`` is given, the client uses the
        exchange's process-wide bucket (``ratelimit.bucket_for``), shared across base URLs.
        """
        # Per event loop: connections and asyncio primitives belong to the loop that made them.
        table = _shared.setdefault(asyncio.get_running_loop(), {})
        key = (exchange, base_url.rstrip("/"))
        client = table.get(key)
        if client is None:
            for name, value in env_options().items():
                opts.setdefault(name, value)
            if "bucket" not in opts and rate_limit is not None:
                opts["bucket"] = bucket_for(exchange, rate_limit)
            client = table[key] = cls(exchange, base_url, rate_limit, **opts)
            client._shared_in = (table, key)
        client._refs += 1
        return client

    async def release(self) -> None:
        """Give back a shared reference; the last one closes the connections."""
        self._refs -= 1
        if self._refs > 0:
            return
        if self._shared_in is not None:
            table, key = self._shared_in
            if table.get(key) is self:
                del table[key]  # before awaiting: a new acquirer now gets a fresh client
            self._shared_in = None
        await self.aclose()

    @classmethod
    @asynccontextmanager
    async def shared(
        cls, exchange: str, base_url: str, rate_limit: RateLimit | None = None, **opts: Any
    ) -> AsyncIterator[AsyncHTTPClient]:
        """``async with AsyncHTTPClient.shared(...) as client``: acquire, then release."""
        client = await cls.acquire(exchange, base_url, rate_limit, **opts)
        try:
            yield client
        finally:
            await client.release()

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- requests --------------------------------------------------------------------

    async def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        weight: int = 1,
        check: Check | None = None,
    ) -> Any:
        """GET ``base_url + path`` and return the parsed JSON body."""
        return (await self.get(path, params, weight=weight, check=check)).json

    async def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        weight: int = 1,
        check: Check | None = None,
        decode: Decode | None = None,
    ) -> Response:
        """GET ``base_url + path`` (or an absolute URL) and return the whole reply.

        ``check`` overrides the client's hook for this request. ``decode`` reads a 2xx body
        before any JSON parsing (``Response.decoded``); when it returns None the body is
        parsed and checked as usual. A body it reads is data in the caller's exact shape,
        which no error reply has: the check hook sees it as ``parsed``, in place of the
        JSON. Raises a ``FetchError`` once retries, or rate-limit waits, are exhausted.
        """
        target = path if "://" in path else self.base_url + path
        url: httpx.URL | PlainURL | None = None
        if params and "?" not in target:
            pairs = query_pairs(params)
            if self._direct is not None:
                url = self._plain_urls.make(target, pairs)
            if url is None:
                url = httpx.URL(target, params=pairs)  # as below, with one parse less
        else:
            url = httpx.URL(target)
            if params:
                url = url.copy_merge_params(query_pairs(params))
        shown = url.shown if isinstance(url, PlainURL) else redact(url)
        hook = check if check is not None else self.check
        retries = waits = 0
        while True:
            self._raise_if_banned(shown)
            if self.bucket is not None:
                await self.bucket.acquire(weight)
                self._raise_if_banned(shown)  # the ban may have come while we queued
            response, err = await self._attempt(url, shown, hook, decode)
            if response is not None:
                return response
            assert err is not None
            if isinstance(err, BannedError):
                self._ban_on(err)
                raise err
            if isinstance(err, RateLimitedError):
                waits += 1
                self.stats.rate_limited += 1
                if (mine := series_stats.get()) is not None:
                    mine.rate_limited += 1
                if waits > self.max_rate_limit_waits:
                    err.args = (f"{err.args[0]} (still rate limited after {waits - 1} waits)",)
                    raise err
                delay = err.retry_after
                if not delay:  # absent, or 0 — which would have us hammer the exchange
                    delay = self._backoff(min(waits - 1, 10))
                log.info("%s: rate limited; all requests wait %.1f s: %s",
                         self.exchange, delay, shown)
                if self.bucket is not None:
                    self.bucket.pause_for(delay)  # everyone waits, not just this request
                else:
                    await self._sleep(delay)
                continue
            if isinstance(err, (NetworkError, ServerError, ProtocolError)):
                if retries >= self.max_retries:
                    err.args = (f"{err.args[0]} (gave up after {retries} retries)",)
                    raise err
                delay = self._backoff(retries)
                if err.retry_after is not None:
                    delay = max(delay, err.retry_after)
                retries += 1
                self.stats.retries += 1
                if (mine := series_stats.get()) is not None:
                    mine.retries += 1
                log.info("%s: %s; retry %d/%d in %.2f s", self.exchange, err, retries,
                         self.max_retries, delay)
                await self._sleep(delay)
                continue
            raise err

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt))."""
        return self._jitter() * min(self.backoff_cap, self.backoff_base * 2.0**attempt)

    async def _attempt(
        self, url: httpx.URL | PlainURL, shown: str, hook: Check | None, decode: Decode | None = None
    ) -> tuple[Response | None, FetchError | None]:
        """One request: a reply, or the error to act on; raises errors not worth retrying."""
        self.stats.requests += 1
        if (mine := series_stats.get()) is not None:
            mine.requests += 1
        where: dict[str, Any] = {"exchange": self.exchange, "url": shown}
        started = self._clock()
        try:
            # httpx's timeout is per phase (connect, each read); this bounds the whole attempt.
            async with asyncio.timeout(self.timeout):
                sent = await self._send(url)
        except (TimeoutError, httpx.TimeoutException) as exc:
            return None, _caused(NetworkError(f"no reply within {self.timeout:g} s", **where), exc)
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.TooManyRedirects) as exc:
            raise NetworkError(f"cannot request: {exc}", **where) from exc
        except httpx.DecodingError as exc:
            return None, _caused(ProtocolError(f"undecodable reply: {exc}", **where), exc)
        except httpx.TransportError as exc:
            # Connection refused or reset, reply cut short mid-body (RemoteProtocolError), ...
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return None, _caused(NetworkError(f"network error: {text}", **where), exc)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise NetworkError(f"cannot request: {exc}", **where) from exc

        reply: httpx.Response | None = None
        if isinstance(sent, tuple):
            status, headers, body = sent
            self.stats.bytes_received += len(body)
        else:
            reply = sent
            status, headers, body = reply.status_code, reply.headers, reply.content
            # Wire bytes when the transport counted them (compressed), else the body's length.
            self.stats.bytes_received += reply.num_bytes_downloaded or len(body)
        server_now = self._observe(headers)
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
        log.debug(
            "GET %s -> %d, %d bytes, %.0f ms",
            shown, status, len(body), (self._clock() - started) * 1e3,
        )
        where["status"] = status
        if hook is not None:
            verdict = hook(status, headers, parsed if decoded is None else decoded)
            if verdict is not None:
                if not isinstance(verdict, FetchError):
                    raise verdict  # e.g. UnknownSymbolError: a usage error, never retried
                for name, value in where.items():
                    if getattr(verdict, name, None) is None:
                        setattr(verdict, name, value)
                return None, verdict
        now = server_now if server_now is not None else self._wall()
        retry_after = parse_retry_after(headers.get("retry-after"), now=now)
        if 200 <= status < 300:
            if bad_json is not None or not body:
                detail = f"invalid JSON ({bad_json})" if bad_json else "an empty body"
                err = ProtocolError(f"reply with {detail}", **where)
                return None, _caused(err, bad_json) if bad_json else err
            # ``shown`` is the URL asked, as shown; httpx's reply has its own (after redirects).
            final = shown if reply is None else redact(reply.url)
            return Response(status, headers, parsed, final, decoded), None
        if status == 418:
            until = "for an unknown time"
            if retry_after is not None:
                ends = datetime.fromtimestamp(self._wall() + retry_after, tz=UTC)
                until = f"until {ends:%Y-%m-%d %H:%M:%S} UTC ({retry_after:.0f} s)"
            message = f"{self.exchange} has banned this IP {until}; no more requests are sent to it"
            return None, BannedError(message, retry_after=retry_after, **where)
        raw_text = reply.text if reply is not None else body.decode("utf-8", "replace")
        if status == 429:
            text = error_message(parsed, raw_text)
            return None, RateLimitedError(f"rate limited: {text}", retry_after=retry_after, **where)
        if status >= 500:
            text = error_message(parsed, raw_text)
            return None, ServerError(f"server error: {text}", retry_after=retry_after, **where)
        return None, ExchangeError(error_message(parsed, raw_text), **where)

    async def _send(self, url: httpx.URL | PlainURL) -> httpx.Response | _Plain:
        """GET ``url``: a plain 2xx reply as (status, headers, body) when it went straight
        to our transport, else httpx's response."""
        direct = self._direct
        if direct is None or url.scheme not in ("http", "https") or self._client.is_closed:
            return await self._client.get(full_url(url))
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = (url.scheme, url.host, port)
        head = self._heads.get(origin)
        if head is None:
            # Exactly what httpx sends (Host, Accept, Accept-Encoding, Connection,
            # User-Agent, ...), in its order; fixed per origin while no cookie is kept.
            request = self._client.build_request("GET", full_url(url))
            head = self._heads[origin] = b"".join(k + b": " + v + b"\r\n" for k, v in request.headers.raw)
        status, raw, body = await direct.fetch(
            url.scheme, url.host, port, b"GET " + url.raw_path + b" HTTP/1.1\r\n" + head + b"\r\n"
        )
        if 200 <= status < 300 and not any(k.lower() in _NOT_PLAIN for k, _ in raw):
            return status, httpx.Headers(raw), body
        # Not plain: made into httpx's response as its client would, and handled alike.
        url = full_url(url)
        reply = httpx.Response(status, headers=raw, content=body,
                               request=self._client.build_request("GET", url))
        self._client.cookies.extract_cookies(reply)
        if self._client.cookies:
            self._direct = None  # cookies are sent from now on, which httpx's client does
        if reply.has_redirect_location:
            try:
                target = url.join(reply.headers["location"])
            except httpx.InvalidURL as exc:  # as httpx's client reports a bad Location
                raise httpx.RemoteProtocolError(f"invalid redirect URL: {exc}") from exc
            return await self._client.get(target)  # and any further redirects
        return reply

    # -- state fed by replies ------------------------------------------------------------

    def _observe(self, headers: httpx.Headers) -> float | None:
        """Record the server's clock and usage count; returns the server time (Unix s)."""
        date = headers.get("date")
        if date and date == self._date_memo[0]:
            server_now = self._date_memo[1]  # the same second as the last reply's
        else:
            server_now = parse_http_date(date) if date else None
            if date:
                self._date_memo = (date, server_now)
        if server_now is not None:
            ns = int(server_now) * 1_000_000_000
            # Replies may arrive out of order; the exchange's clock never goes back.
            if self.last_server_date_ns is None or ns >= self.last_server_date_ns:
                self.last_server_date_ns = ns
                self._date_seen_at = self._clock()
        name = self.rate_limit.used_weight_header if self.rate_limit else None
        if name and self.bucket is not None:
            raw = headers.get(name)
            if raw is not None:
                try:
                    used = float(raw)
                except ValueError:
                    log.debug("%s: unreadable %s header %r", self.exchange, name, raw)
                else:
                    self.bucket.observe_used(used, self._usage_window_s, server_now)
        return server_now

    def server_time_ns(self) -> int | None:
        """The exchange's clock now, extrapolated from the last ``Date`` header (or None)."""
        if self.last_server_date_ns is None or self._date_seen_at is None:
            return None
        return self.last_server_date_ns + int((self._clock() - self._date_seen_at) * 1e9)

    def _ban_on(self, err: BannedError) -> None:
        self._ban = err
        self._ban_until = None if err.retry_after is None else self._clock() + err.retry_after
        self._ban_remembered = False
        log.info("%s", err.args[0])  # the user sees it once, as the run's error
        # ... and the next runs know it too, and ask nothing until it ends.
        bans.remember(self.exchange, self.base_url, err.retry_after, err.args[0], now=self._wall())

    def _raise_if_banned(self, shown: str) -> None:
        """Fail fast while the exchange bans us: sending more would only extend the ban."""
        if self._ban is None:
            return
        remaining: float | None = None
        if self._ban_until is not None:
            remaining = self._ban_until - self._clock()
            if remaining <= 0:
                log.info("%s: the ban has expired; resuming requests", self.exchange)
                self._ban = self._ban_until = None
                self._ban_remembered = False
                return
        raise BannedError(
            self._ban.args[0],
            exchange=self.exchange,
            url=None if self._ban_remembered else shown,  # remembered: this run asked nothing
            status=self._ban.status,
            retry_after=remaining,
        )

    def __repr__(self) -> str:
        return f"AsyncHTTPClient({self.exchange!r}, {self.base_url!r}, refs={self._refs})"
