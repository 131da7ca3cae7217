"""The one error tree of dccd.

Every failure a user can see is one of these, and the exit code follows from the branch::

    DccdError                         (base; never raised itself)
    ├── UsageError                    exit 2: bad input, nothing fetched or written
    │   ├── UnknownExchangeError      exchange not in the registry
    │   ├── UnknownSymbolError        symbol not in the exchange's market list
    │   ├── UnsupportedSpanError      span the exchange does not offer
    │   ├── BadDateError              unparsable date / start after end
    │   ├── UnsupportedRangeError     range the exchange cannot serve over REST
    │   ├── OutputPathError           output directory not usable (or a URL)
    │   ├── BaseUrlError              --base-url not an http(s) URL, or not the exchange's API
    │   └── ConfigError               a `dccd sync` file that does not validate (file:line)
    ├── FetchError                    exit 1: the exchange or the network failed us
    │   ├── NetworkError              connect/read errors, timeouts (retried first)
    │   ├── ServerError               HTTP 5xx (retried first)
    │   ├── RateLimitedError          HTTP 429 or an exchange's own rate-limit reply
    │   ├── BannedError               HTTP 418 (IP ban): stops that exchange's work
    │   ├── ExchangeError             the exchange refused the request (4xx, error body)
    │   ├── ProtocolError             a response we cannot parse
    │   └── PartialDownloadError      a run stored what it could; ``failed`` names the rest
    │                                 (``RunResult.raise_for_failures()``)
    ├── StorageError                  exit 1: writing the dataset failed (disk full, ...)
    └── DatasetLockedError            exit 75: another dccd sync holds the dataset's lock

Library exceptions (httpx, OSError, orjson) are translated at one boundary each —
`dccd_cli.net.client` for the network, `dccd_cli.storage` for the disk — with ``raise ... from exc``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple


class DccdError(Exception):
    """Base of every dccd error. ``exit_code`` tells the CLI how to end."""

    exit_code = 1


class UsageError(DccdError):
    """Bad usage or input: the command did nothing."""

    exit_code = 2


class UnknownExchangeError(UsageError):
    pass


class UnknownSymbolError(UsageError):
    pass


class UnsupportedSpanError(UsageError):
    pass


class BadDateError(UsageError):
    """A date that does not parse, or a range with nothing in it. ``about`` names the date
    at fault ("start" or "end") when one is, so a sync file's error points at its line."""

    def __init__(self, message: str, *, about: str | None = None) -> None:
        super().__init__(message)
        self.about = about


class UnsupportedRangeError(UsageError):
    pass


class OutputPathError(UsageError):
    pass


class BaseUrlError(UsageError):
    """A base URL given by the user that is not an http(s) URL, or that answers 404 where
    the exchange's market list should be."""


class ConfigError(UsageError):
    """A sync file that does not validate. The message starts with ``FILE:LINE:``."""


class FetchError(DccdError):
    """A request failed. Carries what a person needs to see what went wrong where."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        exchange: str | None = None,
        url: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.exchange = exchange
        self.url = url
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.url:
            parts.append(self.url)
        return " — ".join(parts)


class NetworkError(FetchError):
    pass


class ServerError(FetchError):
    pass


class RateLimitedError(FetchError):
    pass


class BannedError(FetchError):
    """The exchange banned this IP (Binance HTTP 418). ``until`` is when it lifts."""

    @property
    def until(self) -> datetime | None:
        if self.retry_after is None:
            return None
        return datetime.fromtimestamp(self._raised_at + self.retry_after, tz=UTC)

    def __init__(self, message: str, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self._raised_at = datetime.now(tz=UTC).timestamp()


class ExchangeError(FetchError):
    pass


class ProtocolError(FetchError):
    pass


class FailedPiece(NamedTuple):
    """One piece a run could not fetch: the series' label (``binance BTC-USDT ohlc 1h``, or
    a sync job that could not be planned), the range as ISO 8601 UTC text (None for a
    series or job that failed whole) and why."""

    series: str
    start: str | None
    end: str | None
    error: str


class PartialDownloadError(FetchError):
    """A download or sync ended with data it could not fetch: what was fetched is stored,
    and the next run fetches the rest. Raised by ``raise_for_failures()`` of a result, never
    by the run itself. ``failed`` names every failed piece (``FailedPiece``: series, start,
    end, error). An orchestrator retries it like any FetchError: the retry fetches only what is missing."""

    def __init__(self, message: str, *, failed: tuple[FailedPiece, ...] = ()) -> None:
        super().__init__(message)
        self.failed = failed


class StorageError(DccdError):
    exit_code = 1


class DatasetLockedError(DccdError):
    """Another process holds the dataset's lock (``dccd sync --no-wait``, or the wait
    timed out). Nothing was fetched or written. 75 is sysexits' EX_TEMPFAIL: cron wrappers
    can tell "skipped, try later" from a failure."""

    exit_code = 75
