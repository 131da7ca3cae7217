"""Crash safety: ``dccd`` killed with SIGKILL at any moment keeps what its ledger claims, and
the next run completes the dataset to exactly the golden one.

Two kinds of crash point:

* random moments of an OHLC and of a trades download (the process killed from outside,
  sometimes twice in a row, the second time while it resumes);
* every step at which the storage changes the disk, enumerated: just before the n-th
  rename of a finished temporary file, just after it (before the ledger follows), and
  in the middle of a Parquet file, after its n-th row group — for every n until the run
  completes.

After every kill: every Parquet file reads, every series keeps its contract, and every
range the ledger calls fetched holds exactly the golden rows (stale temporary files may be
left; the next run removes them). After every re-run: exactly the golden dataset.
The full loop is ``@pytest.mark.slow`` (``make test-slow``); a three-kill variant runs in
the normal suite.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from dccd_testing import made_once, run_cli, run_cli_process
from fault_kit import (
    assert_equal_to_golden,
    assert_ledger_truthful,
    assert_sound,
    settings,
    snapshot,
)

from dccd_cli.emulator import EmulatorServer
from dccd_cli.storage import SeriesKey

# Long enough to be killed in the middle of: 17 days of 1-minute bars (25 pages, a January
# and a February file) and 12 hours of trades (~50 pages, two day files).
CRASH = {
    "ohlc": ("ohlc", "binance", "BTC-USDT", "--span", "1m", "--start", "2024-01-22",
             "--end", "2024-02-08"),
    "trades": ("trades", "binance", "BTC-USDT", "--start", "2024-01-01T18:00",
               "--end", "2024-01-02T06:00"),
}
LATENCY_MS = 25  # spreads the download over a second or so, so random kills land in it

# Run the real CLI with one storage step turned into a SIGKILL: argv is POINT N ARGS...
RUNNER = """
import os, signal, sys
import pyarrow.parquet as pq
point, n = sys.argv[1], int(sys.argv[2])
calls = {"rename": 0, "write": 0}

def crash():
    os.kill(os.getpid(), signal.SIGKILL)

real_replace = os.replace
def replace(src, dst, *args, **kwargs):
    calls["rename"] += 1
    if point == "before-rename" and calls["rename"] == n:
        crash()
    real_replace(src, dst, *args, **kwargs)
    if point == "after-rename" and calls["rename"] == n:
        crash()
os.replace = replace

real_write = pq.ParquetWriter.write_table
def write_table(self, *args, **kwargs):  # every Parquet write goes through a ParquetWriter
    real_write(self, *args, **kwargs)
    calls["write"] += 1
    if point == "mid-write" and calls["write"] == n:
        crash()  # a row group written, the file not finished: no footer yet
pq.ParquetWriter.write_table = write_table

from dccd_cli.cli.app import main
sys.argv = ["dccd", *sys.argv[3:]]
main()
"""
POINTS = ("before-rename", "after-rename", "mid-write")

Golden = dict[str, dict[SeriesKey, pa.Table]]


@pytest.fixture(scope="module")
def crash_golden(tmp_path_factory: pytest.TempPathFactory) -> Golden:
    def make(root: Path) -> None:
        env = {"DCCD_CACHE_DIR": str(tmp_path_factory.mktemp("crash-cache"))}
        with EmulatorServer(settings()) as server:
            for args in CRASH.values():
                r = run_cli(*args, "--base-url", server.venue_url("binance"), "--out", str(root),
                            "--quiet", env=env)
                assert r.code == 0, r.stderr

    root = made_once(tmp_path_factory, "crash-golden", make)
    return {kind: snapshot(root, kind) for kind in CRASH}


@pytest.fixture(scope="module")
def slow_server() -> Iterator[EmulatorServer]:
    """For the runs killed at random moments."""
    with EmulatorServer(settings(latency_ms=LATENCY_MS)) as server:
        yield server


@pytest.fixture(scope="module")
def fast_server() -> Iterator[EmulatorServer]:
    """For the runs that complete a dataset, and those killed at a storage step."""
    with EmulatorServer(settings()) as server:
        yield server


def _argv(server: EmulatorServer, kind: str, out: Path) -> list[str]:
    return [*CRASH[kind], "--base-url", server.venue_url("binance"), "--out", str(out), "--quiet"]


def _resume_and_compare(server: EmulatorServer, kind: str, out: Path, golden: Golden) -> None:
    r = run_cli(*_argv(server, kind, out))
    assert r.code == 0, r.stderr
    assert_sound(out)
    assert_equal_to_golden(out, kind, golden[kind])


def _after_kill(out: Path, kind: str, golden: Golden) -> None:
    assert_sound(out, killed=True)
    assert_ledger_truthful(out, golden[kind])


def _duration(server: EmulatorServer, kind: str, tmp: Path) -> float:
    """How long an uninterrupted run takes here (kills are drawn within it)."""
    t0 = time.monotonic()
    r = run_cli_process(*_argv(server, kind, tmp / f"timing-{kind}"))
    assert r.code == 0, r.stderr
    return time.monotonic() - t0


def random_kills(server: EmulatorServer, finisher: EmulatorServer, kind: str, kills: int,
                 golden: Golden, tmp: Path, rng: random.Random, writing: list[str]) -> int:
    """Kill runs of ``kind`` at random moments until ``kills`` kills landed mid-run (a
    run sometimes killed twice: the second time while resuming); each directory is then
    completed by a normal run (against ``finisher``) and compared. Returns the kills made.

    The moments are drawn from the last two thirds of a run: the first third is mostly
    the interpreter starting, where a kill can only find an empty directory.
    """
    duration = _duration(server, kind, tmp)
    done = attempts = 0
    while done < kills:
        attempts += 1
        assert attempts <= 3 * kills, "runs keep finishing before the kill"
        out = tmp / f"{kind}-{attempts}"
        for _ in range(1 if rng.random() < 0.5 else 2):
            proc = subprocess.Popen([sys.executable, "-m", "dccd_cli", *_argv(server, kind, out)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    stdin=subprocess.DEVNULL)
            time.sleep(rng.uniform(duration / 3, duration))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                done += 1
                if any(out.rglob("*.parquet")) or any(out.rglob(".dccd-*")):
                    writing.append(kind)  # the kill found the dataset being written
            proc.wait()
            _after_kill(out, kind, golden)
        _resume_and_compare(finisher, kind, out, golden)
    return done


def crash_point(server: EmulatorServer, kind: str, point: str, n: int, golden: Golden,
                out: Path) -> bool:
    """Run ``kind`` with the n-th ``point`` turned into a SIGKILL; if it was reached, check
    the dataset, resume and compare. Returns whether the crash happened."""
    proc = subprocess.run([sys.executable, "-c", RUNNER, point, str(n), *_argv(server, kind, out)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                          env=dict(os.environ))
    if proc.returncode == 0:
        return False  # the run has fewer than n such steps: all of them are covered
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    _after_kill(out, kind, golden)
    _resume_and_compare(server, kind, out, golden)
    return True


def test_three_kills_resume_to_the_golden_dataset(crash_golden: Golden, slow_server: EmulatorServer,
                                                   fast_server: EmulatorServer, tmp_path: Path) -> None:
    rng = random.Random(20240101)
    kills = sum(random_kills(slow_server, fast_server, kind, 1, crash_golden, tmp_path, rng, [])
                for kind in CRASH)
    # And one storage step: the first data file renamed into place, its ledger entry not yet.
    assert crash_point(fast_server, "ohlc", "after-rename", 2, crash_golden, tmp_path / "point")
    assert kills + 1 >= 3


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_loop_resumes_to_the_golden_dataset(crash_golden: Golden,
                                                    slow_server: EmulatorServer,
                                                    fast_server: EmulatorServer,
                                                    tmp_path: Path) -> None:
    rng = random.Random(7)
    writing: list[str] = []
    kills = {kind: random_kills(slow_server, fast_server, kind, 10, crash_golden, tmp_path / kind,
                                rng, writing)
             for kind in CRASH}
    assert sum(kills.values()) >= 20
    points: dict[tuple[str, str], int] = {}
    for kind in CRASH:
        for point in POINTS:
            n = 1
            while crash_point(fast_server, kind, point, n, crash_golden,
                              tmp_path / f"{kind}-{point}-{n}"):
                n += 1
            points[(kind, point)] = n - 1
            assert n > 1, f"{kind}: no {point} step was reached"
    print(f"\nrandom kills: {kills} ({len(writing)} with data files on disk); storage crash "
          f"points: {points}; total {sum(kills.values()) + sum(points.values())}")
