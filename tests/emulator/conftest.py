"""Fixtures for the emulator tests: servers on real loopback sockets, queried with httpx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from venue_client import NOW, SCALE, SEED, T0, VenueClient

from dccd_cli.emulator import EmulatorServer, EmulatorSettings


class Api(VenueClient):
    """A Binance venue client: ``api.get("klines", symbol=..., ...)``; ``now`` in ns."""

    venue, prefix, unit_ns = "binance", "/api/v3", 1
    t0 = T0

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
    with EmulatorServer(EmulatorSettings(seed=SEED, now=NOW, trades_scale=SCALE)) as emu:
        yield emu


@pytest.fixture(scope="session")
def api(server: EmulatorServer) -> Iterator[Api]:
    with Api(server) as a:
        yield a


@pytest.fixture(scope="session")
def busy_api() -> Iterator[Api]:
    """Full-scale market (BTC ~1M trades a day); ask it small pages only."""
    with EmulatorServer(EmulatorSettings(seed=SEED, now=NOW, trades_scale=1.0)) as emu:
        with Api(emu) as a:
            yield a
