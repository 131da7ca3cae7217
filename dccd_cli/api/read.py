"""Reading a dataset back from Python: one series as an Arrow table, or the whole dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from dccd_cli.api._args import TimeArg, time_text
from dccd_cli.api.download import KINDS
from dccd_cli.api.paths import out_path
from dccd_cli.errors import OutputPathError, UsageError
from dccd_cli.exchange.markets import check_symbol, is_pattern
from dccd_cli.exchange.registry import get_adapter
from dccd_cli.storage import SeriesKey, read_series
from dccd_cli.timeutil import Span, now_ns, parse_time


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise UsageError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    return kind


def _root(out: str | os.PathLike[str] | None) -> Path:
    root = out_path(out, what="out").absolute()
    if not root.is_dir():
        raise OutputPathError(f"no dataset at {str(root)!r}: not a directory; pass the out of your downloads")
    return root


def read(
    out: str | os.PathLike[str] | None, kind: str, *, exchange: str, symbol: str,
    span: str | None = None, start: TimeArg | None = None, end: TimeArg | None = None,
) -> pa.Table:
    """One stored series as an Arrow table: exactly its stored rows with ``start <= ts <
    end`` (each bound optional: text as ``download()`` takes it, a datetime — naive is
    UTC — or a date), sorted by ``ts`` (trades in the exchange's execution order), with the
    schema of the data layout (no partition columns). ``out`` None is the default dataset
    directory. An exchange, kind, span or symbol that cannot name a series is a
    ``UsageError``; a series not stored (yet) is an empty table. The whole table is held
    in memory: for years of trades, filter ``dataset()`` instead.

    Convert as usual: ``read(...).to_pandas()``, ``polars.from_arrow(read(...))``.
    """
    key_kind = _kind(kind)
    name = get_adapter(exchange).name
    wanted = check_symbol(symbol)
    if is_pattern(wanted):
        raise UsageError(f"symbol {symbol!r} is a pattern; read() reads one series: name its unified "
                         "symbol, e.g. BTC-USDT")
    if key_kind == "ohlc" and span is None:
        raise UsageError("span is required for ohlc, e.g. span='1h'")
    if key_kind == "trades" and span is not None:
        raise UsageError(f"trades have no span; drop span={span!r}")
    code = Span.parse(span).code if span is not None else None
    now = now_ns()
    lo = None if start is None else parse_time(time_text(start, "start"), now=now, what="start", about="start")
    hi = None if end is None else parse_time(time_text(end, "end"), now=now, what="end", about="end")
    key = SeriesKey("ohlc" if key_kind == "ohlc" else "trades", name, wanted, code)
    return read_series(_root(out), key, lo, hi)


def dataset(out: str | os.PathLike[str] | None, kind: str) -> ds.Dataset:
    """Every stored series of ``kind`` (``"ohlc"`` or ``"trades"``) as a
    ``pyarrow.dataset.Dataset`` with Hive partitioning, as the README's reader examples
    read it: the partition columns ``exchange``, ``symbol`` (and ``span`` for ohlc) come
    with the rows, and the ledger and temporary files are skipped. Filter before reading::

        dataset(out, "ohlc").to_table(filter=(ds.field("span") == "1h"))
    """
    directory = _root(out) / _kind(kind)
    if not directory.is_dir():
        raise OutputPathError(f"no {kind} stored in {str(directory.parent)!r}: it has no {kind}/ directory")
    return ds.dataset(directory, format="parquet", partitioning="hive",
                      ignore_prefixes=["_", "."])
