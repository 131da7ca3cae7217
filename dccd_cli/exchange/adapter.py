"""What an exchange adapter is: capabilities declared as data, plus a few page fetchers.

The core checks a request against these declarations before any network I/O, so that what
an exchange cannot serve is refused with a clear message instead of silently truncated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa

from dccd_cli.errors import DccdError, UnsupportedRangeError
from dccd_cli.exchange.replies import Envelope, ErrorTable
from dccd_cli.net.ratelimit import RateLimit
from dccd_cli.timeutil import DAY_NS, HOUR_NS, NS, Span

if TYPE_CHECKING:
    from dccd_cli.exchange.listing import MarketFields
    from dccd_cli.net.client import AsyncHTTPClient

__all__ = ["Adapter", "Capability", "Market", "RateLimit"]

PageDirection = Literal["forward", "backward"]
History = Literal["full", "recent"]


@dataclass(frozen=True)
class Capability:
    """What an exchange serves for one data kind over REST."""

    kind: Literal["ohlc", "trades"]
    max_per_request: int
    page_direction: PageDirection
    weight: int = 1
    # Unified span code -> the exchange's own code (OHLC only), e.g. {"1h": "1h"} or {"1h": "60"}.
    spans: Mapping[str, str] = field(default_factory=dict)
    history: History = "full"
    # Recent-only history, as what a user gets: the last ``recent_bars`` finished bars
    # (OHLC), or the ``recent_ns`` before the exchange's now. The adapter derives them from
    # the exchange's own figure, less any slack it keeps, and says how. This is the one
    # declaration of the limit: the README's table, ``dccd exchanges`` and the errors and
    # notes of a run all come from it (``history_text``, ``earliest_ns``).
    recent_ns: int | None = None
    recent_bars: int | None = None
    # How many requests of this kind may be in flight at once for one series.
    concurrency: int = 8
    # A sentence for users: what the exchange offers instead when it cannot serve history.
    note: str = ""
    # Trades only: ids are consecutive integers and the trades cursor is the id to continue
    # from (Binance aggTrades ``fromId``), so a missing stretch can be seen and fetched by id.
    dense_ids: bool = False

    def earliest_ns(self, span: Span | None, now: int) -> int | None:
        """The first instant this kind can be fetched from when the exchange's clock reads
        ``now``; None for full history. A time limit is rounded up to a whole second."""
        if self.history == "full":
            return None
        if self.recent_bars is not None and span is not None:
            return span.add(span.floor(now), -self.recent_bars)
        if self.recent_ns is not None:
            return -(-(now - self.recent_ns) // NS) * NS
        return None

    @property
    def history_text(self) -> str:
        """How much history the exchange serves over REST: ``full``, ``the last 718 finished
        bars``, ``the last 23 hours``, ``the last 89 days``."""
        if self.history == "full":
            return "full"
        if self.recent_bars is not None:
            return f"the last {self.recent_bars} finished bars"
        if self.recent_ns is not None:
            if self.recent_ns % DAY_NS == 0:
                return f"the last {self.recent_ns // DAY_NS} days"
            return f"the last {self.recent_ns / HOUR_NS:g} hours"
        return "recent only"


@dataclass(frozen=True)
class Market:
    """One tradable pair: the unified symbol (``BTC-USDT``) and the exchange's own id."""

    symbol: str
    native: str
    base: str
    quote: str
    # First data the exchange has for this market (ns), when the exchange tells.
    listed_ns: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Adapter:
    """Base of every exchange adapter.

    Subclasses set the class attributes and implement the fetchers. An instance is bound to
    one ``AsyncHTTPClient`` (which knows the base URL, the retries and the rate limit).
    Fetchers return pages in the schemas of ``dccd_cli.schema`` sorted oldest first; they
    may return rows outside the asked range (the core filters), but never skip rows inside.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    default_base_url: ClassVar[str]
    rate_limit: ClassVar[RateLimit]
    ohlc: ClassVar[Capability | None] = None
    trades: ClassVar[Capability | None] = None
    # For a kind the exchange does not serve over REST: what it offers instead (shown to users).
    unsupported: ClassVar[Mapping[str, str]] = {}
    # How the exchange's error replies read and what they are (``check``).
    errors: ClassVar[ErrorTable | None] = None
    # Where the exchange lists its markets and how an item reads (``load_markets``).
    market_fields: ClassVar[MarketFields | None] = None

    @classmethod
    def check(cls, status: int, headers: Mapping[str, str], body: Any) -> DccdError | None:
        """Inspect every reply before the generic HTTP handling (see ``dccd_cli.net.client``).

        Return an error for replies that are errors — in their HTTP status or in disguise,
        like Kraken's errors inside an HTTP 200 or Bitfinex's ``["error", 11010,
        "ratelimit: error"]`` — e.g. ``RateLimitedError`` (waited for and retried),
        ``ServerError`` (retried with backoff), ``ExchangeError`` or a ``UsageError``
        (raised), in the exchange's own words; or None for the generic rules. The adapter's
        ``errors`` table decides (``ErrorTable.check``); without one, HTTP statuses do.
        """
        return None if cls.errors is None else cls.errors.check(cls.name, status, headers, body)

    def __init__(self, http: AsyncHTTPClient) -> None:
        self.http = http

    async def load_markets(self) -> list[Market]:
        """Every market the exchange lists (one request; the core caches the result), as
        its ``market_fields`` declare them."""
        fields = self.market_fields
        if fields is None:
            raise NotImplementedError(f"{self.name} declares no market_fields")
        rows = await self.get_rows(fields.endpoint, dict(fields.params), fields.envelope,
                                   weight=fields.weight)
        return fields.markets(rows)

    async def get_rows(self, path: str, params: Mapping[str, Any], envelope: Envelope,
                       **kwargs: Any) -> list[Any]:
        """GET ``path`` and the list of rows its reply holds where ``envelope`` says."""
        body = await self.http.get_json(path, dict(params), **kwargs)
        return envelope.unwrap(body, what=path, exchange=self.name)

    async def server_time_ns(self) -> int | None:
        """The exchange's clock, which decides what 'now' and an unfinished bar are.

        The default reads the ``Date`` header of the last response (None before any), plus
        the time since it arrived; adapters of exchanges with a time endpoint override this
        with it (millisecond precision).
        """
        return self.http.server_time_ns()

    async def fetch_ohlc_page(
        self, market: Market, span: str, start_ns: int, end_ns: int, limit: int
    ) -> pa.Table:
        """Bars opening in ``[start_ns, end_ns)``, at most ``limit`` of them, oldest first.

        ``span`` is the unified span code; the adapter maps it with ``self.ohlc.spans``.
        """
        raise NotImplementedError

    async def fetch_trades_page(
        self, market: Market, start_ns: int, end_ns: int, limit: int, cursor: Any
    ) -> tuple[pa.Table, Any]:
        """One page of trades in ``[start_ns, end_ns)``, oldest first, and the next cursor.

        Trades sharing an instant come in the exchange's execution order: the core puts
        integer ids in order itself, but keeps other ids (BitMEX's UUIDs) as listed
        (``dccd_cli.tradeorder``).

        ``cursor`` is None on the first call of a window; the adapter returns None as the
        next cursor only when the window is drained (never because one page was full).
        """
        raise NotImplementedError

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        """The first instant the exchange has data for (``--start origin``), or None when
        it has none for this market. Adapters that cannot tell leave this default."""
        if market.listed_ns is not None:
            return market.listed_ns
        raise UnsupportedRangeError(
            f"--start origin: {self.name} does not tell where its {kind} history begins; "
            "give a date with --start"
        )

    @classmethod
    def capability(cls, kind: str) -> Capability | None:
        return cls.ohlc if kind == "ohlc" else cls.trades if kind == "trades" else None

    @classmethod
    def history_summary(cls) -> str:
        """History over REST per kind, as the README's table and ``dccd exchanges`` print
        it: ``OHLC full; trades the last 23 hours``."""
        parts = [f"OHLC {cls.ohlc.history_text}" if cls.ohlc else "OHLC none",
                 f"trades {cls.trades.history_text}" if cls.trades else "trades none"]
        return "; ".join(parts)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Capabilities as plain data, for ``dccd exchanges``."""

        def cap(c: Capability | None) -> dict[str, Any] | None:
            if c is None:
                return None
            return {
                "max_per_request": c.max_per_request,
                "page_direction": c.page_direction,
                "weight": c.weight,
                "spans": list(c.spans),
                "history": c.history,
                "history_text": c.history_text,
                "recent_bars": c.recent_bars,
                "recent_seconds": None if c.recent_ns is None else c.recent_ns // NS,
                "note": c.note,
            }

        return {
            "name": cls.name,
            "title": cls.title,
            "base_url": cls.default_base_url,
            "rate_limit": {"capacity": cls.rate_limit.capacity, "window_s": cls.rate_limit.window_s},
            "history": cls.history_summary(),
            "ohlc": cap(cls.ohlc),
            "trades": cap(cls.trades),
            "unsupported": dict(cls.unsupported),
        }
