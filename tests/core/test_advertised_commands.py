"""What dccd tells users to run must exist: every `dccd COMMAND` named in an exchange's
notes, its refusals or the README is a command of the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dccd_cli.cli.app import app
from dccd_cli.exchange.registry import adapters

COMMAND = re.compile(r"`dccd ([a-z][a-z-]*)")
ROOT = Path(__file__).resolve().parents[2]


def _commands() -> set[str]:
    return {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}


def test_every_command_an_exchange_names_exists() -> None:
    texts = json.dumps([cls.describe() for cls in adapters().values()])
    texts += json.dumps([cls.unsupported for cls in adapters().values()])
    named = set(COMMAND.findall(texts))
    assert named <= _commands(), f"named but not a command: {sorted(named - _commands())}"


def test_every_command_the_readme_names_exists() -> None:
    named = set(COMMAND.findall((ROOT / "README.md").read_text()))
    assert named, "the README names commands"
    assert named <= _commands(), f"named but not a command: {sorted(named - _commands())}"
