"""dccd: bulk downloads of historical crypto market data into Hive-partitioned Parquet.

The public surface is re-exported here; the modules behind it are private.
"""

from dccd_cli._version import __version__
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.exchange.registry import adapters, get_adapter
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.net.ratelimit import TokenBucket
from dccd_cli.pieces import Chunk, FailedRange
from dccd_cli.run.download import run_download
from dccd_cli.run.jobfile import JobSpec, SyncConfig, load_config
from dccd_cli.run.request import DownloadRequest
from dccd_cli.run.results import RunResult, SeriesResult, SyncResult
from dccd_cli.run.sync import SyncOptions, run_sync
from dccd_cli.schema import OHLC_SCHEMA, TRADES_SCHEMA, ohlc_table, trades_table
from dccd_cli.sources.rest.ohlc import paginate_backward, paginate_forward, paginate_ohlc
from dccd_cli.sources.rest.trades import paginate_trades
from dccd_cli.storage import Ledger, SeriesKey, SeriesWriter, read_series
from dccd_cli.storage.inventory import Inventory, SeriesInventory, take_inventory
from dccd_cli.timeutil import Span

__all__ = [
    "AsyncHTTPClient", "DownloadRequest", "run_download", "paginate_backward", "paginate_forward",
    "paginate_ohlc", "paginate_trades", "TokenBucket", "adapters", "get_adapter", "RunResult",
    "SeriesResult", "Ledger", "SeriesKey", "SeriesWriter", "read_series",
    "SyncOptions", "run_sync", "SyncResult", "SyncConfig", "JobSpec", "load_config",
    "Inventory", "SeriesInventory", "take_inventory", "ConfigError", "DatasetLockedError",
    "OHLC_SCHEMA",
    "TRADES_SCHEMA",
    "Adapter",
    "BadDateError",
    "BannedError",
    "BaseUrlError",
    "Capability",
    "Chunk",
    "DccdError",
    "ExchangeError",
    "FailedRange",
    "FetchError",
    "Market",
    "NetworkError",
    "OutputPathError",
    "ProtocolError",
    "RateLimit",
    "RateLimitedError",
    "ServerError",
    "Span",
    "StorageError",
    "UnknownExchangeError",
    "UnknownSymbolError",
    "UnsupportedRangeError",
    "UnsupportedSpanError",
    "UsageError",
    "__version__",
    "ohlc_table",
    "trades_table",
]
