"""Shell completion (typer's): ``dccd --show-completion SHELL`` prints a script for the
shell that asks ``dccd`` back (``_DCCD_COMPLETE``), and that asking completes dccd's own
commands and options."""

from __future__ import annotations

import os
import subprocess
import sys

COMMANDS = ["ohlc", "trades", "sync", "inventory", "markets", "exchanges", "emulator"]


def _dccd(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dccd_cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60, stdin=subprocess.DEVNULL)


def test_show_completion_prints_a_script_for_dccd() -> None:
    run = _dccd("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert run.returncode == 0, run.stderr
    assert "_DCCD_COMPLETE=complete_bash" in run.stdout
    assert "complete -o default -F _dccd_completion dccd" in run.stdout


def test_completion_names_every_command() -> None:
    run = _dccd(COMP_WORDS="dccd ", COMP_CWORD="1", _DCCD_COMPLETE="complete_bash")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == COMMANDS


def test_completion_completes_a_prefix_and_options() -> None:
    assert _dccd(COMP_WORDS="dccd tr", COMP_CWORD="1", _DCCD_COMPLETE="complete_bash").stdout.split() == ["trades"]
    options = _dccd(COMP_WORDS="dccd ohlc --sp", COMP_CWORD="2", _DCCD_COMPLETE="complete_bash").stdout.split()
    assert options == ["--span"]


def test_help_offers_install_completion() -> None:
    run = _dccd("--help", NO_COLOR="1", COLUMNS="120")
    assert "--install-completion" in run.stdout and "--show-completion" in run.stdout
