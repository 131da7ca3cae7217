"""``dccd markets``: an exchange's markets, or those a pattern (or name) stands for."""

from __future__ import annotations

from dccd_cli.exchange.markets import check_symbol, load_markets, resolve
from dccd_cli.exchange.registry import get_adapter
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.run.results import MarketsResult


async def run_markets(exchange: str, pattern: str | None, base_url: str | None) -> MarketsResult:
    """``dccd markets``: the exchange's markets, or those a pattern (or name) stands for."""
    adapter_cls = get_adapter(exchange)
    wanted = check_symbol(pattern) if pattern is not None else None
    url = (base_url or adapter_cls.default_base_url).rstrip("/")
    async with AsyncHTTPClient.shared(adapter_cls.name, url, adapter_cls.rate_limit,
                                      check=adapter_cls.check) as http:
        adapter = adapter_cls(http)
        if wanted is None:
            markets = await load_markets(adapter, url)
            found = [markets[s] for s in sorted(markets)]
        else:
            found = await resolve(adapter, url, [wanted])
    return MarketsResult(adapter_cls.name, wanted, sorted(found, key=lambda m: m.symbol))
