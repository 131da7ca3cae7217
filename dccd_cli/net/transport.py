"""The seam between dccd's HTTP client and the wire: one request in, one reply out.

``Transport`` is to ``dccd_cli.net.client`` what ``httpx.AsyncBaseTransport`` is to httpx.
The client makes the request — its URL (``PlainURL``: the request target bytes), every
header, credentials, cookies — and follows redirects; a transport only sends it and reads
the reply. So the client's retry, 429, 418 and classification loop runs the same code
whatever sends the request. The transports:

- ``KeepAliveTransport`` (``dccd_cli.net.keepalive``): pooled keep-alive HTTP/1.1
  connections on asyncio streams, the one dccd uses unless a proxy is configured;
- ``HttpxTransport``: an ``httpx.AsyncClient`` used as a plain transport (it follows no
  redirect and keeps no cookie), for a proxy named in the environment (httpx speaks to
  proxies) and for any httpx transport, such as ``httpx.MockTransport`` in unit tests.

What a transport promises: the request goes to ``url``'s origin with ``url.raw_path`` as
its target and exactly the given headers; the ``Reply`` holds the status, the headers as
received and the body decoded of its ``Content-Encoding`` (the client accepts gzip and
deflate). Failures are raised as httpx exceptions (``httpx.ConnectError``,
``httpx.ReadError``, ``httpx.RemoteProtocolError``, ...), which ``dccd_cli.net.classify``
maps to dccd's errors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from dccd_cli.net.urls import PlainURL

__all__ = ["HeaderPairs", "HttpxTransport", "Reply", "Transport", "make_transport",
           "proxy_configured"]

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

#: Request headers as sent, in order: (name, value) byte pairs.
HeaderPairs = Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply: status, headers (case-insensitive), the body decoded of its
    Content-Encoding, and how many body bytes came off the wire (compressed, as sent)."""

    status: int
    headers: httpx.Headers
    body: bytes
    wire_bytes: int


class Transport(Protocol):
    """Sends one request and reads its reply (see the module's docstring for the contract)."""

    async def request(self, method: str, url: PlainURL, headers: HeaderPairs) -> Reply:
        """``method url`` with ``headers``, as they are; its reply. Raises httpx exceptions."""
        ...

    async def aclose(self) -> None:
        """Close every connection; the transport is not used again."""
        ...


class HttpxTransport:
    """An ``httpx.AsyncClient`` as a plain transport: with ``transport`` None, it routes
    through the proxies the environment names, as httpx does; else through ``transport``.

    Each request is built here, not by the httpx client, so it carries the given headers
    only, in their order, and never a cookie of httpx's jar; and the httpx client follows
    no redirect. dccd's client keeps cookies and follows redirects, for every transport
    alike.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, *,
                 timeout: float = 30.0) -> None:
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._client = httpx.AsyncClient(
            transport=transport,
            trust_env=transport is None,  # a given transport is used as it is, proxy or not
            follow_redirects=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def request(self, method: str, url: PlainURL, headers: HeaderPairs) -> Reply:
        request = httpx.Request(method, url.httpx(), headers=list(headers),
                                extensions={"timeout": self._timeout})
        response = await self._client.send(request)
        body = response.content
        return Reply(response.status_code, response.headers, body,
                     response.num_bytes_downloaded or len(body))

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        """The wrapped httpx client."""
        return self._client


def proxy_configured() -> bool:
    """Whether the environment names a proxy."""
    return any(os.environ.get(v) for v in _PROXY_VARS)


def make_transport(*, timeout: float = 30.0) -> Transport:
    """dccd's keep-alive pool, or httpx's client when a proxy is configured (it speaks to
    proxies; ``timeout`` is then its per-phase timeout)."""
    # Imported here: the pool's module builds on this one's Reply and HeaderPairs.
    from dccd_cli.net.keepalive import KeepAliveTransport

    if proxy_configured():
        return HttpxTransport(timeout=timeout)
    return KeepAliveTransport()
