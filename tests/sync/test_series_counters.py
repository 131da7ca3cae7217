"""Series sharing one exchange client count their own requests and retries."""

from __future__ import annotations

import asyncio

import httpx

from dccd_cli.net.client import AsyncHTTPClient, HTTPStats, series_stats


async def test_concurrent_series_count_apart_on_one_shared_client() -> None:
    failed_once: set[str] = set()

    def reply(request: httpx.Request) -> httpx.Response:
        # Each series' first request fails with a 503, so each retries exactly once.
        who = request.url.params["series"]
        if who not in failed_once:
            failed_once.add(who)
            return httpx.Response(503, json={"msg": "busy"})
        return httpx.Response(200, json=[])

    async def no_sleep(_: float) -> None:
        return None

    client = AsyncHTTPClient("test", "http://x", transport=httpx.MockTransport(reply), sleep=no_sleep)

    async def series(name: str, pages: int) -> HTTPStats:
        mine = HTTPStats()
        series_stats.set(mine)  # as job.run_series does, in its own task

        async def page() -> None:
            await client.get_json("/p", {"series": name})

        # A paginator's windows run as tasks of their own: they inherit the series' counters.
        await asyncio.gather(*(asyncio.ensure_future(page()) for _ in range(pages)))
        return mine

    a, b = await asyncio.gather(series("a", 3), series("b", 5))
    await client.aclose()
    assert (a.requests, a.retries) == (4, 1)
    assert (b.requests, b.retries) == (6, 1)
    assert (client.stats.requests, client.stats.retries) == (10, 2)
    assert series_stats.get() is None  # nothing leaked into the caller's context
