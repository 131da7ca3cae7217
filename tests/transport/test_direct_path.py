"""AsyncHTTPClient's direct path (plain GETs straight to StreamTransport, without httpx's
client) against scripted loopback servers: the same request bytes as httpx sends, and
whatever is not plain — redirects, cookies, compressed bodies, errors — handled as httpx
handles it."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import pytest

from dccd_cli.errors import ExchangeError
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.net.transport import StreamTransport

Reply = Callable[[bytes], bytes]  # request head -> raw response


async def serve(reply: Reply) -> tuple[asyncio.Server, str, list[bytes]]:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                writer.write(reply(head))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", heads


def ok(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"Content-Length: %d" % len(body), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def with_client(base: str, direct: bool, call: Callable[[AsyncHTTPClient], Awaitable[object]]) -> None:
    async with AsyncHTTPClient("x", base, transport=StreamTransport(), max_retries=0) as client:
        assert client._direct is not None
        if not direct:
            client._direct = None  # through httpx's client, as before the direct path
        await call(client)


async def test_the_direct_path_sends_what_httpx_sends() -> None:
    server, base, heads = await serve(lambda head: ok(b"[1]"))
    async with server:
        for direct in (True, False):
            async def call(client: AsyncHTTPClient) -> None:
                reply = await client.get("/api", {"symbol": "BTC USDT", "limit": 1000})
                assert reply.json == [1] and reply.status == 200
                assert reply.url == base + "/api?symbol=BTC+USDT&limit=1000"
            await with_client(base, direct, call)
    assert len(heads) == 2 and heads[0] == heads[1]
    assert heads[0].startswith(b"GET /api?symbol=BTC+USDT&limit=1000 HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_a_redirect_is_followed() -> None:
    def reply(head: bytes) -> bytes:
        if head.startswith(b"GET /old"):
            return b"HTTP/1.1 301 Moved\r\nLocation: /new?x=1\r\nContent-Length: 0\r\n\r\n"
        return ok(b'{"at":"new"}')

    server, base, heads = await serve(reply)
    async with server:
        async def call(client: AsyncHTTPClient) -> None:
            reply = await client.get("/old")
            assert reply.json == {"at": "new"} and reply.url == base + "/new?x=1"
        await with_client(base, True, call)
    assert [h.split(b" ")[1] for h in heads] == [b"/old", b"/new?x=1"]


async def test_a_cookie_is_kept_and_sent_as_httpx_does() -> None:
    server, base, heads = await serve(lambda head: ok(b"[]", b"Set-Cookie: s=1; Path=/"))
    async with server:
        async def call(client: AsyncHTTPClient) -> None:
            await client.get("/a")
            await client.get("/b")
            assert client._direct is None  # httpx's client sends cookies from now on
        await with_client(base, True, call)
    assert b"cookie: s=1" not in heads[0].lower() and b"cookie: s=1" in heads[1].lower()


async def test_a_compressed_body_is_decoded() -> None:
    packed = gzip.compress(b'{"k":[1,2,3]}')
    server, base, _ = await serve(lambda head: ok(packed, b"Content-Encoding: gzip"))
    async with server:
        async def call(client: AsyncHTTPClient) -> None:
            assert (await client.get("/z")).json == {"k": [1, 2, 3]}
        await with_client(base, True, call)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "httpx"])
async def test_an_error_reply_reads_alike(direct: bool) -> None:
    body = b'{"code":-1121,"msg":"Invalid symbol."}'
    server, base, _ = await serve(
        lambda head: b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    async with server:
        async def call(client: AsyncHTTPClient) -> None:
            with pytest.raises(ExchangeError, match=r"Invalid symbol\. \(code -1121\)"):
                await client.get("/api/v3/klines", {"symbol": "NOPE"})
        await with_client(base, direct, call)


async def test_credentials_and_proxies_keep_httpx_client(monkeypatch: pytest.MonkeyPatch) -> None:
    async with AsyncHTTPClient("x", "http://u:p@127.0.0.1:9", transport=StreamTransport()) as c:
        assert c._direct is None
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    async with AsyncHTTPClient("x", "http://127.0.0.1:9", transport=StreamTransport()) as c:
        assert c._direct is None
