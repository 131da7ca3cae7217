"""How the client sends a GET through its transport: the request headers of each origin,
credentials to their own origin only, cookies kept and sent back, redirects followed.

This is the part of an HTTP client that sits above the wire, done once here for every
transport (``dccd_cli.net.transport``), so that a unit test on ``httpx.MockTransport``
sends what production sends: the same request target, the same headers in the same order.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

import httpx

from dccd_cli.net.transport import HeaderPairs, Reply, Transport
from dccd_cli.net.urls import PlainURL

__all__ = ["ACCEPT_ENCODING", "MAX_REDIRECTS", "RequestSender"]

#: The content codings every transport decodes.
ACCEPT_ENCODING = b"gzip, deflate"
#: Redirects followed per request (httpx's limit).
MAX_REDIRECTS = 20
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Origin = tuple[str, str, int]


class RequestSender:
    """Sends GETs through ``transport`` with ``headers`` (User-Agent, Accept, ...) besides
    those of the wire (Host, Accept-Encoding, Connection). ``credentials`` (user, password)
    go as a Basic ``Authorization`` header to ``credentials_origin`` only, so a redirect to
    another host never carries them."""

    def __init__(self, transport: Transport, headers: Mapping[str, str], *,
                 credentials: tuple[str, str] | None = None,
                 credentials_origin: Origin | None = None) -> None:
        self.transport = transport
        self._common = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._auth: bytes | None = None
        if credentials is not None:
            self._auth = b"Basic " + base64.b64encode(":".join(credentials).encode("utf-8"))
        self._auth_origin = credentials_origin
        self._heads: dict[tuple[str, bytes], list[tuple[bytes, bytes]]] = {}  # per origin
        self._cookies = httpx.Cookies()

    def headers_for(self, url: PlainURL) -> HeaderPairs:
        """The headers of a request of ``url``, in the order they are sent."""
        key = (url.scheme, url.netloc)
        head = self._heads.get(key)
        if head is None:
            head = [(b"Host", url.netloc), (b"Accept-Encoding", ACCEPT_ENCODING),
                    (b"Connection", b"keep-alive"), *self._common]
            if self._auth is not None and url.origin == self._auth_origin:
                head.append((b"Authorization", self._auth))
            self._heads[key] = head
        if not self._cookies:
            return head
        probe = httpx.Request("GET", url.httpx())
        self._cookies.set_cookie_header(probe)
        cookie = probe.headers.get("cookie")
        return head if cookie is None else [*head, (b"Cookie", cookie.encode("latin-1"))]

    async def get(self, url: PlainURL) -> tuple[Reply, PlainURL, int]:
        """GET ``url``, following redirects: the last reply, its URL, and the body bytes off
        the wire over all of them. Raises httpx exceptions, as transports do."""
        wire = 0
        for _ in range(MAX_REDIRECTS + 1):
            reply = await self.transport.request("GET", url, self.headers_for(url))
            wire += reply.wire_bytes
            if "set-cookie" in reply.headers:
                self._cookies.extract_cookies(httpx.Response(
                    reply.status, headers=reply.headers, request=httpx.Request("GET", url.httpx())))
            location = reply.headers.get("location") if reply.status in _REDIRECTS else None
            if location is None:
                return reply, url, wire
            try:
                url = PlainURL.of(url.httpx().join(location))
            except httpx.InvalidURL as exc:
                raise httpx.RemoteProtocolError(f"invalid redirect URL: {exc}") from exc
        raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    async def aclose(self) -> None:
        await self.transport.aclose()
