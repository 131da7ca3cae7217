"""`dccd --version` says which dccd a cron log or a bug report came from."""

from __future__ import annotations

from importlib.metadata import version

from dccd_testing import run_cli_process


def test_version_prints_the_installed_version_and_exits_0() -> None:
    r = run_cli_process("--version")
    assert r.code == 0, r.stderr
    assert r.stdout == f"dccd {version('dccd')}\n"
