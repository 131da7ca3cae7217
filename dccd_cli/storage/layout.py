"""Where a series lives on disk: validated Hive directory names and time partitions.

::

    OUT/ohlc/exchange=binance/symbol=BTC-USDT/span=1h/2024-01.parquet     spans under a day: a file per UTC month
    OUT/ohlc/exchange=binance/symbol=BTC-USDT/span=1d/2024.parquet        a day and longer: a file per UTC year
    OUT/ohlc/exchange=binance/symbol=BTC-USDT/span=1mo/2024.parquet       months: span value "1mo", not "1M"
    OUT/trades/exchange=binance/symbol=BTC-USDT/2024-01-15.parquet        one file per UTC day

A series' key keeps the span as users write it (``1M``, also in the files' ``dccd.span``
metadata and the ledger); only the directory value of a month span differs: ``1M`` and
``1m`` differ by case alone, and on a case-insensitive filesystem (macOS' APFS, Windows'
NTFS) ``span=1M`` and ``span=1m`` would be one directory holding two series' files. Months
are written ``Nmo``, as Polars writes a month. Datasets of older dccd versions (monthly
files of day+ spans, ``span=1M``) are read as they are and brought to this layout by
``storage.upgrade`` before a series is next written.

Every directory component is validated against a strict pattern before any path is built,
so a symbol such as ``../../etc`` can never steer a write outside the dataset.
Names that dccd keeps beside the data start with ``_`` or ``.``, which pyarrow, DuckDB
and Polars skip when they discover a dataset.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pyarrow as pa

from dccd_cli.errors import OutputPathError
from dccd_cli.schema import OHLC_SCHEMA, TRADES_SCHEMA
from dccd_cli.timeutil import DAY_NS, datetime_to_ns, ns_to_datetime

Kind = Literal["ohlc", "trades"]
KINDS: tuple[Kind, ...] = ("ohlc", "trades")

_EXCHANGE_RE = re.compile(r"[a-z0-9_]+")
_SYMBOL_RE = re.compile(r"[A-Z0-9]{1,20}-[A-Z0-9]{1,20}")
_SPAN_RE = re.compile(r"[1-9][0-9]{0,3}[smhdwM]")
# A span's directory value: the span, except months: "1M" -> "1mo" (see the docstring).
_MONTH_DIR_RE = re.compile(r"([1-9][0-9]{0,3})mo")
# Spans of a day and longer: one file per UTC year (a month of 1d bars is ~30 rows).
_YEARLY_UNITS = frozenset("dwM")

LEDGER_NAME = "_coverage.json"
LOCK_NAME = "_dccd.lock"
TEMP_PREFIX = ".dccd-"
TEMP_SUFFIX = ".tmp"
PARQUET_SUFFIX = ".parquet"

_YEAR_FILE_RE = re.compile(r"([0-9]{4})\.parquet")
_MONTH_FILE_RE = re.compile(r"([0-9]{4})-([0-9]{2})\.parquet")
_DAY_FILE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\.parquet")


@dataclass(frozen=True, order=True)
class SeriesKey:
    """One stored series: a data kind on one exchange for one unified symbol (and span).

    Construction validates every component (``OutputPathError`` otherwise), so a
    ``SeriesKey`` in hand always maps to a directory inside the dataset.
    """

    kind: Kind
    exchange: str
    symbol: str
    span: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OutputPathError(f"data kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not isinstance(self.exchange, str) or not _EXCHANGE_RE.fullmatch(self.exchange):
            raise OutputPathError(
                f"exchange name {self.exchange!r} cannot be stored: "
                "use lower-case letters, digits and _ only"
            )
        if not isinstance(self.symbol, str) or not _SYMBOL_RE.fullmatch(self.symbol):
            raise OutputPathError(
                f"symbol {self.symbol!r} cannot be stored: a unified symbol is BASE-QUOTE in "
                "upper-case letters and digits, e.g. BTC-USDT"
            )
        if self.kind == "ohlc":
            if not isinstance(self.span, str) or not _SPAN_RE.fullmatch(self.span):
                raise OutputPathError(
                    f"span {self.span!r} cannot be stored: write a count and a unit "
                    "(s, m, h, d, w or M), e.g. 1m, 4h, 1d, 1M"
                )
        elif self.span is not None:
            raise OutputPathError("a trades series has no span")

    def dir(self, root: Path) -> Path:
        """The series' directory under the dataset root ``root`` (not created here)."""
        path = Path(root) / self.kind / f"exchange={self.exchange}" / f"symbol={self.symbol}"
        if self.span is not None:
            path = path / f"span={span_dir_value(self.span)}"
        return path

    @property
    def yearly(self) -> bool:
        """Whether this series is stored a file per UTC year (spans of a day and longer)."""
        return self.span is not None and self.span[-1] in _YEARLY_UNITS

    @property
    def schema(self) -> pa.Schema:
        """The column schema of this series' files (without file metadata)."""
        return OHLC_SCHEMA if self.kind == "ohlc" else TRADES_SCHEMA

    @property
    def key_column(self) -> str:
        """The column rows are unique on: bars on their open time, trades on their id."""
        return "ts" if self.kind == "ohlc" else "id"

    @property
    def sort_columns(self) -> tuple[str, ...]:
        """The columns rows are ordered by: ts, and for trades the id within a ts (as a
        number where ids are integers, else the exchange's order: dccd_cli.tradeorder)."""
        return ("ts",) if self.kind == "ohlc" else ("ts", "id")

    def __str__(self) -> str:
        tail = f" {self.span}" if self.span else ""
        return f"{self.kind} {self.exchange} {self.symbol}{tail}"


def span_dir_value(span: str) -> str:
    """The Hive value of a span's directory: the span itself, months ``NM`` as ``Nmo``."""
    return span[:-1] + "mo" if span.endswith("M") else span


def span_from_dir_value(value: str) -> str:
    """The span of a directory value: ``1mo`` -> ``1M``; others (``1h``, and an older
    dccd's ``1M``) as they are."""
    m = _MONTH_DIR_RE.fullmatch(value)
    return f"{m[1]}M" if m else value


def file_metadata(key: SeriesKey, *, native_symbol: str, version: str) -> Mapping[str, str]:
    """The key-value metadata written into every Parquet file of ``key``."""
    meta = {
        "dccd.exchange": key.exchange,
        "dccd.symbol": key.symbol,
        "dccd.native_symbol": native_symbol,
        "dccd.kind": key.kind,
        "dccd.version": version,
    }
    if key.span is not None:
        meta["dccd.span"] = key.span
    return meta


@dataclass(frozen=True, order=True)
class Partition:
    """One file's time range ``[start_ns, end_ns)`` and its file name."""

    start_ns: int
    end_ns: int
    name: str

    def contains(self, ts_ns: int) -> bool:
        return self.start_ns <= ts_ns < self.end_ns


def _month_start(year: int, month: int) -> int:
    return datetime_to_ns(datetime(year, month, 1, tzinfo=UTC))


def _month(year: int, month: int) -> Partition:
    nxt_y, nxt_m = (year + 1, 1) if month == 12 else (year, month + 1)
    return Partition(
        _month_start(year, month), _month_start(nxt_y, nxt_m), f"{year:04d}-{month:02d}.parquet"
    )


def _year(year: int) -> Partition:
    return Partition(_month_start(year, 1), _month_start(year + 1, 1), f"{year:04d}.parquet")


def _day(day_index: int) -> Partition:
    start = day_index * DAY_NS
    return Partition(start, start + DAY_NS, ns_to_datetime(start).strftime("%Y-%m-%d") + ".parquet")


def partition_for(key: SeriesKey, ts_ns: int) -> Partition:
    """The partition (file) of ``key`` that holds a row with time ``ts_ns``: its UTC day
    (trades), year (spans of a day and longer) or month (shorter spans)."""
    if key.kind == "trades":
        return _day(ts_ns // DAY_NS)
    dt = ns_to_datetime(ts_ns)
    return _year(dt.year) if key.yearly else _month(dt.year, dt.month)


def is_current_name(key: SeriesKey, part: Partition) -> bool:
    """Whether a file of ``part`` is named as this dccd names ``key``'s files (a month file
    of a day+ span was written by an older version)."""
    return part == partition_for(key, part.start_ns)


def partition_from_name(kind: Kind, name: str) -> Partition | None:
    """The partition a data file name stands for, or None if it is not one of ours.

    OHLC names are months and years alike: an older dccd wrote monthly files for every
    span, and they are read until they are folded into yearly ones.
    """
    if kind == "trades":
        m = _DAY_FILE_RE.fullmatch(name)
        if not m:
            return None
        try:
            start = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
        except ValueError:
            return None
        return _day(datetime_to_ns(start) // DAY_NS)
    y = _YEAR_FILE_RE.fullmatch(name)
    if y:
        return _year(int(y[1])) if int(y[1]) >= 1 else None
    m = _MONTH_FILE_RE.fullmatch(name)
    if not m or not 1 <= int(m[2]) <= 12 or int(m[1]) < 1:
        return None
    return _month(int(m[1]), int(m[2]))


def partition_files(kind: Kind, directory: Path) -> list[tuple[Partition, Path]]:
    """The data files in a series directory with their partitions, in time order.

    Hidden and ``_`` files (ledger, lock, temporaries) and foreign names are left out.
    """
    found: list[tuple[Partition, Path]] = []
    try:
        names = [entry.name for entry in _scandir(directory) if entry.is_file()]
    except FileNotFoundError:
        return []
    for name in names:
        part = partition_from_name(kind, name)
        if part is not None:
            found.append((part, directory / name))
    found.sort()
    return found


def is_temp_name(name: str) -> bool:
    """True for the temporary files dccd's atomic writes leave behind when killed."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def parse_series_dir(root: Path, directory: Path) -> SeriesKey | None:
    """The key of a series directory under ``root``, or None if it is not a valid one."""
    try:
        parts = Path(directory).relative_to(root).parts
    except ValueError:
        return None
    try:
        if len(parts) == 4 and parts[0] == "ohlc":
            ex, sym, span = (
                _hive_value(p, f) for p, f in zip(parts[1:], ("exchange", "symbol", "span"))
            )
            return SeriesKey("ohlc", ex, sym, span_from_dir_value(span))
        if len(parts) == 3 and parts[0] == "trades":
            ex, sym = (_hive_value(p, f) for p, f in zip(parts[1:], ("exchange", "symbol")))
            return SeriesKey("trades", ex, sym)
    except (OutputPathError, ValueError):
        return None
    return None


def _hive_value(component: str, field: str) -> str:
    prefix = field + "="
    if not component.startswith(prefix):
        raise ValueError(component)
    return component[len(prefix) :]


def _scandir(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as it:
        return list(it)
