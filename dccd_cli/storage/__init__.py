"""Storage: the streaming, partitioned, atomic, deduplicated Parquet writer and the ledger.

::

    OUT/ohlc/exchange=binance/symbol=BTC-USDT/span=1h/2024-01.parquet     spans under a day: per UTC month
    OUT/ohlc/exchange=binance/symbol=BTC-USDT/span=1d/2024.parquet        a day and longer: per UTC year
    OUT/ohlc/exchange=binance/symbol=BTC-USDT/span=1h/_coverage.json      the coverage ledger
    OUT/trades/exchange=binance/symbol=BTC-USDT/2024-01-15.parquet        one file per UTC day

``SeriesWriter`` turns a paginator's pieces into files and ledger entries; ``Ledger``
answers what is already fetched (``missing``) for resume and incremental sync; the reader
helpers serve tests and ``dccd inventory``. Disk errors surface as ``StorageError``.
"""

from dccd_cli.storage.datafile import merge_rows
from dccd_cli.storage.intervals import FailedInterval, Interval
from dccd_cli.storage.layout import (
    LEDGER_NAME,
    Kind,
    Partition,
    SeriesKey,
    file_metadata,
    partition_for,
)
from dccd_cli.storage.ledger import Ledger
from dccd_cli.storage.reader import list_series, read_series, verify_series
from dccd_cli.storage.writer import SeriesWriter, WriteStats

__all__ = [
    "LEDGER_NAME",
    "FailedInterval",
    "Interval",
    "Kind",
    "Ledger",
    "Partition",
    "SeriesKey",
    "SeriesWriter",
    "WriteStats",
    "file_metadata",
    "list_series",
    "merge_rows",
    "partition_for",
    "read_series",
    "verify_series",
]
