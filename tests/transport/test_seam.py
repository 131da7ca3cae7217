"""One transport seam: the client sends the very same requests, and runs the very same code
on the replies, whether its transport is ``httpx.MockTransport`` (as in the adapter unit
tests) or dccd's keep-alive pool against a real loopback server (as in production).

Each test scripts a server as raw HTTP responses and runs on both transports: "keepalive"
sends them over 127.0.0.1 through ``KeepAliveTransport``; "mock" plays the same bytes
through ``httpx.MockTransport``, and records each request as the head it would have put on
the wire."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from adapter_kit import make_adapter

from dccd_cli.adapters.binance import BinanceAdapter
from dccd_cli.errors import ExchangeError, NetworkError
from dccd_cli.exchange.adapter import Market
from dccd_cli.net import classify, client
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.net.keepalive import KeepAliveTransport
from dccd_cli.net.sender import RequestSender
from dccd_cli.net.transport import HttpxTransport, Reply, Transport
from dccd_cli.net.urls import PlainURL

Script = Callable[[bytes], bytes]  # request head -> raw response
KINDS = ["keepalive", "mock"]
MS = 1_000_000
T0 = 1_704_067_200_000
MARKET = Market(symbol="BTC-USDT", native="BTCUSDT", base="BTC", quote="USDT")


def ok(body: bytes, *extra: bytes, status: bytes = b"200 OK") -> bytes:
    head = [b"HTTP/1.1 " + status, b"Content-Length: %d" % len(body), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def as_response(raw: bytes) -> httpx.Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(b":") for line in lines)]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


def as_head(request: httpx.Request) -> bytes:
    lines = [b"GET " + request.url.raw_path + b" HTTP/1.1"]
    lines += [k + b": " + v for k, v in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclass
class Served:
    """A scripted server on 127.0.0.1, and the transports that reach it."""

    script: Script
    base: str  # its URL, for either kind of transport
    heads: list[bytes] = field(default_factory=list)  # each request, as its head on the wire

    def transport(self, kind: str) -> Transport:
        """A fresh "keepalive" transport (to the socket) or "mock" one (the same script)."""
        if kind == "keepalive":
            return KeepAliveTransport()

        def mock(request: httpx.Request) -> httpx.Response:
            head = as_head(request)
            self.heads.append(head)
            return as_response(self.script(head))

        return HttpxTransport(httpx.MockTransport(mock))

    def client(self, kind: str, base: str | None = None, **opts: Any) -> AsyncHTTPClient:
        return AsyncHTTPClient("x", base or self.base, transport=self.transport(kind),
                               max_retries=opts.pop("max_retries", 0), **opts)


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[Served]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                served.heads.append(head)
                writer.write(script(head))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    served = Served(script, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    async with server:
        yield served


KLINE = b'[[1704067200000,"1","2","0.5","1.5","10",1704067259999,"15",3,"1","1","0"]]'


async def test_an_adapter_call_sends_the_same_request_through_either_transport() -> None:
    """The adapter tests' mock (tests/adapter_kit.py) sees byte for byte the request that
    the keep-alive pool writes to a real socket: target, headers and their order."""
    async with scripted(lambda head: ok(KLINE)) as served:
        http = AsyncHTTPClient("binance", served.base + "/binance", BinanceAdapter.rate_limit,
                               check=BinanceAdapter.check)
        assert isinstance(http.transport, KeepAliveTransport)  # what production uses
        async with http:
            wire = await BinanceAdapter(http).fetch_ohlc_page(MARKET, "1m", T0 * MS, (T0 + 60_000) * MS, 1000)

        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, content=KLINE)

        mocked, _ = make_adapter(BinanceAdapter, handler, served.base + "/binance")
        mock = await mocked.fetch_ohlc_page(MARKET, "1m", T0 * MS, (T0 + 60_000) * MS, 1000)
    assert len(served.heads) == 1 and as_head(seen[0]) == served.heads[0]
    assert served.heads[0].startswith(
        b"GET /binance/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=1704067200000"
        b"&endTime=1704067259999&limit=1000 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert wire.equals(mock)


async def test_a_mock_driven_client_runs_the_code_the_keep_alive_client_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same calls above the seam with the same arguments — the request sent
    (``RequestSender.get``: URL and headers), then the reply read (``classify.read_reply``:
    status, headers, body, ...) — through a 429 and its retry; only the transport's
    ``request`` differs."""
    calls: list[tuple[str, Any]] = []
    read_reply, send = classify.read_reply, RequestSender.get

    def spy_read(*args: Any, **kwargs: Any) -> Any:
        calls.append(("read_reply", (args, {k: v for k, v in kwargs.items() if k != "wall_now"})))
        return read_reply(*args, **kwargs)

    async def spy_send(self: RequestSender, url: PlainURL) -> tuple[Reply, PlainURL, int]:
        calls.append(("send", (url, list(self.headers_for(url)))))
        return await send(self, url)

    monkeypatch.setattr(client, "read_reply", spy_read)
    monkeypatch.setattr(RequestSender, "get", spy_send)
    runs: dict[str, list[tuple[str, Any]]] = {}
    replies = [ok(b"", b"Retry-After: 0", status=b"429 Too Many"), ok(b"[1]", b"Date: x")]
    async with scripted(lambda head: replies[len(served.heads) % 2 - 1]) as served:
        for kind in KINDS:
            async with served.client(kind) as c:
                assert (await c.get("/api", {"symbol": "BTCUSDT"})).json == [1]
                assert c.stats.rate_limited == 1 and c.stats.requests == 2
            runs[kind], calls[:] = calls[:], []
    assert [name for name, _ in runs["mock"]] == ["send", "read_reply", "send", "read_reply"]
    assert runs["mock"] == runs["keepalive"]
    assert served.heads[:2] == served.heads[2:]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_is_followed(kind: str) -> None:
    def script(head: bytes) -> bytes:
        if head.startswith(b"GET /old"):
            return ok(b"", b"Location: /new?x=1", status=b"301 Moved")
        return ok(b'{"at":"new"}')

    async with scripted(script) as served, served.client(kind) as c:
        reply = await c.get("/old")
        assert reply.json == {"at": "new"} and reply.url == served.base + "/new?x=1"
    assert [h.split(b" ")[1] for h in served.heads] == [b"/old", b"/new?x=1"]


@pytest.mark.parametrize("kind", KINDS)
async def test_endless_redirects_are_refused(kind: str) -> None:
    async with scripted(lambda head: ok(b"", b"Location: /again", status=b"302 Found")) as served:
        async with served.client(kind) as c:
            with pytest.raises(NetworkError, match="cannot request: more than 20 redirects"):
                await c.get("/loop")
    assert len(served.heads) == 21


@pytest.mark.parametrize("kind", KINDS)
async def test_a_cookie_is_kept_and_sent_back(kind: str) -> None:
    async with scripted(lambda head: ok(b"[]", b"Set-Cookie: s=1; Path=/")) as served:
        async with served.client(kind) as c:
            await c.get("/a")
            await c.get("/b")
    assert b"cookie: s=1" not in served.heads[0].lower()
    assert b"\r\ncookie: s=1\r\n" in served.heads[1].lower()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_compressed_body_is_decoded(kind: str) -> None:
    packed = gzip.compress(b'{"k":[1,2,3]}')
    async with scripted(lambda head: ok(packed, b"Content-Encoding: gzip")) as served:
        async with served.client(kind) as c:
            assert (await c.get("/z")).json == {"k": [1, 2, 3]}
            if kind == "keepalive":  # a mock's reply has no wire: httpx counts no bytes of it
                assert c.stats.bytes_received == len(packed)


@pytest.mark.parametrize("kind", KINDS)
async def test_an_error_reply_reads_alike(kind: str) -> None:
    body = b'{"code":-1121,"msg":"Invalid symbol."}'
    async with scripted(lambda head: ok(body, status=b"400 Bad Request")) as served:
        async with served.client(kind) as c:
            with pytest.raises(ExchangeError, match=r"Invalid symbol\. \(code -1121\)"):
                await c.get("/api/v3/klines", {"symbol": "NOPE"})


@pytest.mark.parametrize("kind", KINDS)
async def test_credentials_go_as_a_header_to_their_origin_only(kind: str) -> None:
    other: list[bytes] = []  # what a second server, redirected to, is sent

    async def elsewhere(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        other.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(ok(b"[2]"))
        await writer.drain()
        writer.close()

    second = await asyncio.start_server(elsewhere, "127.0.0.1", 0)
    there = f"http://127.0.0.1:{second.sockets[0].getsockname()[1]}/b"

    def script(head: bytes) -> bytes:  # the mock answers for both origins
        return ok(b"", b"Location: " + there.encode(), status=b"302 Found") if b" /a " in head else ok(b"[2]")

    async with second, scripted(script) as served:
        base = served.base.replace("http://", "http://alice:s3cret@")
        async with served.client(kind, base) as c:
            reply = await c.get("/a")
    assert reply.url == there and reply.json == [2]
    first, then = (served.heads + other)[:2]
    assert b" /a " in first and b"\r\nAuthorization: Basic YWxpY2U6czNjcmV0\r\n" in first
    assert b" /b " in then and b"authorization" not in then.lower()
    assert all(b"s3cret" not in head for head in served.heads + other)


async def test_the_retry_loop_is_the_same_for_every_transport() -> None:
    """A 503, a 429 and a reset connection, then the data: the same counters either way."""
    stats = {}
    for kind in KINDS:
        sent = 0

        def script(head: bytes) -> bytes:
            nonlocal sent
            sent += 1
            return [ok(b"busy", status=b"503 Busy"), ok(b"", b"Retry-After: 0", status=b"429 Slow"),
                    ok(b"[[1]]")][min(sent, 3) - 1]

        async with scripted(script) as served:
            async with served.client(kind, max_retries=2, backoff_base=0.001) as c:
                assert await c.get_json("/k") == [[1]]
                stats[kind] = c.stats.as_dict()
    assert stats["mock"] == stats["keepalive"]
    assert stats["mock"]["requests"] == 3 and stats["mock"]["retries"] == 1


def test_any_httpx_transport_is_wrapped_and_a_proxy_gets_httpx_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def check() -> None:
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        # A given transport is used as it is: the proxy is not asked.
        mocked = AsyncHTTPClient("x", "https://x.test",
                                 transport=httpx.MockTransport(lambda r: httpx.Response(200, json=[7])))
        assert isinstance(mocked.transport, HttpxTransport)
        assert await mocked.get_json("/a") == [7]
        await mocked.aclose()
        proxied = AsyncHTTPClient("x", "https://127.0.0.1:9")
        assert isinstance(proxied.transport, HttpxTransport)
        await proxied.aclose()

    asyncio.run(check())

