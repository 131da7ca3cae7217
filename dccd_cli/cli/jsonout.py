"""``--json``: exactly one JSON object on stdout per run, whatever its exit code.

A pipeline that appends ``dccd ... --json >> runs.log`` must see the runs that went wrong
too — bad usage (2), a dataset locked by another sync (75), an interrupt (130, 143), an
exchange that could not be reached (1) — so every way a command ends prints one object with
at least ``command``, ``ok``, ``exit_code`` and ``error`` (null when all went well). The
renderers print the full summaries through ``print_json``; the command line prints a
``failure`` object for every run that ended before it had one to print.
"""

from __future__ import annotations

import sys
from typing import IO, Any

import orjson

_printed = False


def print_json(doc: Any, stdout: IO[str] | None = None) -> None:
    """Print one JSON document on a line of its own (and remember that it was)."""
    global _printed
    out = stdout or sys.stdout
    out.write(orjson.dumps(doc).decode() + "\n")
    out.flush()
    _printed = True


def printed() -> bool:
    """Whether this process printed its JSON object already."""
    return _printed


def failure(command: str | None, exit_code: int, error: str, **done: Any) -> dict[str, Any]:
    """The object of a run that ended without a summary: what it was, how it ended, and
    ``done``, what it did before (``series`` finished, ``out``; nothing for bad usage)."""
    return {"command": command, "ok": False, "exit_code": exit_code, "error": error, **done}
