"""A raw HTTP client of one emulator venue, shared by the venue tests (tests/emulator/).

Each test file subclasses :class:`VenueClient` with its venue's name and URL prefix and,
where the venue wraps its answers in an envelope (OKX, Bybit, Kraken), an ``unwrap`` that
asserts the envelope says success: ``get`` is then exactly as strict as the venue allows.
A module of its own, not conftest, because test files import it by name (pytest runs
with ``--import-mode=importlib`` and ``tests/`` on the path).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import httpx
import pytest

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.timeutil import parse_time

T0 = parse_time("2024-01-02", now=0)  # a Tuesday, 00:00 UTC
NOW = parse_time("2024-03-01T12:34:56.789Z", now=0)  # the market's frozen 'now'
SEED = 11
SCALE = 0.02  # BTC ~20k trades a day: fast, yet every minute trades
PAIRS = {"BTC/USDT", "ETH/USDT", "SOL/EUR"}  # the market's instruments, in ccxt's names


def venue_server(venue: str, settings: dict[str, Any], now: int = NOW) -> EmulatorServer:
    """The tests' market (seed 11, scale 0.02, frozen at ``now``) with ``venue``'s
    ``settings``; use it as a context manager."""
    return EmulatorServer(EmulatorSettings(seed=SEED, now=now, trades_scale=SCALE,
                                           venues={venue: settings}))


class VenueClient:
    """``client.get(path, **params)`` asserts HTTP 200 (and the venue's envelope) and
    returns the payload; ``client.raw`` returns the response unchecked. ``now`` is the
    server's clock when the client was made, in the venue's unit (``unit_ns``)."""

    venue: ClassVar[str]
    prefix: ClassVar[str] = ""  # the API root below the venue's URL, e.g. "/api/v3"
    unit_ns: ClassVar[int] = 1_000_000  # milliseconds, the unit of most venues

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.venue_url(self.venue) + self.prefix,
                                   timeout=30.0)
        self.now = server.clock.now_ns() // self.unit_ns

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def raw(self, path: str, **params: Any) -> httpx.Response:
        # httpx joins "x" and "/x" alike onto the base URL's path.
        return self.client.get(path, params=params)

    def get(self, path: str, **params: Any) -> Any:
        r = self.raw(path, **params)
        assert r.status_code == 200, r.text
        return self.unwrap(r.json())

    def unwrap(self, body: Any) -> Any:
        """The payload of a successful answer's body; venues with an envelope check it."""
        return body


def stock_ccxt(exchange_id: str, client: VenueClient) -> tuple[Any, dict[str, Any]]:
    """A stock ccxt exchange (skips without ccxt) reading ``client``'s venue, and its
    markets, asserted to hold every pair of the market."""
    ccxt = pytest.importorskip("ccxt")
    ex = getattr(ccxt, exchange_id)({"enableRateLimit": False,
                                     "has": {"fetchCurrencies": False}})
    ex.urls["api"]["public"] = client.server.venue_url(client.venue)
    markets = ex.load_markets()
    assert PAIRS <= set(markets)
    return ex, markets
