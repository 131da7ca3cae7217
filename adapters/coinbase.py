"""Coinbase Exchange: ``/products/{id}/candles`` for OHLC, ``/products/{id}/trades`` for trades.

Facts (docs/exchanges.md#coinbase): candles take ``granularity`` in seconds (60 300 900
3600 21600 86400 only) and ISO-8601 ``start``/``end``, both inclusive, at most 300 candles
or the request is rejected (400); rows ``[time(s), low, high, open, close, volume]``,
newest first, with no rows for intervals without trades. Trades are newest first, paged
by ``after=<trade_id>`` (older than it), with no time parameters at all; ``side`` is the
*maker's* side. Public endpoints allow 10 requests/s per IP (bursts of 15); over it,
``429 {"message":"Public rate limit exceeded"}``. Unknown products: ``404 NotFound``.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import DccdError, ProtocolError
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.exchange.listing import MarketFields
from dccd_cli.exchange.replies import Envelope, ErrorTable
from dccd_cli.exchange.rows import columns, s_column
from dccd_cli.schema import TS_TYPE, empty_ohlc, empty_trades, ohlc_table, trades_table
from dccd_cli.timeutil import NS, Span, ms_to_ns, ns_to_datetime

if TYPE_CHECKING:
    from dccd_cli.net.client import AsyncHTTPClient

_GRANULARITY = {"1m": "60", "5m": "300", "15m": "900", "1h": "3600", "6h": "21600", "1d": "86400"}
_MAX_CANDLES = 300
_MAX_TRADES = 1000
# Coinbase names the maker's side; our schema stores the taker's.
_TAKER = {"buy": "sell", "sell": "buy"}
# Known (trade id, time) points per product are kept to bracket later id searches; past
# this many the index is simply restarted (it is an accelerator, not a source of truth).
_INDEX_MAX = 50_000


# ``{"message": "..."}`` with the HTTP status; ``404 {"message": "NotFound"}`` is a product
# Coinbase does not have. Public calls get no Retry-After [B]; the limit is per second, so
# one second is when the budget is whole again.
_ERRORS = ErrorTable(message=("message",), unknown_symbol_words=("notfound",),
                     rate_limit_wait=1.0)
_LIST = Envelope()


def _iso(ns: int) -> str:
    return ns_to_datetime(ns).strftime("%Y-%m-%dT%H:%M:%SZ")


class _IdIndex:
    """(trade id, time ns) points seen for one product, sorted by id and so by time.

    Trade ids are dense and increase with time per product, so any two known points
    bracket the id of an instant; searches start from the tightest known bracket.
    """

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.ts: list[int] = []

    def add(self, trade_id: int, ts: int) -> None:
        if len(self.ids) >= _INDEX_MAX:
            self.ids.clear()
            self.ts.clear()
        i = bisect_left(self.ids, trade_id)
        if i < len(self.ids) and self.ids[i] == trade_id:
            return
        self.ids.insert(i, trade_id)
        self.ts.insert(i, ts)

    def bracket(self, t: int) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """The newest known point before ``t`` and the oldest known point at or after it."""
        i = bisect_left(self.ts, t)
        lo = (self.ids[i - 1], self.ts[i - 1]) if i > 0 else None
        hi = (self.ids[i], self.ts[i]) if i < len(self.ids) else None
        return lo, hi


class CoinbaseAdapter(Adapter):
    name = "coinbase"
    title = "Coinbase Exchange"
    default_base_url = "https://api.exchange.coinbase.com"
    # 10 requests/s per IP [C]; the burst of 15 is Coinbase's tolerance, not a budget we plan
    # on (the bucket paces with a small burst of its own).
    rate_limit = RateLimit(capacity=10, window_s=1)
    ohlc = Capability(
        kind="ohlc", max_per_request=_MAX_CANDLES, page_direction="forward", spans=_GRANULARITY,
    )
    # Newest-first pages behind an id cursor: a window is walked from its end into the past.
    trades = Capability(kind="trades", max_per_request=_MAX_TRADES, page_direction="backward")

    def __init__(self, http: AsyncHTTPClient) -> None:
        super().__init__(http)
        self._index: dict[str, _IdIndex] = {}

    errors = _ERRORS
    # Products, e.g. ``{"id": "BTC-USDT", "base_currency": "BTC", "quote_currency": "USDT",
    # "status": "online", ...}``.
    market_fields = MarketFields(endpoint="/products", native="id", base="base_currency",
                                 quote="quote_currency", extra=("status",))

    async def server_time_ns(self) -> int | None:
        """Coinbase's clock from ``/time``, e.g. ``{"iso": "2015-01-07T23:47:25.201Z",
        "epoch": 1420674445.201}``; if that fails, the ``Date`` header of whatever reply
        came back (an error reply has one too)."""
        try:
            body = await self.http.get_json("/time")
            return ms_to_ns(round(float(body["epoch"]) * 1000))
        except (DccdError, KeyError, TypeError, ValueError):
            return self.http.server_time_ns()

    async def fetch_ohlc_page(
        self, market: Market, span: str, start_ns: int, end_ns: int, limit: int
    ) -> pa.Table:
        """Parse candle rows, e.g. ``[1415398768, 0.32, 4.2, 0.35, 4.2, 12.3]`` (time in s,
        low, high, open, close, volume), newest first.

        Both bounds are inclusive, so ``end`` is the open of the window's last bar: asking
        for exactly the window's bars keeps a request at or under 300 candles.
        """
        step = int(_GRANULARITY[span]) * NS
        first = -(-start_ns // step) * step
        last = min((end_ns - 1) // step * step, first + (min(limit, _MAX_CANDLES) - 1) * step)
        if last < first:
            return empty_ohlc()
        rows = await self.get_rows(
            f"/products/{market.native}/candles",
            {"granularity": _GRANULARITY[span], "start": _iso(first), "end": _iso(last)}, _LIST,
        )
        if not rows:
            return empty_ohlc()
        rows.reverse()  # oldest first
        t, low, high, open_, close, volume = columns(rows, 6, "candles", exchange=self.name)
        return ohlc_table(s_column(t), open_, high, low, close, volume)

    def _parse_trades(
        self, market: Market, items: list[dict[str, Any]]
    ) -> tuple[pa.Table, pa.Array, pa.Array]:
        """Parse trade items, e.g. ``{"time": "2020-03-20T00:36:59.860Z", "trade_id":
        86327327, "price": "6225.32000000", "size": "0.06469797", "side": "sell"}`` — a
        maker sell, so the taker bought. Returns the table in the order sent (newest
        first), and its ids and times (ns) as int64 arrays; both ends go to the id index."""
        arr = pa.array(items)
        ids = pc.cast(arr.field("trade_id"), pa.int64())  # some recordings carry it as a string
        ts = pc.cast(arr.field("time"), TS_TYPE).view(pa.int64())
        sides = [_TAKER.get(s) for s in arr.field("side").to_pylist()]
        table = trades_table(ts, ids, arr.field("price"), arr.field("size"), sides)
        index = self._index.setdefault(market.native, _IdIndex())
        for i in (0, len(items) - 1):
            index.add(ids[i].as_py(), ts[i].as_py())
        return table, ids, ts

    async def _probe(self, market: Market, before: int | None) -> tuple[int, int] | None:
        """(id, time) of the newest trade with an id below ``before`` (of all, if None)."""
        items = await self.http.get_json(
            f"/products/{market.native}/trades", {"limit": 1, "after": before}
        )
        if not items:
            return None
        _, ids, ts = self._parse_trades(market, items)
        return ids[0].as_py(), ts[0].as_py()

    async def _cursor_at(self, market: Market, t: int) -> int:
        """An ``after`` cursor above every trade before ``t``, by at most one page.

        Searches trade ids (dense, growing with time) by interpolation on time, with a
        bisection every other step so a bursty market cannot make it crawl. It stops once
        the bracket fits in one page: the first page then merely starts with some trades
        from after ``t``, which the core filters, and a probe or two are saved.
        """
        lo, hi = self._index.setdefault(market.native, _IdIndex()).bracket(t)
        if hi is None:
            newest = await self._probe(market, None)
            if newest is None:
                return 1  # no trades at all: nothing is older than id 1
            if newest[1] < t:
                return newest[0] + 1
            hi = newest
        lo_id, lo_ts = lo if lo is not None else (0, None)
        hi_id, hi_ts = hi
        step = 0
        while hi_id - lo_id > _MAX_TRADES:
            if lo_ts is not None and step % 2 == 0 and hi_ts > lo_ts:
                guess = lo_id + (t - lo_ts) * (hi_id - lo_id) // (hi_ts - lo_ts)
            else:
                guess = (lo_id + hi_id) // 2
            m = min(max(guess, lo_id + 1), hi_id - 1)
            got = await self._probe(market, m + 1)  # the newest trade with id <= m
            if got is None or got[1] < t:
                lo_id, lo_ts = m, got[1] if got else lo_ts
            elif got[0] < hi_id:
                hi_id, hi_ts = got
            else:
                break  # `after` inclusive after all: hi_id is still a valid (looser) cursor
            step += 1
        return hi_id

    async def fetch_trades_page(
        self, market: Market, start_ns: int, end_ns: int, limit: int, cursor: Any
    ) -> tuple[pa.Table, Any]:
        """One newest-first page walking from the window's end into its past.

        The cursor is the ``after`` id of the next (older) page; None is returned once a
        page reaches a trade older than the window's start, or the product's first trade.
        """
        after = await self._cursor_at(market, end_ns) if cursor is None else int(cursor)
        if after <= 1:
            return empty_trades(), None
        limit = min(limit, _MAX_TRADES)
        items = await self.get_rows(
            f"/products/{market.native}/trades", {"limit": limit, "after": after}, _LIST
        )
        if not items:
            return empty_trades(), None
        table, ids, ts = self._parse_trades(market, items)
        oldest_id, oldest_ts = pc.min(ids).as_py(), pc.min(ts).as_py()
        if oldest_ts < start_ns or oldest_id <= 1 or len(items) < limit:
            return table, None
        if oldest_id >= after:
            raise ProtocolError(f"trades after={after} did not move back (oldest id {oldest_id})",
                                exchange=self.name)
        return table, oldest_id

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        """The time of trade id 1 (ids are dense per product): one request. Candles exist
        from the bar holding the first trade on."""
        first = await self._probe(market, 2)
        if first is None:
            return None
        return Span.parse(span).floor(first[1]) if kind == "ohlc" and span else first[1]
