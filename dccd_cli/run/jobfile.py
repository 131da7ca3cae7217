"""The ``dccd sync`` job file: TOML, validated in full before any request.

::

    [defaults]                      # optional; any job key, for every job
    out = "~/crypto-data"

    [[job]]
    name = "daily-candles"          # optional label for logs and the summary
    exchange = "binance"
    symbols = ["BTC-USDT", "*-USDC"]  # unified symbols, or fnmatch patterns on the market list
    ohlc = ["1h", "1d"]             # spans; and/or
    trades = true                   # every trade
    start = "-90d"                  # a date, a datetime, relative (-90d, -12h) or "origin"
    end = "now"                     # optional, exclusive; default now (the exchange's clock)
    overlap = 3                     # OHLC: newest stored bars fetched again (late corrections)
    trades_overlap = "1m"           # trades: the same, as a duration
    base_url = "http://127.0.0.1:8765/binance"   # optional: another endpoint (an emulator)

Every problem is reported as ``FILE:LINE: what is wrong; what is allowed`` and raises
``ConfigError`` (exit 2). ``tomllib`` keeps no line numbers, so ``_Lines`` finds the line of
a table, a key or a value by scanning the raw text: exact for keys on their own line and
values written on the key's line or in its multi-line array, which is what people write.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from dccd_cli.errors import ConfigError
from dccd_cli.run.jobcheck import (
    DEFAULT_OVERLAP_BARS,
    DEFAULT_TRADES_OVERLAP_NS,
    JOB_KEYS,
    TOP_KEYS,
    JobSpec,
    Problems,
    SyncConfig,
    check_job,
    check_keys,
    config_from_jobs,
    parse_duration,
    suggest,
)

__all__ = ["DEFAULT_OVERLAP_BARS", "DEFAULT_TRADES_OVERLAP_NS", "JOB_KEYS", "JobSpec", "SyncConfig",
           "config_from_jobs", "load_config", "parse_duration"]


class _Lines:
    """Where tables, keys and values are in the raw text of a TOML file."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"""^\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*(\.\s*[^=]+?)?=""")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.tables: dict[tuple[str, int], int] = {}  # (table, index) -> header line
        self.keys: dict[tuple[str, int, str], tuple[int, int]] = {}  # -> (line, last line)
        table, index, counts = "", 0, {"job": 0}
        in_string: str | None = None
        last: tuple[str, int, str] | None = None
        for no, raw in enumerate(self.lines, start=1):
            if in_string is not None:  # inside a multi-line string: nothing is a key
                if raw.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = self._HEADER.match(raw)
            key = self._KEY.match(raw)
            if header:
                table = header.group(2).strip().strip("\"'")
                index = counts[table] = counts.get(table, 0) + 1
                self.tables[(table, index if header.group(1) == "[[" else 0)] = no
                last = None
                if header.group(1) == "[":
                    index = 0
            elif key:
                last = (table, index, key.group(1).strip("\"'"))
                self.keys[last] = (no, no)
            elif last is not None and raw.strip():
                self.keys[last] = (self.keys[last][0], no)  # a value going on (an array)
            for quote in ('"""', "'''"):
                if raw.count(quote) % 2 == 1:
                    in_string = quote

    def top(self, name: str) -> int:
        """The line of a top-level key or table ``name`` (the first, if repeated)."""
        if ("", 0, name) in self.keys:
            return self.keys[("", 0, name)][0]
        found = [no for (table, _), no in self.tables.items() if table == name]
        return min(found) if found else 1

    def header(self, table: str, index: int) -> int:
        return self.tables.get((table, index), 1)

    def key(self, table: str, index: int, key: str) -> int:
        found = self.keys.get((table, index, key))
        return found[0] if found else self.header(table, index)

    def value(self, table: str, index: int, key: str, value: str) -> int:
        """The line of a string value of a key (an array element on its own line)."""
        found = self.keys.get((table, index, key))
        if not found:
            return self.header(table, index)
        first, last = found
        for no in range(first, last + 1):
            text = self.lines[no - 1]
            if f'"{value}"' in text or f"'{value}'" in text:
                return no
        return first


def load_config(path: Path) -> SyncConfig:
    """Read and validate a sync file; ``ConfigError`` naming every problem otherwise.

    Needs no network: exchanges, kinds and spans are checked against the adapters'
    declared capabilities. Symbols are checked for form here, and against the exchange's
    market list when the sync plans (still before any data request).
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such sync file; pass one (examples in configs/ of the dccd repository)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = m.group(1) if m else str(max(1, len(text.splitlines())))  # "at end of document"
        raise ConfigError(f"{path}:{line}: not valid TOML: {str(exc).split(' (at line')[0]}") from exc
    lines = _Lines(text)
    problems = Problems(path)
    for key in doc:
        if key not in TOP_KEYS:
            problems.add(lines.top(key), f"unknown table or key {key!r}{suggest(key, list(TOP_KEYS))}; allowed at "
                         "the top: [defaults] (keys for every job) and [[job]] tables")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.add(lines.key("", 0, "defaults"), "defaults must be a table: [defaults]")
        defaults = {}
    check_keys(defaults, "defaults", 0, "[defaults]", lines, problems)
    jobs_raw = doc.get("job", [])
    if not isinstance(jobs_raw, list) or not all(isinstance(j, dict) for j in jobs_raw):
        problems.add(lines.key("", 0, "job"), "job must be an array of tables: write each as [[job]]")
        jobs_raw = []
    if not jobs_raw and "job" not in doc and not problems.items:
        problems.add(1, "no [[job]] table; a job needs exchange, symbols, ohlc and/or trades, "
                        "and start (see the examples in configs/)")
    jobs: list[JobSpec] = []
    names: dict[str, int] = {}
    for i, raw in enumerate(jobs_raw, start=1):
        job = check_job(path, i, raw, defaults, lines, problems)
        if job is None:
            continue
        if job.name in names:
            problems.add(job.lines.get("name", job.lines[""]),
                         f"job name {job.name!r} is used twice (also line {names[job.name]}); names must differ")
        names[job.name] = job.lines.get("name", job.lines[""])
        jobs.append(job)
    problems.raise_if_any()
    return SyncConfig(path, tuple(jobs))
