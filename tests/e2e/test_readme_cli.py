"""The README's command-line examples run as written.

Every ``dccd ...`` line of the README's ``sh`` blocks is collected (continuation lines
joined, comments and ``$`` prompts dropped) and run by the real command line. The one
change: download, sync and market commands get ``--emulate`` (no test reaches an exchange)
and ``--out`` a temporary directory; the "Against the emulator" pair runs with a real
``dccd emulator`` process on a free port in place of 8765. A new example in the README is
picked up by the collection and must be placed in one of the sets below, so none goes
untried.
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from dccd_testing import run_cli

README = Path(__file__).resolve().parents[2] / "README.md"

# Run with --emulate (and --out TMP where they write) appended.
EMULATED = {"ohlc", "trades", "markets", "sync"}
# Of those, the ones that write a dataset (markets writes nothing: no --out).
WRITES = {"ohlc", "trades", "sync"}
# Run as they are.
PLAIN = {"exchanges", "--version"}
# A server that runs until stopped: started and stopped by test_the_emulator_example_serves.
SERVERS = {"emulator"}
# A whole day of trades: the slow suite runs it.
SLOW = {"dccd trades binance BTC-USDT --start 2024-01-01 --end 2024-01-02"}


def _examples() -> list[str]:
    lines: list[str] = []
    in_sh = False
    pending = ""
    for raw in README.read_text().splitlines():
        if raw.startswith("```"):
            in_sh = raw.strip() == "```sh"
            continue
        if not in_sh:
            continue
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        line = re.sub(r"^\$\s+", "", line)
        if line.startswith("dccd "):
            words = shlex.split(line, comments=True)
            lines.append(shlex.join(words))
    return lines


EXAMPLES = _examples()


def _command(example: str) -> str:
    return shlex.split(example)[1]


def test_the_readme_has_examples_and_each_is_placed() -> None:
    assert len(EXAMPLES) >= 10
    unplaced = [e for e in EXAMPLES if _command(e) not in EMULATED | PLAIN | SERVERS]
    assert not unplaced, f"README examples with no place in this test: {unplaced}"


def _downloads() -> list[object]:
    out = []
    for e in EXAMPLES:
        if _command(e) not in EMULATED | PLAIN or "--base-url" in e:
            continue  # --base-url lines belong to the emulator example
        marks = [pytest.mark.slow, pytest.mark.timeout(600)] if e in SLOW else []
        out.append(pytest.param(e, marks=marks, id=e[5:60]))
    return out


@pytest.mark.parametrize("example", _downloads())
def test_example_runs_as_written(example: str, tmp_path: Path) -> None:
    args = shlex.split(example)[1:]
    if args[0] in EMULATED:
        args += ["--emulate"]
    if args[0] in WRITES:
        args += ["--out", str(tmp_path / "data")]
    r = run_cli(*args, cwd=README.parent, timeout=300)
    assert r.code == 0, f"{example}\n{r.stderr}"
    if args[0] in {"ohlc", "trades"} and "--dry-run" not in args:
        assert list((tmp_path / "data" / args[0]).rglob("*.parquet")), r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_emulator_example_serves(tmp_path: Path) -> None:
    """``dccd emulator --port 8765 --now ... &`` then the ohlc against its base URL: 744 bars."""
    server_line = next(e for e in EXAMPLES if _command(e) == "emulator" and "--now" in e)
    client_line = next(e for e in EXAMPLES if "--base-url" in e)
    port = str(_free_port())
    # The trailing `&` is the shell's: the test runs the server in the background itself.
    server_args = [a.replace("8765", port) for a in shlex.split(server_line)[1:] if a != "&"]
    proc = subprocess.Popen([sys.executable, "-m", "dccd_cli", *server_args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "the emulator did not start listening"
                time.sleep(0.1)
        args = [a.replace("8765", port) for a in shlex.split(client_line)[1:]]
        r = run_cli(*args, cwd=tmp_path)
        assert r.code == 0, r.stderr
        bars = ds.dataset(tmp_path / "data" / "ohlc", partitioning="hive").count_rows()
        assert f"# {bars} bars" in README.read_text()
        assert bars == 744
    finally:
        proc.terminate()
        proc.wait(timeout=30)
