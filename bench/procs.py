"""Processes of a benchmark: the emulator, and measured runs of dccd with their rusage."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def emulator(now: str, latency_ms: float, trades_scale: float = 1.0) -> Iterator[str]:
    """An emulator in its own process (its CPU is not charged to the client measured)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dccd_cli", "emulator", "--port", str(port), "--now", now,
         "--latency-ms", str(latency_ms), "--trades-scale", str(trades_scale)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/_emulator/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the emulator did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Measured:
    seconds: float
    cpu_s: float
    max_rss_mb: float
    code: int
    stdout: str


def _vm_hwm_kb(pid: int) -> int:
    """The process' own peak RSS (``VmHWM``), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(args: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run a command; wall time, its own CPU time (wait4) and peak RSS.

    Peak RSS is the child's ``VmHWM``, sampled while it runs: ``ru_maxrss`` of a child
    also counts the parent's pages it held between fork and exec, which made a 1 GB
    benchmark parent look like a 1 GB dccd.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    peak_kb = 0
    while reader.is_alive():
        peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
        reader.join(0.2)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(seconds, usage.ru_utime + usage.ru_stime, peak_kb / 1024, proc.returncode,
                    b"".join(chunks).decode())


def warm(base: str, path: str, params: dict[str, object]) -> None:
    """Ask the emulator once so its caches for a range are filled before timing starts."""
    httpx.get(f"{base}{path}", params=params, timeout=300)
