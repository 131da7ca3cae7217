"""dccd: bulk downloads of historical crypto market data into Hive-partitioned Parquet.

The public surface is re-exported here; the modules behind it are private.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dccd")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from .capability import Adapter, Capability, Market, RateLimit  # noqa: E402
from .chunk import Chunk, FailedRange  # noqa: E402
from .errors import (  # noqa: E402
    BadDateError,
    BannedError,
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
from .schema import OHLC_SCHEMA, TRADES_SCHEMA, ohlc_table, trades_table  # noqa: E402
from .timeutil import Span  # noqa: E402

__all__ = [
    "__version__", "Adapter", "Capability", "Market", "RateLimit", "Chunk", "FailedRange",
    "BadDateError", "BannedError", "DccdError", "ExchangeError", "FetchError", "NetworkError",
    "OutputPathError", "ProtocolError", "RateLimitedError", "ServerError", "StorageError",
    "UnknownExchangeError", "UnknownSymbolError", "UnsupportedRangeError", "UnsupportedSpanError",
    "UsageError", "OHLC_SCHEMA", "TRADES_SCHEMA", "ohlc_table", "trades_table", "Span",
]
