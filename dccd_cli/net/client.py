"""The one network boundary of dccd: GETs with retries, rate limits and bans.

One ``AsyncHTTPClient`` per (exchange, base URL) is shared, reference-counted, by every
job of a command (``dccd_cli.net.pool``), so they share connections and — through
``ratelimit.bucket_for`` — one request budget. Each request:

1. waits for its weight from the exchange's ``TokenBucket``;
2. sends ``GET base_url + path`` through the client's ``Transport`` (whole-attempt timeout;
   TLS always verified), redirects followed and cookies kept (``dccd_cli.net.sender``);
3. feeds the bucket the exchange's usage header and records the ``Date`` header
   (``dccd_cli.net.serverclock``);
4. makes the reply the data or an error (``dccd_cli.net.classify``), then acts on it:
   2xx → the data; 429 → wait Retry-After with the whole exchange paused, not counted as a
   retry; 418 → ``BannedError`` now and for every later request, of this run and
   (``dccd_cli.net.bans``) of later runs until the ban ends; 5xx, network errors,
   unparsable 2xx bodies → exponential backoff with full jitter; other 4xx →
   ``ExchangeError`` with the exchange's own message.

This loop runs the same code whatever the transport: dccd's keep-alive pool in
production, httpx's client behind a proxy, ``httpx.MockTransport`` in unit tests. httpx
exceptions never leave it: they become the ``dccd_cli.errors`` tree.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from dccd_cli.errors import (
    BannedError,
    FetchError,
    NetworkError,
    ProtocolError,
    RateLimitedError,
    ServerError,
)
from dccd_cli.net import bans
from dccd_cli.net.classify import Check, Decode, Response, Retryable, read_reply, transport_errors
from dccd_cli.net.options import HTTPOptions
from dccd_cli.net.pool import SharedClients
from dccd_cli.net.ratelimit import Clock, RateLimit, Sleep, TokenBucket, bucket_for
from dccd_cli.net.sender import RequestSender
from dccd_cli.net.serverclock import ServerClock, UsageFeedback
from dccd_cli.net.transport import HttpxTransport, Transport, make_transport
from dccd_cli.net.urls import PlainURL, PlainURLs, redact, request_url

__all__ = ["AsyncHTTPClient", "Check", "Decode", "HTTPOptions", "HTTPStats", "Response",
           "series_stats"]

log = logging.getLogger("dccd.http")

_USER_AGENT = "dccd/0.1 (+bulk historical market data)"


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

_shared: SharedClients[AsyncHTTPClient] = SharedClients()


class AsyncHTTPClient:
    """GETs JSON from one exchange, within its rate limit, retrying what is worth retrying.

    Share it with ``async with AsyncHTTPClient.shared(exchange, base_url, rate_limit)``;
    construct it directly (``transport``, ``sleep``, ``clock`` injected) in tests.
    ``transport`` is a dccd ``Transport`` or any httpx transport (such as
    ``httpx.MockTransport``, then wrapped in ``HttpxTransport``); by default dccd's
    keep-alive pool (``transport.make_transport``). ``options`` sets how hard it tries
    (``HTTPOptions``; the defaults unless given); ``timeout``, ``max_retries``, ... given
    one by one override them.
    """

    def __init__(
        self,
        exchange: str,
        base_url: str,
        rate_limit: RateLimit | None = None,
        *,
        options: HTTPOptions | None = None,
        bucket: TokenBucket | None = None,
        check: Check | None = None,
        transport: Transport | httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        max_rate_limit_waits: int | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.exchange = exchange
        self.options = (options or HTTPOptions()).with_(
            timeout=timeout, max_retries=max_retries, backoff_base=backoff_base,
            backoff_cap=backoff_cap, max_rate_limit_waits=max_rate_limit_waits)
        parsed = httpx.URL(base_url)
        credentials: tuple[str, str] | None = None
        if parsed.userinfo:
            # Credentials in the base URL go into an Authorization header, never into a
            # request URL: URLs are logged and shown in errors.
            credentials = (parsed.username, parsed.password)
            base_url = redact(parsed)
        self.base_url = base_url.rstrip("/")
        self.rate_limit = rate_limit
        if bucket is None and rate_limit is not None:
            bucket = TokenBucket(rate_limit, clock=clock, sleep=sleep)
        self.bucket = bucket
        self.check = check
        self._sleep = sleep
        self._clock = clock
        self._wall = wall_clock
        self._jitter = jitter
        if transport is None:
            transport = make_transport(timeout=self.options.timeout)
        elif isinstance(transport, httpx.AsyncBaseTransport):
            transport = HttpxTransport(transport, timeout=self.options.timeout)
        self._sender = RequestSender(
            transport, {"User-Agent": _USER_AGENT, "Accept": "application/json", **(headers or {})},
            credentials=credentials, credentials_origin=PlainURL.of(parsed).origin)
        self._plain_urls = PlainURLs()
        self._closed = False
        self.stats = HTTPStats()
        self._server_clock = ServerClock(clock)
        self._usage = UsageFeedback(exchange, rate_limit, bucket)
        self._ban: BannedError | None = None
        self._ban_until: float | None = None  # monotonic; None with a ban = until further notice
        self._ban_remembered = False
        if (earlier := bans.active(exchange, self.base_url, now=wall_clock())) is not None:
            # An earlier run was banned and the ban still holds: nothing is sent before it
            # ends, as asking would only lengthen it (``dccd_cli.net.bans``).
            self._ban = BannedError(earlier.refusal(), exchange=exchange)
            self._ban_until = clock() + (earlier.until_s - wall_clock())
            self._ban_remembered = True

    @property
    def transport(self) -> Transport:
        """What sends this client's requests."""
        return self._sender.transport

    # -- sharing ---------------------------------------------------------------------

    @classmethod
    async def acquire(
        cls, exchange: str, base_url: str, rate_limit: RateLimit | None = None, **opts: Any
    ) -> AsyncHTTPClient:
        """The shared client of (exchange, base_url), created on first use; ``release`` it.

        Options of the first acquirer win; ``options`` defaults to
        ``HTTPOptions.from_env()``. Unless ``bucket=`` is given, the client uses the
        exchange's process-wide bucket (``ratelimit.bucket_for``), shared across base URLs.
        """
        def make() -> AsyncHTTPClient:
            if opts.get("options") is None:
                opts["options"] = HTTPOptions.from_env()
            if "bucket" not in opts and rate_limit is not None:
                opts["bucket"] = bucket_for(exchange, rate_limit)
            return cls(exchange, base_url, rate_limit, **opts)

        return _shared.acquire((exchange, base_url.rstrip("/")), make)

    async def release(self) -> None:
        """Give back a shared reference; the last one closes the connections."""
        await _shared.release(self)

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
        self._closed = True
        await self._sender.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

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
        try:
            url = request_url(target, params, self._plain_urls)
        except httpx.InvalidURL as exc:
            raise NetworkError(f"cannot request: {exc}", exchange=self.exchange) from exc
        hook = check if check is not None else self.check
        opts = self.options
        retries = waits = 0
        while True:
            self._raise_if_banned(url.shown)
            if self.bucket is not None:
                await self.bucket.acquire(weight)
                self._raise_if_banned(url.shown)  # the ban may have come while we queued
            outcome = await self._attempt(url, hook, decode)
            if isinstance(outcome, Response):
                return outcome
            err = outcome
            if isinstance(err, BannedError):
                self._ban_on(err)
                raise err
            if isinstance(err, RateLimitedError):
                waits += 1
                self.stats.rate_limited += 1
                if (mine := series_stats.get()) is not None:
                    mine.rate_limited += 1
                if waits > opts.max_rate_limit_waits:
                    err.args = (f"{err.args[0]} (still rate limited after {waits - 1} waits)",)
                    raise err
                delay = err.retry_after
                if not delay:  # absent, or 0 — which would have us hammer the exchange
                    delay = self._backoff(min(waits - 1, 10))
                log.info("%s: rate limited; all requests wait %.1f s: %s",
                         self.exchange, delay, url.shown)
                if self.bucket is not None:
                    self.bucket.pause_for(delay)  # everyone waits, not just this request
                else:
                    await self._sleep(delay)
                continue
            if isinstance(err, (NetworkError, ServerError, ProtocolError)):
                if retries >= opts.max_retries:
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
                         opts.max_retries, delay)
                await self._sleep(delay)
                continue
            raise err

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt))."""
        opts = self.options
        return self._jitter() * min(opts.backoff_cap, opts.backoff_base * 2.0**attempt)

    async def _attempt(
        self, url: PlainURL, hook: Check | None, decode: Decode | None
    ) -> Response | FetchError:
        """One request: a reply, or the error to act on; raises errors not worth retrying."""
        self.stats.requests += 1
        if (mine := series_stats.get()) is not None:
            mine.requests += 1
        timeout = self.options.timeout
        started = self._clock()
        try:
            with transport_errors({"exchange": self.exchange, "url": url.shown}, timeout):
                async with asyncio.timeout(timeout):  # the whole attempt, redirects included
                    reply, final, wire = await self._sender.get(url)
        except Retryable as failed:
            return failed.error
        self.stats.bytes_received += wire
        server_now = self._server_clock.observe(reply.headers)
        self._usage.observe(reply.headers, server_now)
        log.debug("GET %s -> %d, %d bytes, %.0f ms", url.shown, reply.status, len(reply.body),
                  (self._clock() - started) * 1e3)
        outcome = read_reply(reply.status, reply.headers, reply.body, url=url.shown,
                             exchange=self.exchange, hook=hook, decode=decode,
                             server_now=server_now, wall_now=self._wall())
        if isinstance(outcome, Response) and final is not url:
            # The data's URL is the one it came from, after redirects.
            outcome = Response(outcome.status, outcome.headers, outcome.json, final.shown,
                               outcome.decoded)
        return outcome

    # -- state fed by replies ------------------------------------------------------------

    @property
    def last_server_date_ns(self) -> int | None:
        """The exchange's clock (ns, whole seconds) from the Date header of the latest reply."""
        return self._server_clock.last_date_ns

    def server_time_ns(self) -> int | None:
        """The exchange's clock now, extrapolated from the last ``Date`` header (or None)."""
        return self._server_clock.now_ns()

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
        return f"AsyncHTTPClient({self.exchange!r}, {self.base_url!r}, refs={_shared.refs(self)})"
