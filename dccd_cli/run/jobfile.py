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

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from dccd_cli.errors import BadDateError, ConfigError, UsageError
from dccd_cli.exchange.adapter import Adapter
from dccd_cli.exchange.markets import check_symbol
from dccd_cli.exchange.registry import get_adapter
from dccd_cli.run.request import (
    check_base_url,
    check_dates,
    check_kind,
    check_output_dir,
    local_dir,
)
from dccd_cli.timeutil import MINUTE_NS, NS

JOB_KEYS: dict[str, str] = {
    "name": "a label for logs and the summary (text)",
    "exchange": "an exchange of `dccd exchanges` (text)",
    "symbols": 'unified symbols or patterns, e.g. ["BTC-USDT", "*-USDT"]',
    "ohlc": 'candle spans, e.g. ["1h", "1d"]',
    "trades": "true to fetch every trade",
    "start": 'a date (2024-01-01), a datetime, relative ("-90d", "-12h") or "origin"',
    "end": 'like start, or "now" (the default)',
    "out": "the dataset directory (relative to this file)",
    "overlap": "OHLC bars fetched again at the end of what is stored (an integer >= 0)",
    "trades_overlap": 'trades fetched again at the end of what is stored, e.g. "1m" or "0s"',
    "base_url": "the exchange's REST base URL, e.g. an emulator's http://127.0.0.1:8765/binance",
}
TOP_KEYS = ("defaults", "job")
DEFAULT_OVERLAP_BARS = 3
DEFAULT_TRADES_OVERLAP_NS = MINUTE_NS
_DURATION = re.compile(r"^([0-9]{1,6})([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class JobSpec:
    """One validated ``[[job]]``. ``lines`` maps each key (and "" for the header) to the
    line it was written on — the job's own or the ``[defaults]`` one it inherits."""

    index: int
    name: str
    exchange: str
    symbols: tuple[str, ...]
    spans: tuple[str, ...]
    trades: bool
    start: str
    end: str | None
    out: Path | None
    overlap: int
    trades_overlap_ns: int
    base_url: str | None
    source: Path
    lines: Mapping[str, int] = field(default_factory=dict)
    symbol_lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def kinds(self) -> list[tuple[str, str | None]]:
        """(kind, span) of every series kind the job asks for, OHLC spans first."""
        out: list[tuple[str, str | None]] = [("ohlc", s) for s in self.spans]
        return out + ([("trades", None)] if self.trades else [])

    def where(self, key: str = "", symbol: str | None = None) -> str:
        """``FILE:LINE`` of a key (or of one symbol) of this job, for messages."""
        line = self.symbol_lines.get(symbol, 0) if symbol is not None else 0
        return f"{self.source}:{line or self.lines.get(key) or self.lines.get('', 1)}"


@dataclass(frozen=True)
class SyncConfig:
    path: Path
    jobs: tuple[JobSpec, ...]


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


class _Problems:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort(key=lambda item: item[0])
            raise ConfigError("\n".join(f"{self.path}:{line}: {msg}" for line, msg in self.items))


def _suggest(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _as_date_text(value: Any) -> Any:
    """TOML dates and datetimes (``start = 2024-01-01``) as the text dccd parses."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def parse_duration(text: str) -> int:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"0s"`` -> ns; ValueError otherwise."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(text)
    return int(m.group(1)) * _UNIT_S[m.group(2)] * NS


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
    problems = _Problems(path)
    for key in doc:
        if key not in TOP_KEYS:
            problems.add(lines.top(key), f"unknown table or key {key!r}{_suggest(key, list(TOP_KEYS))}; allowed at "
                         "the top: [defaults] (keys for every job) and [[job]] tables")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.add(lines.key("", 0, "defaults"), "defaults must be a table: [defaults]")
        defaults = {}
    _check_keys(defaults, "defaults", 0, "[defaults]", lines, problems)
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
        job = _job(path, i, raw, defaults, lines, problems)
        if job is None:
            continue
        if job.name in names:
            problems.add(job.lines.get("name", job.lines[""]),
                         f"job name {job.name!r} is used twice (also line {names[job.name]}); names must differ")
        names[job.name] = job.lines.get("name", job.lines[""])
        jobs.append(job)
    problems.raise_if_any()
    return SyncConfig(path, tuple(jobs))


def _check_keys(table: dict[str, Any], name: str, index: int, shown: str, lines: _Lines,
                problems: _Problems) -> None:
    for key in table:
        if key not in JOB_KEYS:
            problems.add(lines.key(name, index, key),
                         f"unknown key {key!r} in {shown}{_suggest(key, list(JOB_KEYS))}; "
                         f"allowed: {', '.join(JOB_KEYS)}")


def _job(path: Path, i: int, raw: dict[str, Any], defaults: dict[str, Any], lines: _Lines,
         problems: _Problems) -> JobSpec | None:
    """One job with its defaults applied, or None after recording its problems."""
    shown = f"[[job]] #{i}" + (f" ({raw['name']!r})" if isinstance(raw.get("name"), str) else "")
    _check_keys(raw, "job", i, shown, lines, problems)
    before = len(problems.items)
    merged = {**{k: v for k, v in defaults.items() if k in JOB_KEYS}, **raw}

    def line(key: str) -> int:
        return lines.key("job", i, key) if key in raw else lines.key("defaults", 0, key)

    def value_line(key: str, value: str) -> int:
        return lines.value("job", i, key, value) if key in raw else lines.value("defaults", 0, key, value)

    def bad(key: str, message: str) -> None:
        said = message if message.startswith(key + " ") else f"{key}: {message}"
        problems.add(line(key), f"{shown}: {said}")

    def text(key: str, *, required: bool = False) -> str | None:
        value = _as_date_text(merged.get(key))
        if value is None:
            if required:
                problems.add(lines.header("job", i), f"{shown}: {key} is missing; {JOB_KEYS[key]}")
            return None
        if not isinstance(value, str) or not value.strip():
            bad(key, f"{value!r} is not a text; {JOB_KEYS[key]}")
            return None
        return value.strip()

    def strings(key: str) -> list[str]:
        value = merged.get(key)
        if value is None:
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            bad(key, f"{value!r} is not a list of texts; {JOB_KEYS[key]}")
            return []
        return [v.strip() for v in items]

    exchange = text("exchange", required=True)
    adapter_cls: type[Adapter] | None = None
    if exchange is not None:
        try:
            adapter_cls = get_adapter(exchange)
        except UsageError as exc:
            bad("exchange", str(exc))
    said = len(problems.items)
    symbols = strings("symbols")
    if "symbols" not in merged:
        problems.add(lines.header("job", i), f"{shown}: symbols is missing; {JOB_KEYS['symbols']}")
    elif not symbols and len(problems.items) == said:  # not when strings() named the mistake
        bad("symbols", f"name at least one; {JOB_KEYS['symbols']}")
    symbol_lines: dict[str, int] = {}
    checked: list[str] = []
    for sym in symbols:
        where = value_line("symbols", sym)
        try:
            unified = check_symbol(sym)  # unified, BASE/QUOTE, the exchange's own name, a pattern
        except UsageError as exc:
            problems.add(where, f"{shown}: symbols: {exc}")
            continue
        symbol_lines[unified] = where
        checked.append(unified)
    said = len(problems.items)
    spans = strings("ohlc")
    trades = merged.get("trades", False)
    if not isinstance(trades, bool):
        bad("trades", f"{trades!r} is not true or false")
        trades = False
    # One mistake, one line: a job whose ohlc or trades was just refused does not also
    # "ask for no data".
    if not spans and not trades and len(problems.items) == said:
        problems.add(lines.header("job", i), f"{shown}: asks for no data; give ohlc = [spans] and/or trades = true")
    if adapter_cls is not None:
        for span in spans:
            try:
                check_kind(adapter_cls, "ohlc", span)
            except UsageError as exc:
                problems.add(value_line("ohlc", span), f"{shown}: ohlc: {exc}")
        if trades:
            try:
                check_kind(adapter_cls, "trades", None)
            except UsageError as exc:
                bad("trades", str(exc))
    start = text("start", required=True)
    end = text("end")
    if start is not None:
        try:
            check_dates(start, end, names=("start", "end"))
        except BadDateError as exc:
            bad(exc.about or "start", str(exc))
    out_text = text("out")
    out: Path | None = None
    if out_text is not None:
        try:
            out = local_dir(out_text, what="out")
            out = out if out.is_absolute() else path.parent.absolute() / out
            out = check_output_dir(out)
        except UsageError as exc:
            bad("out", str(exc).replace("--out", "out"))
    overlap = merged.get("overlap", DEFAULT_OVERLAP_BARS)
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= 10_000:
        bad("overlap", f"{overlap!r} is not allowed; {JOB_KEYS['overlap']}, at most 10000")
        overlap = 0
    trades_overlap = merged.get("trades_overlap", "1m")
    trades_overlap_ns = DEFAULT_TRADES_OVERLAP_NS
    try:
        trades_overlap_ns = parse_duration(trades_overlap if isinstance(trades_overlap, str) else "")
    except ValueError:
        bad("trades_overlap", f"{trades_overlap!r} is not a duration; {JOB_KEYS['trades_overlap']}")
    base_url = text("base_url")
    if base_url is not None:
        try:
            base_url = check_base_url(base_url, what="base_url")
        except UsageError as exc:
            bad("base_url", str(exc))
    name = text("name") or f"{exchange or 'job'}#{i}"
    if len(problems.items) > before or exchange is None or start is None:
        return None
    keys = {k: line(k) for k in merged}
    keys[""] = lines.header("job", i)
    return JobSpec(
        index=i, name=name, exchange=exchange.lower(), symbols=tuple(checked), spans=tuple(spans),
        trades=trades, start=start, end=end, out=out, overlap=overlap,
        trades_overlap_ns=trades_overlap_ns, base_url=base_url,
        source=path, lines=keys, symbol_lines=symbol_lines,
    )
