"""Fixtures of the reliability tests: the golden (fault-free) datasets, made once."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from dccd_testing import made_once
from fault_kit import COMMANDS, golden_dataset, snapshot

from dccd_cli.storage import SeriesKey


@pytest.fixture(scope="session")
def golden_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both commands' datasets from an emulator without faults, made once per run (read only)."""
    return made_once(tmp_path_factory, "golden",
                     lambda root: golden_dataset(root, tmp_path_factory.mktemp("golden-cache")))


@pytest.fixture(scope="session")
def golden(golden_root: Path) -> dict[str, dict[SeriesKey, pa.Table]]:
    """Per command (``ohlc``, ``trades``): every series of the golden dataset, read back."""
    tables = {kind: snapshot(golden_root, kind) for kind in COMMANDS}
    assert all(tables.values()), "the golden run stored nothing"
    return tables
