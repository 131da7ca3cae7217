"""dccd: bulk downloads of historical crypto market data into Hive-partitioned Parquet.

The public surface is re-exported here; the modules behind it are private.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dccd")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from .capability import Adapter, Capability, Market, RateLimit
from .chunk import Chunk, FailedRange
from .errors import (
    BadDateError,
    BannedError,
    BaseUrlError,
    ConfigError,
    DatasetLockedError,
    DccdError,
    ExchangeError,
    FetchError,
    NetworkError,
    OutputPathError,
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
from .http import AsyncHTTPClient
from .inventory import Inventory, SeriesInventory, take_inventory
from .job import run_download
from .paginate import paginate_backward, paginate_forward, paginate_ohlc
from .ratelimit import TokenBucket
from .registry import adapters, get_adapter
from .request import DownloadRequest
from .results import RunResult, SeriesResult, SyncResult
from .schema import OHLC_SCHEMA, TRADES_SCHEMA, ohlc_table, trades_table
from .storage import Ledger, SeriesKey, SeriesWriter, read_series
from .sync import SyncOptions, run_sync
from .syncconfig import JobSpec, SyncConfig, load_config
from .timeutil import Span
from .tradepages import paginate_trades

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
