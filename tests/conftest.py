"""Shared fixtures: an emulator on a real loopback socket; isolated cache and data dirs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dccd_testing import FROZEN_NOW, TEST_TRADES_SCALE

from dccd_cli.emulator import EmulatorServer, EmulatorSettings


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the market-list cache and default data dir out of the user's home."""
    monkeypatch.setenv("DCCD_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("DCCD_DATA_DIR", str(tmp_path_factory.mktemp("default-data")))


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    """One shared emulator with a frozen clock, for tests that do not change its settings."""
    with EmulatorServer(EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE)) as server:
        yield server
