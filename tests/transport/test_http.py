"""AsyncHTTPClient: retries, Retry-After, bans, the adapter's check hook, usage feedback,
sharing, server clock — on ``httpx.MockTransport`` and, once, on a real loopback socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from dccd_cli.errors import (
    BannedError,
    DccdError,
    ExchangeError,
    NetworkError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    UnknownSymbolError,
)
from dccd_cli.exchange.adapter import RateLimit
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.net.headers import parse_http_date, parse_retry_after

BASE = "https://api.test"
LIMIT = RateLimit(6000, 60, "X-MBX-USED-WEIGHT-1M")
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Monotonic and wall clock in one; sleeping advances it and is recorded."""

    def __init__(self, t: float = 1_704_067_200.0) -> None:  # 2024-01-01T00:00:00Z
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


def make(
    handler: Handler, *, rate_limit: RateLimit | None = LIMIT, **opts: Any
) -> tuple[AsyncHTTPClient, FakeClock]:
    clock = FakeClock()
    client = AsyncHTTPClient(
        "binance",
        BASE,
        rate_limit,
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock,
        wall_clock=clock,
        jitter=lambda: 1.0,  # deterministic backoff: the cap of each step
        **opts,
    )
    return client, clock


def replies(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler that plays ``responses`` in order (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


OK = httpx.Response(200, json=[[1, "2"]])


async def test_get_json_returns_parsed_body_and_sends_params() -> None:
    handler, seen = replies(OK)
    client, _ = make(handler)
    got = await client.get_json("/api/v3/klines", {"symbol": "BTCUSDT", "endTime": None, "x": True})
    assert got == [[1, "2"]]
    assert str(seen[0].url) == f"{BASE}/api/v3/klines?symbol=BTCUSDT&x=true"
    assert seen[0].headers["user-agent"].startswith("dccd/")
    assert client.stats.requests == 1 and client.stats.bytes_received == len(b'[[1,"2"]]')
    await client.aclose()


async def test_get_returns_headers_for_cursor_paging() -> None:
    handler, _ = replies(httpx.Response(200, json=[], headers={"CB-AFTER": "12345"}))
    client, _ = make(handler, rate_limit=None)
    reply = await client.get("/products/BTC-USD/trades", {"after": 99})
    assert reply.status == 200 and reply.json == [] and reply.headers["cb-after"] == "12345"
    assert reply.url.endswith("/products/BTC-USD/trades?after=99")


# -- 429 ----------------------------------------------------------------------------


async def test_429_waits_retry_after_seconds_without_spending_retries() -> None:
    handler, seen = replies(httpx.Response(429, headers={"Retry-After": "3"}), OK)
    client, clock = make(handler, max_retries=0)
    t0 = clock()
    assert await client.get_json("/x") == [[1, "2"]]
    assert clock() - t0 >= 3.0 and len(seen) == 2
    assert client.stats.rate_limited == 1 and client.stats.retries == 0


async def test_429_retry_after_http_date_is_read_against_the_server_clock() -> None:
    # The server's clock is 100 s ahead of ours: only the difference of its two dates counts.
    headers = {
        "Date": "Mon, 01 Jan 2024 00:01:40 GMT",
        "Retry-After": "Mon, 01 Jan 2024 00:01:45 GMT",
    }
    handler, _ = replies(httpx.Response(429, headers=headers), OK)
    client, clock = make(handler)
    t0 = clock()
    await client.get_json("/x")
    assert 5.0 <= clock() - t0 < 5.1


async def test_429_without_retry_after_backs_off() -> None:
    handler, _ = replies(httpx.Response(429), httpx.Response(429), OK)
    client, clock = make(handler, rate_limit=None)
    await client.get_json("/x")
    assert clock.sleeps == [0.5, 1.0]


async def test_429_waits_are_bounded() -> None:
    handler, seen = replies(httpx.Response(429, headers={"Retry-After": "1"}))
    client, _ = make(handler, max_rate_limit_waits=3)
    with pytest.raises(RateLimitedError) as info:
        await client.get_json("/x")
    assert len(seen) == 4 and info.value.status == 429 and info.value.retry_after == 1.0


async def test_429_pauses_the_other_requests_of_the_exchange() -> None:
    """Real time: after one 429 with Retry-After, nothing is sent until it has passed."""
    sent: dict[str, float] = {}
    first_429 = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.setdefault(request.url.path, time.monotonic())
        if request.url.path == "/a" and not first_429.is_set():
            first_429.set()
            return httpx.Response(429, headers={"Retry-After": "0.3"})
        return OK

    client = AsyncHTTPClient("binance", BASE, LIMIT, transport=httpx.MockTransport(handler))
    task_a = asyncio.create_task(client.get_json("/a"))
    await first_429.wait()
    await asyncio.sleep(0.01)  # let /a's reply be handled (the pause begins there)
    t_429 = sent["/a"]
    await client.get_json("/b")
    await task_a
    assert sent["/b"] - t_429 >= 0.28
    await client.aclose()


# -- 418 ----------------------------------------------------------------------------


async def test_418_raises_banned_at_once_and_later_requests_fail_fast() -> None:
    handler, seen = replies(httpx.Response(418, headers={"Retry-After": "120"}), OK)
    client, clock = make(handler)
    with pytest.raises(BannedError) as info:
        await client.get_json("/x")
    err = info.value
    assert err.status == 418 and err.retry_after == 120 and err.exchange == "binance"
    assert "until 2024-01-01 00:02:00 UTC" in str(err)
    assert err.until is not None and abs((err.until - datetime.now(UTC)).total_seconds() - 120) < 5
    clock.t += 60
    with pytest.raises(BannedError) as again:
        await client.get_json("/y")
    assert len(seen) == 1, "nothing is sent while banned"
    assert again.value.retry_after == pytest.approx(60)
    assert "until 2024-01-01 00:02:00 UTC" in str(again.value)
    clock.t += 61  # the ban has lifted
    assert await client.get_json("/z") == [[1, "2"]]


async def test_ban_reaches_requests_already_queued_in_the_bucket() -> None:
    handler, seen = replies(httpx.Response(418))
    client, _ = make(handler)
    assert client.bucket is not None
    client.bucket.pause_for(10)
    results = await asyncio.gather(
        *(client.get_json(f"/{i}") for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, BannedError) for r in results)
    assert len(seen) == 1 and "unknown time" in str(results[0])


# -- retries ------------------------------------------------------------------------


async def test_5xx_then_success() -> None:
    handler, seen = replies(httpx.Response(503), httpx.Response(500), OK)
    client, clock = make(handler)
    assert await client.get_json("/x") == [[1, "2"]]
    assert len(seen) == 3 and client.stats.retries == 2
    assert clock.sleeps == [0.5, 1.0]  # base 0.5, doubling (jitter pinned to its maximum)


async def test_exhausted_retries_raise_server_error_with_url_and_status() -> None:
    handler, seen = replies(httpx.Response(502, text="<html>Bad gateway</html>"))
    client, clock = make(handler, max_retries=3, backoff_cap=0.8)
    with pytest.raises(ServerError) as info:
        await client.get_json("/api/v3/klines", {"symbol": "BTCUSDT"})
    err = info.value
    assert err.status == 502 and err.url == f"{BASE}/api/v3/klines?symbol=BTCUSDT"
    assert "gave up after 3 retries" in str(err) and len(seen) == 4
    assert clock.sleeps == [0.5, 0.8, 0.8]  # capped


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_network_errors_are_retried(exc: Exception) -> None:
    handler, seen = replies(exc, OK)
    client, _ = make(handler)
    assert await client.get_json("/x") == [[1, "2"]]
    assert client.stats.retries == 1 and len(seen) == 2


async def test_network_error_exhausted_is_translated() -> None:
    handler, _ = replies(httpx.ConnectError("connection refused"))
    client, _ = make(handler, max_retries=2)
    with pytest.raises(NetworkError) as info:
        await client.get_json("/x")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert info.value.url == f"{BASE}/x" and info.value.status is None


async def test_total_timeout_per_attempt() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)
        return OK

    client = AsyncHTTPClient(
        "x", BASE, transport=httpx.MockTransport(handler), timeout=0.05, backoff_base=0.001
    )
    assert await client.get_json("/x") == [[1, "2"]]
    assert client.stats.retries == 1


async def test_truncated_json_in_200_is_retried() -> None:
    handler, seen = replies(httpx.Response(200, content=b'[[1,"2"],[3,'), OK)
    client, _ = make(handler)
    assert await client.get_json("/x") == [[1, "2"]]
    assert len(seen) == 2 and client.stats.retries == 1


async def test_invalid_json_exhausted_raises_protocol_error() -> None:
    handler, _ = replies(httpx.Response(200, content=b"<html>maintenance</html>"))
    client, _ = make(handler, max_retries=1)
    with pytest.raises(ProtocolError) as info:
        await client.get_json("/x")
    assert isinstance(info.value.__cause__, orjson.JSONDecodeError) and info.value.status == 200


async def test_4xx_raises_exchange_error_with_the_exchanges_message() -> None:
    body = {"code": -1121, "msg": "Invalid symbol."}
    handler, seen = replies(httpx.Response(400, json=body))
    client, _ = make(handler)
    with pytest.raises(ExchangeError) as info:
        await client.get_json("/api/v3/klines", {"symbol": "NOPE"})
    assert str(info.value).startswith("Invalid symbol. (code -1121)")
    assert info.value.status == 400 and len(seen) == 1


# -- the adapter's check hook -----------------------------------------------------------


def kraken_check(status: int, headers: Mapping[str, str], body: Any) -> DccdError | None:
    errors = body.get("error") if isinstance(body, dict) else None
    if errors and any("Rate limit" in e for e in errors):
        return RateLimitedError("; ".join(errors), retry_after=2.0)
    if errors and any("Unknown asset pair" in e for e in errors):
        return UnknownSymbolError("; ".join(errors))
    return None


def bitfinex_check(status: int, headers: Mapping[str, str], body: Any) -> DccdError | None:
    if isinstance(body, list) and len(body) >= 3 and body[0] == "error":
        if body[1] == 11010:
            return RateLimitedError(f"{body[2]} (code {body[1]})", retry_after=60.0)
        return ExchangeError(f"{body[2]} (code {body[1]})")
    return None


async def test_check_hook_rate_limit_inside_http_200_is_waited_out() -> None:
    limited = httpx.Response(200, json={"error": ["EAPI:Rate limit exceeded"]})
    handler, seen = replies(limited, httpx.Response(200, json={"error": [], "result": {}}))
    client, clock = make(handler, check=kraken_check, max_retries=0)
    assert await client.get_json("/0/public/OHLC") == {"error": [], "result": {}}
    assert client.stats.rate_limited == 1 and client.stats.retries == 0 and len(seen) == 2
    assert clock.sleeps and sum(clock.sleeps) >= 2.0


async def test_check_hook_usage_error_is_raised_as_is() -> None:
    handler, _ = replies(httpx.Response(200, json={"error": ["EQuery:Unknown asset pair"]}))
    client, _ = make(handler, check=kraken_check)
    with pytest.raises(UnknownSymbolError):
        await client.get_json("/0/public/OHLC")


async def test_check_hook_body_error_raises_exchange_error_with_context() -> None:
    handler, seen = replies(httpx.Response(500, json=["error", 10020, "limit: invalid"]))
    client, _ = make(handler, check=bitfinex_check)
    with pytest.raises(ExchangeError) as info:
        await client.get_json("/v2/candles/trade:1m:tBTCUSD/hist")
    assert str(info.value).startswith("limit: invalid (code 10020)")
    assert info.value.status == 500 and info.value.exchange == "binance" and len(seen) == 1


async def test_check_hook_per_request_and_server_error_is_retried() -> None:
    def flaky(status: int, headers: Mapping[str, str], body: Any) -> DccdError | None:
        return ServerError("busy") if body == {"busy": True} else None

    handler, seen = replies(httpx.Response(200, json={"busy": True}), OK)
    client, _ = make(handler)
    assert await client.get_json("/x", check=flaky) == [[1, "2"]]
    assert client.stats.retries == 1 and len(seen) == 2


# -- feedback and clock ------------------------------------------------------------


async def test_usage_header_feeds_the_bucket() -> None:
    used = 5690  # another process has spent most of this minute's budget

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal used
        used += int(request.url.params["w"])
        headers = {"X-MBX-USED-WEIGHT-1M": str(used), "Date": "Mon, 01 Jan 2024 00:00:30 GMT"}
        return httpx.Response(200, json=[], headers=headers)

    client, clock = make(handler)
    await client.get_json("/x", {"w": 2}, weight=2)
    t0 = clock()
    await client.get_json("/x", {"w": 2}, weight=2)  # 5692 + 2 <= 5700: goes at once
    assert clock() == t0
    await client.get_json("/x", {"w": 10}, weight=10)  # 5694 + 10 > 5700: waits for 00:01:00
    assert clock() - t0 >= 30.0


async def test_date_header_tracks_the_exchange_clock() -> None:
    dates = iter(
        [
            "Mon, 01 Jan 2024 00:00:10 GMT",
            "Monday, 01-Jan-24 00:00:05 GMT",  # RFC 850
            "Mon Jan  1 00:00:12 2024",  # asctime
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[], headers={"Date": next(dates)})

    client, clock = make(handler)
    assert client.last_server_date_ns is None and client.server_time_ns() is None
    base = 1_704_067_200 * 10**9
    await client.get_json("/x")
    assert client.last_server_date_ns == base + 10 * 10**9
    await client.get_json("/x")  # an older reply (RFC 850 date) does not move it back
    assert client.last_server_date_ns == base + 10 * 10**9
    await client.get_json("/x")  # asctime form
    assert client.last_server_date_ns == base + 12 * 10**9
    clock.t += 1.5
    assert client.server_time_ns() == base + 13_500_000_000


def test_parsers() -> None:
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777.0
    assert parse_http_date("garbage") is None
    assert parse_retry_after("120", now=0) == 120.0
    assert parse_retry_after("-5", now=0) == 0.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now=784111777.0) == 10.0
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


async def test_credentials_never_appear_in_errors() -> None:
    handler, _ = replies(httpx.Response(404, json={"message": "NotFound"}))
    client = AsyncHTTPClient(
        "coinbase", "https://user:secret@api.test", transport=httpx.MockTransport(handler)
    )
    with pytest.raises(ExchangeError) as info:
        await client.get_json("/products/NOPE/candles")
    assert "secret" not in str(info.value)
    assert info.value.url == "https://api.test/products/NOPE/candles"
    assert str(info.value).startswith("NotFound")


# -- sharing ------------------------------------------------------------------------


async def test_shared_client_is_reference_counted() -> None:
    handler, _ = replies(OK)
    transport = httpx.MockTransport(handler)
    async with AsyncHTTPClient.shared("binance", BASE, LIMIT, transport=transport) as one:
        two = await AsyncHTTPClient.acquire("binance", BASE + "/", LIMIT, transport=transport)
        assert two is one
        other = await AsyncHTTPClient.acquire("binance", "https://other.test", LIMIT)
        assert other is not one and other.bucket is one.bucket, "one budget per exchange"
        await other.release()
        assert other.closed
        await two.release()
        assert not one.closed
        assert await one.get_json("/x") == [[1, "2"]]
    assert one.closed
    async with AsyncHTTPClient.shared("binance", BASE, LIMIT, transport=transport) as fresh:
        assert fresh is not one and not fresh.closed


# -- a real socket ------------------------------------------------------------------


async def test_loopback_connection_dropped_mid_body_then_success() -> None:
    body = orjson.dumps([[1704067200000, "42000.1", "42100.0"]] * 20)
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode())
        if connections == 1:
            writer.write(body[: len(body) // 3])  # then hang up mid-body
        else:
            writer.write(body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AsyncHTTPClient.shared(
            "loopback", f"http://127.0.0.1:{port}", RateLimit(100, 1), backoff_base=0.01
        ) as client:
            assert await client.get_json("/api/v3/klines") == orjson.loads(body)
            assert client.stats.retries == 1 and connections == 2
    finally:
        server.close()
        await server.wait_closed()
