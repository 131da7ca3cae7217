"""dccd's keep-alive HTTP/1.1 transport against tiny scripted servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import zlib
from collections.abc import Awaitable, Callable

import httpx
import pytest

from dccd_cli.net.keepalive import KeepAliveTransport
from dccd_cli.net.transport import HttpxTransport, Reply, make_transport
from dccd_cli.net.urls import PlainURL

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def get(transport: KeepAliveTransport, url: str, params: dict[str, int] | None = None) -> Reply:
    plain = PlainURL.of(httpx.URL(url, params=params))
    return await transport.request("GET", plain, [(b"Host", plain.netloc)])


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def test_keep_alive_content_length_and_chunked() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for i in range(3):
            head = await read_request(reader)
            assert head.startswith(b"GET /x?i=") and b"\r\nhost: 127.0.0.1" in head.lower()
            if i % 2:
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n[1,2]")
            await writer.drain()
        writer.close()

    server, base = await serve(handler)
    transport = KeepAliveTransport()
    async with server:
        for i in range(3):
            r = await get(transport, f"{base}/x", {"i": i})
            assert r.status == 200 and r.body == b"[1,2]"
        await transport.aclose()
    assert connections == 1  # one connection kept alive for all three


async def test_a_keep_alive_connection_closed_by_the_server_is_replaced() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
        await writer.drain()
        writer.close()  # closes after one response without saying so

    server, base = await serve(handler)
    transport = KeepAliveTransport()
    async with server:
        assert (await get(transport, f"{base}/a")).body == b"[]"
        await asyncio.sleep(0.05)
        assert (await get(transport, f"{base}/b")).body == b"[]"
        await transport.aclose()


async def test_every_idle_connection_closed_by_the_server_is_replaced() -> None:
    # A server that drops idle keep-alive connections (uvicorn after 5 s, an exchange's
    # load balancer) closes every pooled one at once: a request must not be tried on a
    # dead connection and then on another dead one.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
        await writer.drain()
        writer.close()  # as if its keep-alive timeout ran out

    server, base = await serve(handler)
    transport = KeepAliveTransport()
    async with server:
        replies = await asyncio.gather(*(get(transport, f"{base}/a", {"i": i}) for i in range(4)))
        assert all(r.body == b"[]" for r in replies)
        assert transport.idle_connections() == 4  # all pooled, all dead
        await asyncio.sleep(0.05)
        for i in range(3):
            assert (await get(transport, f"{base}/b", {"i": i})).body == b"[]"
        await transport.aclose()


async def test_a_dead_pooled_connection_is_never_retried_on_another_pooled_one() -> None:
    # Each connection answers one request, then closes when the next one comes — as a
    # server does whose keep-alive timeout ends just as the request arrives: the pooled
    # connections look alive until each is tried.
    opened = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal opened
        opened += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
        await writer.drain()
        await read_request(reader)
        writer.close()

    server, base = await serve(handler)
    transport = KeepAliveTransport()
    async with server:
        await asyncio.gather(*(get(transport, f"{base}/a", {"i": i}) for i in range(3)))
        assert opened == 3 and transport.idle_connections() == 3
        assert (await get(transport, f"{base}/b")).body == b"[]"  # one dead, then a fresh one
        assert opened == 4 and transport.idle_connections() == 1  # the other two are dropped
        await transport.aclose()


async def test_idle_connections_expire() -> None:
    # A server that keeps connections open: whether one is reused is the pool's choice.
    opened = closed = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal opened, closed
        opened += 1
        try:
            while True:
                await read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            closed += 1
            writer.close()

    now = [0.0]
    server, base = await serve(handler)
    transport = KeepAliveTransport(keepalive_expiry=5.0, clock=lambda: now[0])
    async with server:
        await asyncio.gather(*(get(transport, f"{base}/a", {"i": i}) for i in range(3)))
        assert opened == 3 and transport.idle_connections() == 3
        now[0] = 4.9  # not yet expired: reused
        await get(transport, f"{base}/b")
        assert opened == 3 and transport.idle_connections() == 3
        now[0] = 20.0  # all three idle for longer than 5 s: none is reused, all are closed
        await get(transport, f"{base}/c")
        await asyncio.sleep(0.05)
        assert opened == 4 and closed == 3 and transport.idle_connections() == 1
        await transport.aclose()


async def test_a_reset_mid_body_is_a_read_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n[1,2,3")
        await writer.drain()
        writer.close()

    server, base = await serve(handler)
    async with server:
        with pytest.raises(httpx.ReadError, match="middle of the response body"):
            await get(KeepAliveTransport(), f"{base}/a")


@pytest.mark.parametrize("framing", [b"Content-Length: lots", b"Transfer-Encoding: chunked\r\n\r\nzz"])
async def test_malformed_framing_is_a_protocol_error(framing: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n\r\n")
        await writer.drain()
        writer.close()

    server, base = await serve(handler)
    async with server:
        with pytest.raises(httpx.RemoteProtocolError, match="malformed"):
            await get(KeepAliveTransport(), f"{base}/a")


@pytest.mark.parametrize("coding,pack", [
    (b"gzip", gzip.compress),
    (b"deflate", zlib.compress),
    (b"deflate", lambda body: zlib.compress(body)[2:-4]),  # raw deflate, as some servers send
    (b"identity", lambda body: body),
], ids=["gzip", "deflate", "raw-deflate", "identity"])
async def test_a_compressed_body_is_decoded(coding: bytes, pack: Callable[[bytes], bytes]) -> None:
    packed = pack(b'{"k":[1,2,3]}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (coding, len(packed), packed))
        await writer.drain()
        writer.close()

    server, base = await serve(handler)
    async with server:
        reply = await get(KeepAliveTransport(), f"{base}/z")
    assert reply.body == b'{"k":[1,2,3]}' and reply.wire_bytes == len(packed)


async def test_a_corrupt_compressed_body_is_a_decoding_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope")
        await writer.drain()
        writer.close()

    server, base = await serve(handler)
    async with server:
        with pytest.raises(httpx.DecodingError, match="gzip"):
            await get(KeepAliveTransport(), f"{base}/z")


async def test_only_get_requests_over_http_are_sent() -> None:
    plain = PlainURL.of(httpx.URL("http://127.0.0.1:9/"))
    with pytest.raises(httpx.UnsupportedProtocol):
        await KeepAliveTransport().request("POST", plain, [])
    with pytest.raises(httpx.UnsupportedProtocol):
        await KeepAliveTransport().request("GET", PlainURL.of(httpx.URL("ftp://127.0.0.1/x")), [])


async def test_connection_refused_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError):
        await get(KeepAliveTransport(), "http://127.0.0.1:9/")


def test_tls_verification_is_on() -> None:
    ctx = KeepAliveTransport()._ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_a_configured_proxy_gets_httpx_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert isinstance(make_transport(), KeepAliveTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert isinstance(make_transport(), HttpxTransport)
