"""Helpers shared by the tests: the real CLI in this process or in a subprocess, constants of
the test emulator."""

from __future__ import annotations

import fcntl
import importlib
import io
import locale
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

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


# Variables the interpreter reads once, at start-up (PYTHONIOENCODING, PYTHONUTF8, ...): they
# mean something only to a new process.
_START_UP_PREFIX = "PYTHON"
# What the command line keeps once per process (module, name, value at start): a new
# process starts with these, so each in-process run does too.
_PER_PROCESS = (("dccd_cli.cli.jsonout", "_printed", False),
                ("dccd_cli.cli.outcome", "_said_stopped", False),
                ("dccd_cli.cli.signals", "_received", False),
                ("dccd_cli.cli.signals", "_main", None))


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            cwd: Path | None = None) -> CliRun:
    """Run the real `dccd` command line in this process: ``dccd_cli.cli.app:main``, the
    console script's own entry, with its own argv, environment, working directory, stdin
    (/dev/null) and std streams (pipes' encoding, not a terminal), and its exit code taken
    from the ``SystemExit`` it ends with. For what a command prints, stores and exits with.

    What only a process shows — signals, SIGKILL, Ctrl-C, broken or closed pipes, the
    dataset lock held by another process, start-up variables, the installed entry point —
    is for ``run_cli_process``. ``timeout`` is the process's; here pytest-timeout bounds a
    run that hangs."""
    del timeout
    if any(name.startswith(_START_UP_PREFIX) for name in env or {}):
        raise ValueError(f"{sorted(env or {})}: interpreter start-up variables need run_cli_process")
    from dccd_cli.cli.app import main

    modules = [importlib.import_module(module) for module, _, _ in _PER_PROCESS]
    saved_state = [getattr(m, name) for m, (_, name, _) in zip(modules, _PER_PROCESS, strict=True)]
    for m, (_, name, start) in zip(modules, _PER_PROCESS, strict=True):
        setattr(m, name, start)
    encoding = locale.getpreferredencoding(False)
    stdout, stderr = io.BytesIO(), io.BytesIO()
    # Kept here and detached at the end: a text wrapper closes its buffer when collected.
    out_text = io.TextIOWrapper(stdout, encoding=encoding, write_through=True)
    err_text = io.TextIOWrapper(stderr, encoding=encoding, errors="backslashreplace", write_through=True)
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_std = sys.argv, sys.stdin, sys.stdout, sys.stderr
    saved_sigterm = signal.getsignal(signal.SIGTERM)
    logger = logging.getLogger("dccd")
    saved_log = logger.handlers[:], logger.level, logger.propagate
    code: int
    with open(os.devnull, encoding=encoding) as stdin:
        try:
            os.environ.update(env or {})
            if cwd is not None:
                os.chdir(cwd)
            sys.argv = ["dccd", *args]
            sys.stdin = stdin
            sys.stdout, sys.stderr = out_text, err_text
            try:
                main()
            except SystemExit as exc:
                code = _exit_code(exc.code)
            else:
                raise AssertionError("dccd's main returned instead of exiting")
        finally:
            sys.argv, sys.stdin, sys.stdout, sys.stderr = saved_std
            signal.signal(signal.SIGTERM, saved_sigterm)
            for m, (_, name, _), value in zip(modules, _PER_PROCESS, saved_state, strict=True):
                setattr(m, name, value)
            logger.handlers[:], logger.level, logger.propagate = saved_log
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            for text in (out_text, err_text):
                text.flush()
                text.detach()
    return CliRun(code, _decoded(stdout, encoding), _decoded(stderr, encoding))


def _exit_code(code: object) -> int:
    """The process's exit status for ``sys.exit(code)``: None 0, an int itself, else 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _decoded(raw: io.BytesIO, encoding: str) -> str:
    """Bytes as ``subprocess.run(text=True)`` reads them: decoded, universal newlines."""
    return raw.getvalue().decode(encoding).replace("\r\n", "\n").replace("\r", "\n")


def run_cli_process(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
                    cwd: Path | None = None) -> CliRun:
    """Run the real `dccd` command line in a subprocess, as a user or cron would: for what
    only a process shows (see ``run_cli``)."""
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


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str,
              make: Callable[[Path], object]) -> Path:
    """A directory ``make(directory)`` fills, made once per test run and then only read.

    Under pytest-xdist every worker runs its own session and module fixtures; the run's
    workers share the parent of their temporary directories, so the first worker to need
    the directory makes it there under a file lock and the others wait for it and read it.
    Without workers it is simply a new temporary directory."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        directory = tmp_path_factory.mktemp(name)
        make(directory)
        return directory
    shared = tmp_path_factory.getbasetemp().parent
    directory, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)  # a worker that failed to make it
            directory.mkdir()
            make(directory)
            done.touch()
    return directory
