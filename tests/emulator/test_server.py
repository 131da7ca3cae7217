"""The server's lifecycle: sync and async use, ports, latency, settings validation."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from typer.testing import CliRunner

from dccd_cli.cli.app import app
from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.emulator.faults import FAULT_KINDS


def test_sync_server_binds_a_free_port_and_stops() -> None:
    with EmulatorServer(EmulatorSettings(trades_scale=0.02)) as a, \
            EmulatorServer(EmulatorSettings(trades_scale=0.02)) as b:
        assert a.port != b.port and a.port > 0
        assert a.venue_url("binance") == f"http://127.0.0.1:{a.port}/binance"
        real = httpx.get(a.venue_url("binance") + "/api/v3/time").json()["serverTime"]
        assert abs(real - time.time() * 1000) < 60_000  # now=None: real time
    with pytest.raises(httpx.ConnectError):
        httpx.get(a.base_url + "/_emulator/health")
    with pytest.raises(KeyError):
        a.venue_url("nowhere")


async def test_async_use_does_not_block_either_loop() -> None:
    settings = EmulatorSettings(now=1_709_251_200_000_000_000, trades_scale=0.02,
                                latency_ms=50)
    async with EmulatorServer(settings) as emu:
        async with httpx.AsyncClient(base_url=emu.venue_url("binance")) as client:
            t = time.perf_counter()
            rs = await asyncio.gather(*(client.get("/api/v3/ping") for _ in range(10)))
            elapsed = time.perf_counter() - t
    assert all(r.status_code == 200 for r in rs)
    assert 0.05 <= elapsed < 0.45  # latency applies, concurrently


async def test_sync_with_inside_async_code() -> None:
    with EmulatorServer(EmulatorSettings(trades_scale=0.02)) as emu:
        async with httpx.AsyncClient() as client:
            r = await client.get(emu.base_url + "/_emulator/health")
    assert "binance" in r.json()["venues"]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown venues"):
        EmulatorServer(EmulatorSettings(venues={"binanse": {}}))
    with pytest.raises(ValueError, match="unknown binance settings"):
        EmulatorServer(EmulatorSettings(venues={"binance": {"weight_limt": 5}}))


def test_the_faults_help_names_every_fault_kind() -> None:
    """``dccd emulator --help`` is what an installed user has: it lists every kind."""
    out = re.sub(r"\s+", " ", CliRunner().invoke(app, ["emulator", "--help"], env={"COLUMNS": "300"}).output)
    listed = re.search(r"kinds: ([^;]*);", out)
    assert listed is not None, out
    assert listed.group(1).split() == list(FAULT_KINDS)
