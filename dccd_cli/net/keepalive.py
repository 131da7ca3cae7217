"""dccd's own transport: keep-alive HTTP/1.1 connections on asyncio streams, pooled.

Why: an exchange page is ~120 KB of JSON, and httpx's default stack (httpcore + h11, both
pure Python) spends ~1.6 ms of CPU per such response — more than parsing the JSON. At
Binance's limit (50 requests a second) that CPU, not the exchange, would bound a download
on a small machine. This transport writes the request head the client made, reads the
status line and headers, then the body by ``Content-Length`` or chunked encoding, in a
handful of C-level stream calls (~0.2 ms).

Only what dccd needs: GET requests without a body, HTTP/1.1, keep-alive, TLS always
verified (certifi's bundle, like httpx), gzip and deflate bodies decoded. It implements
``dccd_cli.net.transport.Transport``: failures are httpx exceptions.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import defaultdict
from collections.abc import Callable

import certifi
import httpx

from dccd_cli.net.transport import HeaderPairs, Reply
from dccd_cli.net.urls import PlainURL

__all__ = ["KEEPALIVE_EXPIRY_S", "KeepAliveTransport"]

#: Seconds an idle connection is kept for reuse. Servers close idle keep-alive connections
#: too (uvicorn after 5 s, load balancers after a few more): closing ours first keeps a
#: request from being written to a connection the server is closing at that moment.
KEEPALIVE_EXPIRY_S = 4.0
_MAX_HEADER = 64 * 1024

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_Origin = tuple[str, str, int]


class KeepAliveTransport:
    """Pooled keep-alive HTTP/1.1 connections, per (scheme, host, port)."""

    def __init__(self, max_idle_per_host: int = 32, *,
                 keepalive_expiry: float = KEEPALIVE_EXPIRY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # Per origin: idle connections with the time each became idle, oldest first.
        self._idle: dict[_Origin, list[tuple[_Conn, float]]] = defaultdict(list)
        self._max_idle = max_idle_per_host
        self._expiry = keepalive_expiry
        self._clock = clock
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    def idle_connections(self) -> int:
        """How many connections wait in the pool."""
        return sum(len(conns) for conns in self._idle.values())

    async def _connect(self, scheme: str, host: str, port: int) -> _Conn:
        try:
            if scheme == "https":
                return await asyncio.open_connection(host, port, ssl=self._ssl_context(),
                                                     server_hostname=host, limit=_MAX_HEADER)
            return await asyncio.open_connection(host, port, limit=_MAX_HEADER)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc

    async def request(self, method: str, url: PlainURL, headers: HeaderPairs) -> Reply:
        """Send ``method url`` with ``headers`` as they are; the reply, its body decoded."""
        if method != "GET":
            raise httpx.UnsupportedProtocol("this transport sends GET requests only")
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"cannot send a request to a {url.scheme!r} URL")
        head = b"".join([b"GET ", url.raw_path, b" HTTP/1.1\r\n",
                         *(k + b": " + v + b"\r\n" for k, v in headers), b"\r\n"])
        status, raw, body = await self.fetch(*url.origin, head)
        return Reply(status, httpx.Headers(raw), _decoded(body, raw), len(body))

    async def fetch(
        self, scheme: str, host: str, port: int, head: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send one GET request ``head`` (request line and headers, ending in a blank line)
        to ``scheme://host:port``; its status, header pairs and body (as sent: not
        decoded)."""
        key = (scheme, host, port)
        # A pooled connection may have been closed by the server meanwhile: then one retry
        # on a fresh connection, as every HTTP client does for idempotent requests.
        for attempt in range(2):
            conn = self._pooled(key) if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect(*key)
            try:
                status, headers, body, keep = await self._exchange(conn, head)
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                conn[1].close()
                if reused and getattr(exc, "nothing_read", False):
                    # The others waited as long as this one and are most likely closed
                    # too: the retry goes to a fresh connection, never to another of them.
                    self._drop_idle(key)
                    continue
                raise
            except BaseException:
                conn[1].close()  # cancelled or timed out mid-exchange: the stream is unusable
                raise
            self._put(key, conn, keep)
            return status, headers, body
        raise AssertionError("unreachable")

    def _pooled(self, key: _Origin) -> _Conn | None:
        """An idle connection to reuse: the most recently used one, unless it has been idle
        too long (then all are) or the server has visibly closed it."""
        idle = self._idle[key]
        now = self._clock()
        while idle:
            conn, since = idle.pop()
            if now - since >= self._expiry:
                conn[1].close()
                self._drop_idle(key)
                return None
            if not conn[0].at_eof():
                return conn
            conn[1].close()
        return None

    def _put(self, key: _Origin, conn: _Conn, keep: bool) -> None:
        idle = self._idle[key]
        now = self._clock()
        while idle and now - idle[0][1] >= self._expiry:  # the oldest: expired, closed now
            idle.pop(0)[0][1].close()
        if keep and len(idle) < self._max_idle:
            idle.append((conn, now))
        else:
            conn[1].close()

    def _drop_idle(self, key: _Origin) -> None:
        for (_, writer), _since in self._idle.pop(key, []):
            writer.close()

    async def _exchange(
        self, conn: _Conn, head: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        reader, writer = conn
        try:
            writer.write(head)
            await writer.drain()
            raw_head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            err = httpx.RemoteProtocolError("server closed the connection without a response")
            err.nothing_read = not exc.partial  # type: ignore[attr-defined]
            raise err from exc
        except asyncio.LimitOverrunError as exc:
            raise httpx.RemoteProtocolError("response head too large") from exc
        except OSError as exc:
            err2 = httpx.ReadError(f"connection failed: {exc}")
            err2.nothing_read = True  # type: ignore[attr-defined]
            raise err2 from exc
        status, headers = _parse_head(raw_head)
        try:
            body, keep = await _read_body(reader, status, headers)
        except (ValueError, asyncio.LimitOverrunError) as exc:  # a length or chunk size that is no number
            raise httpx.RemoteProtocolError(f"malformed response framing: {exc}") from exc
        except asyncio.IncompleteReadError as exc:
            raise httpx.ReadError("connection closed in the middle of the response body") from exc
        except OSError as exc:
            raise httpx.ReadError(f"connection failed mid-body: {exc}") from exc
        return status, headers, body, keep

    async def aclose(self) -> None:
        for key in list(self._idle):
            self._drop_idle(key)


def _parse_head(raw: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    lines = raw.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"malformed status line {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError(f"malformed header line {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def _read_body(
    reader: asyncio.StreamReader, status: int, headers: list[tuple[bytes, bytes]]
) -> tuple[bytes, bool]:
    keep = (_header(headers, b"connection") or b"").lower() != b"close"
    if status in (204, 304) or 100 <= status < 200:
        return b"", keep
    encoding = (_header(headers, b"transfer-encoding") or b"").lower()
    if b"chunked" in encoding:
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # the end of the (empty) trailer section
                return b"".join(parts), keep
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = _header(headers, b"content-length")
    if length is not None:
        return await reader.readexactly(int(length)), keep
    return await reader.read(), False  # delimited by the server closing the connection


def _decoded(body: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """``body`` undone of its Content-Encoding: gzip and deflate, the codings the client
    accepts; others are left as they are, as httpx leaves codings it does not know."""
    coding = _header(headers, b"content-encoding")
    if not coding or not body:
        return body
    try:
        for name in reversed(coding.lower().split(b",")):  # the last applied comes first off
            name = name.strip()
            if name in (b"gzip", b"x-gzip"):
                body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
            elif name == b"deflate":
                try:
                    body = zlib.decompress(body)  # zlib-wrapped, as the RFC says
                except zlib.error:
                    body = zlib.decompress(body, -zlib.MAX_WBITS)  # raw, as some servers send
    except zlib.error as exc:
        raise httpx.DecodingError(f"cannot decode the {coding.decode('latin-1')} body: {exc}") from exc
    return body
