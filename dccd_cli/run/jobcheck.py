"""The checks of a sync job, wherever the job comes from: a job file's ``[[job]]`` table
(``dccd_cli.run.jobfile``) or a Python object (``dccd_cli.sync(jobs=[...])``).

One job's keys are checked the same way for both: the exchange and the kinds and spans it
serves, the symbols' form, the dates, the output directory, the overlaps and the base URL.
Every problem is recorded at its line (``Problems``), so that all of them are named at once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

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
    source: Path | None  # the job file; None for a job given as a Python object
    lines: Mapping[str, int] = field(default_factory=dict)
    symbol_lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def kinds(self) -> list[tuple[str, str | None]]:
        """(kind, span) of every series kind the job asks for, OHLC spans first."""
        out: list[tuple[str, str | None]] = [("ohlc", s) for s in self.spans]
        return out + ([("trades", None)] if self.trades else [])

    @property
    def title(self) -> str:
        """The job as messages name it: ``[[job]] 'name'`` in a file, ``job 'name'`` otherwise."""
        return f"[[job]] {self.name!r}" if self.source is not None else f"job {self.name!r}"

    def where(self, key: str = "", symbol: str | None = None) -> str:
        """``FILE:LINE`` of a key (or of one symbol) of this job, for messages; for a job
        given as a Python object, its place in the list: ``jobs[0]``."""
        if self.source is None:
            return f"jobs[{self.index - 1}]"
        line = self.symbol_lines.get(symbol, 0) if symbol is not None else 0
        return f"{self.source}:{line or self.lines.get(key) or self.lines.get('', 1)}"


@dataclass(frozen=True)
class SyncConfig:
    """The validated jobs, and the file they come from (None: given as Python objects)."""

    path: Path | None
    jobs: tuple[JobSpec, ...]


class Lines(Protocol):
    """Where a job's tables, keys and values were written (a TOML file's lines), for
    messages; ``NO_LINES`` for jobs that come from no file."""

    def header(self, table: str, index: int) -> int: ...

    def key(self, table: str, index: int, key: str) -> int: ...

    def value(self, table: str, index: int, key: str, value: str) -> int: ...


class _NoLines:
    def header(self, table: str, index: int) -> int:
        return 0

    def key(self, table: str, index: int, key: str) -> int:
        return 0

    def value(self, table: str, index: int, key: str, value: str) -> int:
        return 0


NO_LINES: Lines = _NoLines()


class Problems:
    """Every problem found, each at its line; raised together as one ConfigError, each as
    ``FILE:LINE: ...`` (or as it is, for jobs that come from no file)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort(key=lambda item: item[0])
            raise ConfigError("\n".join(f"{self.path}:{line}: {msg}" if self.path is not None else msg
                                         for line, msg in self.items))


def suggest(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def as_date_text(value: Any) -> Any:
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


def check_keys(table: Mapping[str, Any], name: str, index: int, shown: str, lines: Lines,
               problems: Problems) -> None:
    for key in table:
        if key not in JOB_KEYS:
            problems.add(lines.key(name, index, key),
                         f"unknown key {key!r} in {shown}{suggest(key, list(JOB_KEYS))}; "
                         f"allowed: {', '.join(JOB_KEYS)}")


def check_job(path: Path | None, i: int, raw: Mapping[str, Any], defaults: Mapping[str, Any],
              lines: Lines, problems: Problems) -> JobSpec | None:
    """One job (the ``i``-th, from 1) with its defaults applied, or None after recording its
    problems. ``path`` is its file (a relative ``out`` is read against the file's directory),
    or None for a job given as a Python object (against the working directory)."""
    first = f"[[job]] #{i}" if path is not None else f"jobs[{i - 1}]"
    shown = first + (f" ({raw['name']!r})" if isinstance(raw.get("name"), str) else "")
    check_keys(raw, "job", i, shown, lines, problems)
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
        value = as_date_text(merged.get(key))
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
            base = path.parent if path is not None else Path.cwd()
            out = out if out.is_absolute() else base.absolute() / out
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


def config_from_jobs(jobs: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any] | None = None) -> SyncConfig:
    """Jobs given as Python objects (mappings with a job file's keys), validated by the
    checks of a job file's ``[[job]]`` tables: ``ConfigError`` naming every problem, each as
    ``jobs[0]: ...``. ``defaults`` plays the file's ``[defaults]``."""
    problems = Problems(None)
    given = dict(defaults or {})
    check_keys(given, "defaults", 0, "defaults", NO_LINES, problems)
    if isinstance(jobs, (str, bytes, Mapping)) or not isinstance(jobs, Sequence):
        raise ConfigError(f"jobs must be a list of jobs, not {type(jobs).__name__}")
    if not jobs:
        raise ConfigError("jobs is empty; a job needs exchange, symbols, ohlc and/or trades, and start")
    checked: list[JobSpec] = []
    names: dict[str, int] = {}
    for i, raw in enumerate(jobs, start=1):
        if not isinstance(raw, Mapping):
            problems.add(0, f"jobs[{i - 1}]: {type(raw).__name__} is not a job; give a mapping of job keys "
                            f"({', '.join(JOB_KEYS)}) or a dccd_cli.Job")
            continue
        spec = check_job(None, i, raw, given, NO_LINES, problems)
        if spec is None:
            continue
        if spec.name in names:
            problems.add(0, f"jobs[{i - 1}]: job name {spec.name!r} is used twice (also jobs[{names[spec.name]}]); "
                            "names must differ")
        names[spec.name] = i - 1
        checked.append(spec)
    problems.raise_if_any()
    return SyncConfig(None, tuple(checked))
