"""dccd: bulk downloads of historical crypto market data into Hive-partitioned Parquet.

The public API, for notebooks and orchestrators (the ``dccd`` command is a thin layer over
it)::

    import dccd_cli as dccd
    result = dccd.download("binance", "BTC-USDT", span="1h", start="2024-01-01", end="2024-02-01")
    result.raise_for_failures()
    table = dccd.read(None, "ohlc", exchange="binance", symbol="BTC-USDT", span="1h")

Every name is imported on first use (PEP 562), so ``import dccd_cli`` stays cheap; the
modules behind them are private. Errors: retry a ``FetchError`` (``PartialDownloadError``
included), fix the call on a ``UsageError``, reschedule on a ``DatasetLockedError``.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:  # what type checkers and IDEs see; at run time each comes lazily
    from dccd_cli._version import __version__
    from dccd_cli.api.download import download, download_async
    from dccd_cli.api.info import (
        ExchangeInfo,
        KindInfo,
        exchanges,
        inventory,
        markets,
        markets_async,
    )
    from dccd_cli.api.paths import default_out
    from dccd_cli.api.read import dataset, read
    from dccd_cli.api.sync import Job, sync, sync_async
    from dccd_cli.errors import (
        BadDateError,
        BannedError,
        BaseUrlError,
        ConfigError,
        DatasetLockedError,
        DccdError,
        ExchangeError,
        FailedPiece,
        FetchError,
        NetworkError,
        OutputPathError,
        PartialDownloadError,
        ProtocolError,
        RateLimitedError,
        ServerError,
        StorageError,
        UnknownExchangeError,
        UnknownSymbolError,
        UnsupportedRangeError,
        UnsupportedSpanError,
        UsageError,
    )
    from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
    from dccd_cli.run.download import ProgressSink
    from dccd_cli.run.results import (
        Estimate,
        FailedSpan,
        Gap,
        JobFailure,
        MarketsResult,
        RunResult,
        SeriesResult,
        SyncResult,
    )
    from dccd_cli.schema import OHLC_SCHEMA, TRADES_SCHEMA
    from dccd_cli.storage.inventory import Inventory, SeriesInventory, Stretch

_WHERE = {
    # the API
    "ExchangeInfo": "dccd_cli.api.info",
    "Job": "dccd_cli.api.sync",
    "KindInfo": "dccd_cli.api.info",
    "dataset": "dccd_cli.api.read",
    "default_out": "dccd_cli.api.paths",
    "download": "dccd_cli.api.download",
    "download_async": "dccd_cli.api.download",
    "exchanges": "dccd_cli.api.info",
    "inventory": "dccd_cli.api.info",
    "markets": "dccd_cli.api.info",
    "markets_async": "dccd_cli.api.info",
    "read": "dccd_cli.api.read",
    "sync": "dccd_cli.api.sync",
    "sync_async": "dccd_cli.api.sync",
    # what it returns, and what it takes
    "Estimate": "dccd_cli.run.results",
    "FailedSpan": "dccd_cli.run.results",
    "Gap": "dccd_cli.run.results",
    "Inventory": "dccd_cli.storage.inventory",
    "JobFailure": "dccd_cli.run.results",
    "MarketsResult": "dccd_cli.run.results",
    "ProgressSink": "dccd_cli.run.download",
    "RunResult": "dccd_cli.run.results",
    "SeriesInventory": "dccd_cli.storage.inventory",
    "SeriesResult": "dccd_cli.run.results",
    "Stretch": "dccd_cli.storage.inventory",
    "SyncResult": "dccd_cli.run.results",
    # the data contract
    "OHLC_SCHEMA": "dccd_cli.schema",
    "TRADES_SCHEMA": "dccd_cli.schema",
    # for adapter authors (entry point group ``dccd.adapters``)
    "Adapter": "dccd_cli.exchange.adapter",
    "Capability": "dccd_cli.exchange.adapter",
    "Market": "dccd_cli.exchange.adapter",
    "RateLimit": "dccd_cli.exchange.adapter",
    # the error tree (dccd_cli.errors)
    **{name: "dccd_cli.errors" for name in (
        "BadDateError", "BannedError", "BaseUrlError", "ConfigError", "DatasetLockedError",
        "DccdError", "ExchangeError", "FailedPiece", "FetchError", "NetworkError", "OutputPathError",
        "PartialDownloadError", "ProtocolError", "RateLimitedError", "ServerError",
        "StorageError", "UnknownExchangeError", "UnknownSymbolError", "UnsupportedRangeError",
        "UnsupportedSpanError", "UsageError")},
    "__version__": "dccd_cli._version",
}

__all__ = [
    "Adapter",
    "BadDateError",
    "BannedError",
    "BaseUrlError",
    "Capability",
    "ConfigError",
    "DatasetLockedError",
    "DccdError",
    "Estimate",
    "ExchangeError",
    "ExchangeInfo",
    "FailedPiece",
    "FailedSpan",
    "FetchError",
    "Gap",
    "Inventory",
    "Job",
    "JobFailure",
    "KindInfo",
    "Market",
    "MarketsResult",
    "NetworkError",
    "OHLC_SCHEMA",
    "OutputPathError",
    "PartialDownloadError",
    "ProgressSink",
    "ProtocolError",
    "RateLimit",
    "RateLimitedError",
    "RunResult",
    "SeriesInventory",
    "SeriesResult",
    "ServerError",
    "StorageError",
    "Stretch",
    "SyncResult",
    "TRADES_SCHEMA",
    "UnknownExchangeError",
    "UnknownSymbolError",
    "UnsupportedRangeError",
    "UnsupportedSpanError",
    "UsageError",
    "__version__",
    "dataset",
    "default_out",
    "download",
    "download_async",
    "exchanges",
    "inventory",
    "markets",
    "markets_async",
    "read",
    "sync",
    "sync_async",
]


def __getattr__(name: str) -> object:
    """Import a public name on first use, and keep it (PEP 562)."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'dccd_cli' has no attribute {name!r}")
    value = getattr(_importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
