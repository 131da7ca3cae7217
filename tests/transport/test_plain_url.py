"""dccd_cli.net.urls's plain URLs, as AsyncHTTPClient makes them: where the client builds a
request URL without httpx's parse (``PlainURLs.make``), it is exactly httpx's — request
target, Host, URL as shown, scheme, host, port; anything unusual (characters httpx escapes,
credentials, a fragment, a query in the path, other schemes, no pairs) is parsed by
httpx."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.net.keepalive import KeepAliveTransport
from dccd_cli.net.urls import PlainURL, PlainURLs, query_pairs, redact, request_url


async def plain(target: str, params: dict[str, Any]) -> tuple[PlainURL | None, httpx.URL]:
    pairs = query_pairs(params)
    return PlainURLs().make(target, pairs), httpx.URL(target, params=pairs)


def assert_exact(got: PlainURL, url: httpx.URL) -> None:
    assert got.raw_path == url.raw_path and got.netloc == url.netloc
    assert got.shown == redact(url) == str(url)
    assert (got.scheme, got.host, got.port) == (url.scheme, url.host, url.port)
    assert got == PlainURL.of(url)
    sent = got.httpx()  # what goes through httpx's transports: the same request target
    assert (sent.scheme, sent.netloc, sent.raw_path) == (url.scheme, url.netloc, url.raw_path)


BINANCE = {"symbol": "BTCUSDT", "limit": 1000, "fromId": 1737816222}


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:18777/binance/api/v3/aggTrades",
    "https://api.binance.com/api/v3/aggTrades",
    "https://api.binance.com:443/api/v3/klines",  # the default port, dropped
    "http://api.binance.com:80/x",
    "https://API.Binance.COM/api",  # the host lower-cased
    "https://api.binance.com",  # no path: the request target is "/?..."
    "https://api.binance.com/",
    "https://api.example.com/a/./b/../c",  # dot segments removed
    "https://api.example.com/a b/%7e/ü",  # the path escaped as httpx escapes it
    "https://xn--bcher-kva.example/api",  # an IDNA host, sent decoded as httpx has it
    "https://bücher.example/api",
    "http://[::1]:8080/api",
])
@pytest.mark.parametrize("params", [
    BINANCE,
    {"symbol": "BTCUSDT", "interval": "1m", "startTime": 0, "endTime": 1, "limit": 1},
    {"a": "x.y_z~-", "b": True, "c": False, "d": None, "e": ""},  # None dropped, "" kept
    {"instId": "BTC-USDT", "after": 123, "limit": 100.5},
    {"k": [1, 2], "j": "v"},  # a repeated key, in order
])
async def test_plain_urls_are_exactly_httpx_urls(target: str, params: dict[str, Any]) -> None:
    got, url = await plain(target, params)
    assert got is not None
    assert_exact(got, url)


@pytest.mark.parametrize("target,params", [
    ("https://api.example.com/x", {"symbol": "BTC USDT"}),  # escaped by httpx
    ("https://api.example.com/x", {"symbol": "BTC/USDT"}),
    ("https://api.example.com/x", {"q": "a&b=c"}),
    ("https://api.example.com/x", {"q": "50%"}),
    ("https://api.example.com/x", {"q": "a+b"}),
    ("https://api.example.com/x", {"q": "é"}),
    ("https://api.example.com/x", {"a=b": "c"}),
    ("https://api.example.com/x", {1: "c"}),  # a key that is not a string
    ("https://api.example.com/x", {"q": "x" * 5000}),  # long
    ("https://api.example.com/x", {"q": None}),  # no pairs at all
    ("https://api.example.com/x#frag", BINANCE),
    ("https://u:p@api.example.com/x", BINANCE),  # credentials are never shown
    ("ftp://api.example.com/x", BINANCE),
    ("/relative/path", BINANCE),
])
async def test_anything_unusual_is_left_to_httpx(target: str, params: dict[str, Any]) -> None:
    got, url = await plain(target, params)
    assert got is None
    if url.scheme in ("http", "https"):  # what the client sends then: httpx's URL, as parts
        made = request_url(target, params, PlainURLs())
        assert made == PlainURL.of(url) and made.raw_path == url.raw_path
        assert "p@" not in made.shown


async def test_a_bad_target_is_refused() -> None:
    assert PlainURLs().make("http://bad host:x/y", query_pairs(BINANCE)) is None
    with pytest.raises(httpx.InvalidURL):
        request_url("http://bad host:x/y", BINANCE, PlainURLs())


async def test_a_mock_transport_is_sent_the_plain_url() -> None:
    sent: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url)
        return httpx.Response(200, json=[1])

    async with AsyncHTTPClient("x", "http://127.0.0.1:9/base", transport=httpx.MockTransport(handler)) as client:
        reply = await client.get("/api", BINANCE)
        assert len(client._plain_urls) == 1  # made without httpx's parse
    assert reply.url == "http://127.0.0.1:9/base/api?symbol=BTCUSDT&limit=1000&fromId=1737816222"
    assert sent[0].raw_path == b"/base/api?symbol=BTCUSDT&limit=1000&fromId=1737816222"


async def test_a_plain_url_and_httpx_url_send_the_same_request() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[1]")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/binance"
    urls = []
    async with server:
        for plain_made in (True, False):
            async with AsyncHTTPClient("x", base, transport=KeepAliveTransport(), max_retries=0) as client:
                if not plain_made:
                    client._plain_urls.make = lambda target, pairs: None  # type: ignore[method-assign]
                reply = await client.get("/api/v3/aggTrades", BINANCE)
                assert reply.json == [1]
                assert bool(client._plain_urls) is plain_made
                urls.append(reply.url)
    assert urls[0] == urls[1] == base + "/api/v3/aggTrades?symbol=BTCUSDT&limit=1000&fromId=1737816222"
    assert len(heads) == 2 and heads[0] == heads[1]
    assert heads[0].startswith(b"GET /binance/api/v3/aggTrades?symbol=BTCUSDT&limit=1000&fromId=1737816222 HTTP/1.1\r\n")
