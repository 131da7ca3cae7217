"""``NO_COLOR`` (no-color.org) is honoured everywhere dccd draws on a terminal: the progress
bars, the summary, ``dccd exchanges``, ``dccd inventory`` and the help — on a real terminal
(a pseudo-terminal) and with colour forced (``FORCE_COLOR``) on a pipe. Bold and dim stay
(they are not colours); no colour escape does. Without ``NO_COLOR`` the same runs do colour
their progress, so the check sees colour where there is some."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from dccd_cli.emulator import EmulatorServer

SGR = re.compile(rb"\x1b\[([0-9;]*)m")
COLOUR_PARAMS = {*range(30, 50), *range(90, 98), *range(100, 108)}


def colours(output: bytes) -> set[bytes]:
    """The SGR escapes in ``output`` that set a colour (foreground or background)."""
    return {m.group(0) for m in SGR.finditer(output)
            if any(p.isdigit() and int(p) in COLOUR_PARAMS for p in m.group(1).split(b";"))}


def on_terminal(args: list[str], *, no_color: bool, cwd: Path) -> tuple[int, bytes]:
    """Run ``dccd ARGS`` with stdout and stderr on a pseudo-terminal, as in a shell."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "120", **({"NO_COLOR": "1"} if no_color else {})})
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dccd_cli", *args], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, env=env, cwd=cwd, close_fds=True)
    os.close(follower)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
    return proc.wait(timeout=60), out


def _download(emulator: EmulatorServer, out: Path) -> list[str]:
    return ["ohlc", "binance", "BTC-USDT", "ETH-USDT", "--span", "1m", "--start", "2024-01-01",
            "--end", "2024-01-15", "--base-url", emulator.venue_url("binance"), "--out", str(out)]


def test_progress_and_summary_have_no_colour_with_no_color(emulator: EmulatorServer, tmp_path: Path) -> None:
    code, coloured = on_terminal(_download(emulator, tmp_path / "a"), no_color=False, cwd=tmp_path)
    assert code == 0, coloured.decode(errors="replace")
    assert colours(coloured), "the progress bars colour a terminal when NO_COLOR is not set"
    code, plain = on_terminal(_download(emulator, tmp_path / "b"), no_color=True, cwd=tmp_path)
    assert code == 0, plain.decode(errors="replace")
    assert b"rows added" in plain  # the summary was drawn on the terminal
    assert colours(plain) == set(), colours(plain)


@pytest.mark.parametrize("args", [["exchanges"], ["inventory", "{out}"], ["--help"], ["ohlc", "--help"]])
def test_other_commands_have_no_colour_with_no_color(emulator: EmulatorServer, tmp_path: Path,
                                                      args: list[str]) -> None:
    out = tmp_path / "data"
    if "{out}" in args:
        code, _ = on_terminal(_download(emulator, out), no_color=True, cwd=tmp_path)
        assert code == 0
    code, plain = on_terminal([a.replace("{out}", str(out)) for a in args], no_color=True, cwd=tmp_path)
    assert code == 0, plain.decode(errors="replace")
    assert plain.strip(), "it printed something"
    assert colours(plain) == set(), colours(plain)


@pytest.mark.parametrize("args", [["exchanges"], ["--help"]])
def test_no_color_wins_over_forced_colour_on_a_pipe(args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}
    forced = subprocess.run([sys.executable, "-m", "dccd_cli", *args], capture_output=True, env=env,
                            cwd=tmp_path, timeout=60, check=True)
    assert b"\x1b[" in forced.stdout, "FORCE_COLOR makes it draw for a terminal on a pipe"
    plain = subprocess.run([sys.executable, "-m", "dccd_cli", *args], capture_output=True,
                           env={**env, "NO_COLOR": "1"}, cwd=tmp_path, timeout=60, check=True)
    assert colours(plain.stdout + plain.stderr) == set()
