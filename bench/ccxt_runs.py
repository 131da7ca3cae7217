"""The best-known alternative, run the way its documentation advises for a long range:
ccxt's async client with its rate limiter on and its own pagination (`paginate: True`)."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import ccxt.async_support as ccxt_async


def _client(base: str) -> Any:
    ex = ccxt_async.binance({"enableRateLimit": True, "options": {"fetchMarkets": {"types": ["spot"]}}})
    ex.urls["api"]["public"] = f"{base}/binance/api/v3"
    return ex


async def _ohlcv(base: str, start_ms: int, end_ms: int) -> tuple[float, list[list[float]]]:
    ex = _client(base)
    try:
        await ex.load_markets()
        calls = math.ceil((end_ms - start_ms) / 60_000 / 1000) + 2
        t0 = time.perf_counter()
        rows = await ex.fetch_ohlcv(
            "BTC/USDT", "1m", since=start_ms, limit=None,
            params={"paginate": True, "until": end_ms - 1, "paginationCalls": calls,
                    "maxEntriesPerRequest": 1000},
        )
        return time.perf_counter() - t0, rows
    finally:
        await ex.close()


async def _trades(base: str, start_ms: int, end_ms: int) -> tuple[float, list[dict[str, Any]]]:
    ex = _client(base)
    try:
        await ex.load_markets()
        t0 = time.perf_counter()
        rows = await ex.fetch_trades(
            "BTC/USDT", since=start_ms, limit=None,
            params={"paginate": True, "paginationDirection": "forward", "until": end_ms - 1,
                    "paginationCalls": 100_000, "maxEntriesPerRequest": 1000},
        )
        return time.perf_counter() - t0, rows
    finally:
        await ex.close()


def ohlcv(base: str, start_ms: int, end_ms: int) -> tuple[float, list[list[float]]]:
    return asyncio.run(_ohlcv(base, start_ms, end_ms))


def trades(base: str, start_ms: int, end_ms: int) -> tuple[float, list[dict[str, Any]]]:
    return asyncio.run(_trades(base, start_ms, end_ms))
