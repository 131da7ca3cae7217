"""Scaffolding shared by the adapter tests (tests/adapters/): a fake clock, an adapter on
``httpx.MockTransport`` driven by it, canned replies, and small table/iterator helpers.

The mock is the client's transport (``dccd_cli.net.transport``): everything above it —
request URL and headers, redirects, retries, the reading of replies — is the code that
runs in production (tests/transport/test_seam.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import pyarrow as pa

from dccd_cli.exchange.adapter import Adapter
from dccd_cli.net.client import AsyncHTTPClient

Handler = Callable[[httpx.Request], httpx.Response]
# (status, body) or (status, body, headers); a str body is sent as is, anything else as JSON.
Reply = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]
A = TypeVar("A", bound=Adapter)


class FakeClock:
    """Monotonic and wall clock at once, starting at 2024-01-01T00:00Z; ``sleep`` records the
    wait, advances the clock by it and yields to the event loop once."""

    def __init__(self) -> None:
        self.t = 1_704_067_200.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


def make_adapter(cls: type[A], handler: Handler, base_url: str | None = None) -> tuple[A, FakeClock]:
    """``cls`` on an ``AsyncHTTPClient`` with its own rate limit and ``check``, served by
    ``handler``, sleeping on a fresh ``FakeClock`` with no jitter. ``base_url`` defaults to
    ``https://<name>.test``."""
    clock = FakeClock()
    http = AsyncHTTPClient(
        cls.name, base_url or f"https://{cls.name}.test", cls.rate_limit, check=cls.check,
        transport=httpx.MockTransport(handler), sleep=clock.sleep, clock=clock,
        wall_clock=clock, jitter=lambda: 1.0,
    )
    return cls(http), clock


def replies(*items: Reply) -> tuple[Handler, list[httpx.Request]]:
    """A handler serving ``items`` in order (the last one again for every further request),
    and the list of requests it has seen."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body, *headers = items[min(len(seen), len(items)) - 1]
        text = body if isinstance(body, str) else json.dumps(body)
        return httpx.Response(status, text=text, headers=headers[0] if headers else None)

    return handler, seen


def ints(table: pa.Table, column: str) -> list[int]:
    values: list[int] = table.column(column).cast(pa.int64()).to_pylist()
    return values


async def collect(it: AsyncIterable[Any]) -> list[Any]:
    # Any, not a TypeVar: paginate_* yield Chunk | FailedRange and the tests read .table
    # straight off the items.
    return [p async for p in it]
