"""Fixtures for the emulator tests: servers on real loopback sockets, queried with httpx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.timeutil import parse_time

MS_NS = 1_000_000
T0 = parse_time("2024-01-02", now=0)  # a Tuesday, 00:00 UTC
NOW = parse_time("2024-03-01T12:34:56.789Z", now=0)  # the market's frozen 'now'
SCALE = 0.02  # BTC ~20k trades a day: fast, yet every minute trades


class Api:
    """A Binance venue client: ``api.get("klines", symbol=..., ...)``."""

    t0 = T0
    now = NOW

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.venue_url("binance") + "/api/v3",
                                   timeout=30.0)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def raw(self, endpoint: str, **params: Any) -> httpx.Response:
        return self.client.get("/" + endpoint, params=params)

    def get(self, endpoint: str, **params: Any) -> Any:
        r = self.raw(endpoint, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def admin(self, what: str, body: dict[str, Any] | None = None) -> Any:
        url = self.server.base_url + "/_emulator/" + what
        r = httpx.post(url, json=body) if body is not None else httpx.get(url)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="session")
def api_for() -> type[Api]:
    """The client class, for tests that start their own server (``api_for(emu)``)."""
    return Api


@pytest.fixture(scope="session")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorSettings(seed=11, now=NOW, trades_scale=SCALE)) as emu:
        yield emu


@pytest.fixture(scope="session")
def api(server: EmulatorServer) -> Iterator[Api]:
    with Api(server) as a:
        yield a


@pytest.fixture(scope="session")
def busy_api() -> Iterator[Api]:
    """Full-scale market (BTC ~1M trades a day); ask it small pages only."""
    with EmulatorServer(EmulatorSettings(seed=11, now=NOW, trades_scale=1.0)) as emu:
        with Api(emu) as a:
            yield a

