"""Helpers shared by the tests: the real CLI as a subprocess, constants of the test emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dccd_cli.timeutil import datetime_to_ns

# The emulator's frozen 'now' in most tests: half an hour into 2024-03-01, so the 00:00 hourly
# bar is still forming.
FROZEN_NOW = datetime_to_ns(datetime(2024, 3, 1, 0, 30, tzinfo=UTC))
# Trade counts scaled down so a day of BTC-USDT is some tens of pages, not a thousand.
TEST_TRADES_SCALE = 0.02


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            cwd: Path | None = None) -> CliRun:
    """Run the real `dccd` command line in a subprocess, as a user or cron would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "dccd_cli", *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL,
        cwd=cwd,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# Real exchange replies, kept with the tests (tests/fixtures/samples/SOURCES.md says where each
# comes from), so that a clone of the repository has everything its tests read.
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "samples"
