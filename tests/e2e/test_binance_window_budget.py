"""Window mode end to end: dccd's HTTP client against the emulator's Binance limiter.

The emulator's limits are shrunk (240 weight per 3 s) so that a few hundred requests span
several windows in seconds; the client is given the same budget, as the Binance adapter
declares the real one. Whatever the burst, the exchange never answers 429.
"""

from __future__ import annotations

import asyncio

from dccd_testing import FROZEN_NOW

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.exchange.adapter import RateLimit
from dccd_cli.net.client import AsyncHTTPClient

LIMIT, WINDOW_S = 240, 3
VENUE = {"weight_limit": LIMIT, "window_s": WINDOW_S, "ban_after": 0}  # one 429 and banned


async def _klines(base_url: str, requests: int) -> AsyncHTTPClient:
    rate_limit = RateLimit(LIMIT, WINDOW_S, f"X-MBX-USED-WEIGHT-{WINDOW_S}S", counts_per_window=True)
    client = AsyncHTTPClient("binance", base_url, rate_limit, max_retries=0)
    start_ms = 1_704_067_200_000

    async def one(i: int) -> None:
        rows = await client.get_json("/api/v3/klines", {
            "symbol": "BTCUSDT", "interval": "1m", "startTime": start_ms + i * 60_000, "limit": 1,
        }, weight=2)
        assert len(rows) == 1

    sem = asyncio.Semaphore(16)

    async def bounded(i: int) -> None:
        async with sem:
            await one(i)

    try:
        await asyncio.gather(*(bounded(i) for i in range(requests)))
    finally:
        await client.aclose()
    return client


async def test_bursts_of_a_whole_window_never_draw_a_429() -> None:
    # 300 klines at weight 2 = 600 weight: 228 (95 %) per 4 s horizon -> 3 bursts.
    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, venues={"binance": VENUE})) as server:
        client = await _klines(server.venue_url("binance"), 300)
    assert client.stats.rate_limited == 0
    assert client.stats.requests == 300
    assert client.bucket is not None and client.bucket.waited_s > 0  # it did wait for windows
