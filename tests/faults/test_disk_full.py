"""A disk that fills up: one clear error, exit 1, the files already there intact, no
temporary file left, a ledger that claims nothing the files lack — and once there is room
again, the next run completes the dataset.

Two ways to fill it: a real 2 MB tmpfs (when this machine lets the test mount one), and
``ENOSPC`` injected into the writes of an in-process run (always).
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fault_kit import (
    COMMANDS,
    FAST_FAILURE,
    assert_equal_to_golden,
    assert_ledger_truthful,
    assert_sound,
    run,
    settings,
)
from typer.testing import CliRunner

from dccd_cli.cli.app import app
from dccd_cli.emulator import EmulatorServer
from dccd_cli.storage import SeriesKey, atomic

Golden = dict[str, dict[SeriesKey, pa.Table]]
FIRST_PART = {"ohlc": "2024-01-03", "trades": "2024-01-01T02:00"}  # --end of the first run
NO_SPACE = "No space left on device"


def hashes(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@contextmanager
def first_part_stored(out: Path) -> Iterator[tuple[EmulatorServer, dict[Path, str]]]:
    """An emulator, and the first part of both datasets stored under ``out`` by it: the
    files (with their hashes) that a full disk must leave as they are."""
    with EmulatorServer(settings()) as server:
        for kind, end in FIRST_PART.items():
            code, _, stderr = run(server, kind, out, "--end", end)
            assert code == 0, stderr
        yield server, hashes(out)


def assert_intact(before: dict[Path, str]) -> None:
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before if p.exists()}
    assert after == before, "a file stored before the disk filled up was changed or removed"


def assert_failed_cleanly(out: Path, kept: dict[Path, str],
                          golden: dict[SeriesKey, pa.Table], *,
                          ledger_may_lag: bool = False) -> None:
    """What a run that hit the full disk must leave: ``kept`` unchanged, every file
    readable, and a ledger that claims nothing the files lack."""
    assert_intact(kept)
    assert_sound(out, ledger_may_lag=ledger_may_lag)
    assert_ledger_truthful(out, golden)


def assert_completes_with_room(server: EmulatorServer, out: Path, golden: Golden) -> None:
    """Once there is room again, the next run of each command completes its dataset."""
    for kind in COMMANDS:
        code, _, stderr = run(server, kind, out)
        assert code == 0, stderr
        assert_equal_to_golden(out, kind, golden[kind])


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs, or a skip where mounting is not possible (not root, a container)."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a small filesystem: {exc}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


def fill(directory: Path) -> Path:
    """Take every free byte of the filesystem with one file; returns it."""
    filler = directory / "filler"
    block = b"\0" * 65536
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    for size in (4096, 512, 1):  # and the scraps
        try:
            with open(filler, "ab") as fh:
                while True:
                    fh.write(b"\0" * size)
                    fh.flush()
        except OSError:
            pass
    return filler


def test_a_full_filesystem_is_one_clear_error_and_keeps_the_files(
    small_fs: Path, golden: Golden
) -> None:
    out = small_fs / "data"
    with first_part_stored(out) as (server, before):
        filler = fill(small_fs)
        for kind in COMMANDS:
            code, summary, stderr = run(server, kind, out, "--quiet", env=FAST_FAILURE)
            assert code == 1, stderr
            (line,) = stderr.strip().splitlines()
            assert line.startswith("dccd: error: could not ") and line.endswith(NO_SPACE), line
            assert_failed_cleanly(out, before, golden[kind])
        filler.unlink()
        assert_completes_with_room(server, out, golden)
    assert_sound(out)


def _invoke_failing(server: EmulatorServer, kind: str, out: Path) -> list[str]:
    """An in-process run, which must exit 1; the lines of its stderr."""
    args = [*COMMANDS[kind], "--base-url", server.venue_url("binance"), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    return result.stderr.strip().splitlines()


def test_enospc_in_a_data_file_write(monkeypatch: pytest.MonkeyPatch, golden: Golden,
                                     tmp_path: Path) -> None:
    out = tmp_path / "data"
    real = pq.ParquetWriter.write_table

    def half_then_full(self: pq.ParquetWriter, table: pa.Table, *args: Any, **kwargs: Any) -> None:
        # The first rows reach the file, then the disk is full.
        real(self, table.slice(0, table.num_rows // 2), *args, **kwargs)
        raise OSError(errno.ENOSPC, NO_SPACE)

    with first_part_stored(out) as (server, before):
        monkeypatch.setattr(pq.ParquetWriter, "write_table", half_then_full)
        for kind in COMMANDS:
            (line,) = _invoke_failing(server, kind, out)
            assert line.startswith("dccd: error: could not write ") and line.endswith(NO_SPACE), line
            assert_failed_cleanly(out, before, golden[kind])
        monkeypatch.undo()
        assert_completes_with_room(server, out, golden)


def test_enospc_in_a_ledger_write(monkeypatch: pytest.MonkeyPatch, golden: Golden,
                                  tmp_path: Path) -> None:
    # The data files are written, the ledger cannot be: the ledger keeps saying what it said,
    # never more than the files hold, and the next run fetches the rest again.
    out = tmp_path / "data"

    class Full:
        def __init__(self, path: Any, mode: str) -> None:
            self.fh = open(path, mode)  # closed by __exit__

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, data: bytes) -> int:
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, NO_SPACE)

    with first_part_stored(out) as (server, before):
        ledgers = {p: h for p, h in before.items() if p.name == "_coverage.json"}
        monkeypatch.setattr(atomic, "open", Full, raising=False)
        for kind in COMMANDS:
            line = _invoke_failing(server, kind, out)[-1]
            assert line.startswith("dccd: error: could not write ") and "_coverage.json" in line, line
            assert line.endswith(NO_SPACE), line
            assert_failed_cleanly(out, ledgers, golden[kind], ledger_may_lag=True)
        monkeypatch.undo()
        assert_completes_with_room(server, out, golden)
