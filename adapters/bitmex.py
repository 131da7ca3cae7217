"""BitMEX spot: ``/api/v1/trade/bucketed`` for OHLC, ``/api/v1/trade`` for trades.

Facts (docs/exchanges.md#bitmex, docs/ccxt.md#bitmex): ISO-8601 timestamps with ms, numbers
as JSON numbers (null possible); rows oldest first unless ``reverse=true``; at most 1000
rows a request (``count``), ``start`` is a row offset into the filtered result. A bucket's
``timestamp`` is the END of the bucket. Every reply carries ``X-RateLimit-Limit``,
``-Remaining`` and ``-Reset``; over the limit: 429 with ``Retry-After``; overloaded: 503,
retry after at least 500 ms. Errors are ``{"error": {"message": ..., "name": ...}}``.

Units: ``size`` and the buckets' ``volume`` count contracts or lots — USD contracts on the
inverse XBTUSD of the samples, 10^-scale base units on spot (ccxt rescales them by the
asset's scale) — whereas ``homeNotional`` is in the base asset and ``foreignNotional`` in
the quote asset on every instrument. The sample trade shows it: ``size`` 180 (USD) at
``price`` 3838 has ``homeNotional`` 0.046899 (= 180 / 3838 XBT). So amounts and volumes
are taken from ``homeNotional``, quote volumes from ``foreignNotional``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import ProtocolError
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.exchange.listing import MarketFields
from dccd_cli.exchange.replies import Envelope, ErrorTable
from dccd_cli.schema import TS_TYPE, empty_ohlc, empty_trades, ohlc_table, trades_table
from dccd_cli.timeutil import MINUTE_NS, MS, ceil_ms

# Unified span -> (binSize, bucket length in ns) [C].
_BINS = {
    "1m": ("1m", MINUTE_NS),
    "5m": ("5m", 5 * MINUTE_NS),
    "1h": ("1h", 60 * MINUTE_NS),
    "1d": ("1d", 1440 * MINUTE_NS),
}
_CAP = 1000  # max ``count`` [B]
_OVERLOAD_RETRY_S = 0.5  # 503: "retry after at least 500 ms" [C]
# ``{"error": {"message": "...", "name": "HTTPError"}}``: 503 is retried after at least
# 500 ms; a refusal about the symbol means an unknown market; 429 and other statuses
# follow the generic rules.
_ERRORS = ErrorTable(message=("error.message",), unknown_symbol_words=("symbol",),
                     busy={503: _OVERLOAD_RETRY_S})
_LIST = Envelope()

_BUCKET = pa.struct([
    ("timestamp", pa.string()), ("open", pa.float64()), ("high", pa.float64()),
    ("low", pa.float64()), ("close", pa.float64()), ("trades", pa.int64()),
    ("vwap", pa.float64()), ("homeNotional", pa.float64()), ("foreignNotional", pa.float64()),
])
_TRADE = pa.struct([
    ("timestamp", pa.string()), ("side", pa.string()), ("price", pa.float64()),
    ("trdMatchID", pa.string()), ("homeNotional", pa.float64()),
])


def _iso(ms: int) -> str:
    """``2024-01-01T00:00:00.000Z``: BitMEX's own form, to the millisecond."""
    return f"{datetime.fromtimestamp(ms // 1000, tz=UTC):%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def _iso_to_ns(values: pa.Array) -> pa.Array:
    """ISO-8601 strings -> int64 ns, parsed in C."""
    return pc.cast(values, TS_TYPE).view(pa.int64())


class BitmexAdapter(Adapter):
    name = "bitmex"
    title = "BitMEX (spot)"
    default_base_url = "https://www.bitmex.com"
    # About 30 requests a minute without an API key [B]. The X-RateLimit-* headers count
    # what *remains*, not what was used, so they cannot feed the bucket's usage feedback;
    # a 429 still pauses every request for its Retry-After.
    rate_limit = RateLimit(capacity=30, window_s=60)
    ohlc = Capability(
        kind="ohlc", max_per_request=_CAP, page_direction="forward",
        spans={span: code for span, (code, _) in _BINS.items()},
    )
    trades = Capability(kind="trades", max_per_request=_CAP, page_direction="forward")

    errors = _ERRORS
    # Spot instruments (``typ`` IFXXXP), e.g. ``{"symbol":"XBT_USDT","typ":"IFXXXP",
    # "underlying":"XBT","quoteCurrency":"USDT","state":"Open","lotSize":1000,...}``; XBT
    # is listed as BTC.
    market_fields = MarketFields(
        endpoint="/api/v1/instrument/active", only={"typ": "IFXXXP"},
        native="symbol", base="underlying", quote="quoteCurrency",
        listed="listing", listed_unit="iso", extra=("state",), aliases={"XBT": "BTC"},
    )

    async def _rows(self, path: str, params: dict[str, Any]) -> list[Any]:
        return await self.get_rows(path, params, _LIST)

    async def fetch_ohlc_page(
        self, market: Market, span: str, start_ns: int, end_ns: int, limit: int
    ) -> pa.Table:
        """Parse buckets, oldest first, e.g. ``{"timestamp":"2017-01-01T00:01:00.000Z",
        "symbol":"XBTUSD","open":968.29,"high":968.76,"low":968.49,"close":968.7,
        "trades":17,"volume":12993,"vwap":968.72,"lastSize":2000,"turnover":1341256747,
        "homeNotional":13.412567469999997,"foreignNotional":12993}`` — the minute that
        *opened* at 00:00. ``open`` is the previous bucket's close (here below ``low``):
        stored as BitMEX reports it.

        Buckets are asked by their end time: bars opening in ``[start, end)`` end in
        ``[start + bin, end + bin)``. Both bounds are sent one ms inside that range, which
        reads right whether BitMEX takes them as inclusive or exclusive. ``partial=false``:
        the exchange itself leaves out the bucket still forming, whatever our clock says.
        """
        code, bin_ns = _BINS[span]
        bin_ms = bin_ns // MS
        rows = await self._rows("/api/v1/trade/bucketed", {
            "binSize": code, "symbol": market.native, "partial": False, "reverse": False,
            "startTime": _iso(ceil_ms(start_ns) + bin_ms - 1),
            "endTime": _iso(ceil_ms(end_ns) + bin_ms - 1),
            "count": min(limit, _CAP),
        })
        if not rows:
            return empty_ohlc()
        arr = pa.array(rows, type=_BUCKET)
        # A bucket before the market's first trade has no prices: it is not a bar.
        arr = arr.filter(pc.is_valid(arr.field("close")))
        trades = arr.field("trades")
        home = arr.field("homeNotional")
        # Empty buckets may carry null notionals; their volume is truly zero.
        home = pc.if_else(pc.equal(pc.fill_null(trades, -1), 0), pc.fill_null(home, 0.0), home)
        return ohlc_table(
            pc.subtract(_iso_to_ns(arr.field("timestamp")), bin_ns),  # bucket end -> bar open
            arr.field("open"), arr.field("high"), arr.field("low"), arr.field("close"), home,
            quote_volume=arr.field("foreignNotional"), vwap=arr.field("vwap"), trades=trades,
        )

    async def fetch_trades_page(
        self, market: Market, start_ns: int, end_ns: int, limit: int, cursor: Any
    ) -> tuple[pa.Table, Any]:
        """Parse trades, oldest first, e.g. ``{"timestamp": "2019-01-05T21:45:31.597Z",
        "symbol": "XBTUSD", "side": "Sell", "size": 180, "price": 3838, "tickDirection":
        "ZeroMinusTick", "trdMatchID": "cb96e6d2-0bc9-d921-dafe-f96857773931", "grossValue":
        4689900, "homeNotional": 0.046899, "foreignNotional": 180}``; ``side`` is the
        taker's, the amount ``homeNotional`` (base units).

        Cursor ``(T, k)``: the next page starts AT the newest millisecond ``T`` seen
        (``startTime`` is inclusive), so the trades sharing it are asked again and the
        paginator drops the repeats by ``trdMatchID`` — nothing at a seam is lost. Only
        when a whole page is one millisecond (a sweep of 1000+ fills) would that repeat for
        ever; then ``k`` skips, with the row offset ``start``, the trades of ``T`` already
        seen, relying on BitMEX's stable order within one instant.
        """
        page_limit = min(limit, _CAP)
        t_ms, skip = cursor if cursor is not None else (ceil_ms(start_ns), 0)
        params: dict[str, Any] = {
            "symbol": market.native, "count": page_limit, "reverse": False,
            "startTime": _iso(t_ms),
            # Inclusive or not, this bound lets through every trade before ``end``.
            "endTime": _iso(ceil_ms(end_ns)),
        }
        if skip:
            params["start"] = skip
        rows = await self._rows("/api/v1/trade", params)
        if not rows:
            return empty_trades(), None
        arr = pa.array(rows, type=_TRADE)
        if arr.field("homeNotional").null_count:
            raise ProtocolError("trade: a trade without homeNotional (its amount)",
                                exchange=self.name)
        ts = _iso_to_ns(arr.field("timestamp"))
        side = pc.utf8_lower(arr.field("side"))
        table = trades_table(
            ts, arr.field("trdMatchID"), arr.field("price"), arr.field("homeNotional"),
            pc.if_else(pc.is_in(side, pa.array(["buy", "sell"])), side, pa.scalar(None, pa.string())),
        )
        first_ns, last_ns = pc.min(ts).as_py(), pc.max(ts).as_py()
        # Drained: a short page (nothing more up to endTime), or one reaching the window's end.
        if len(rows) < page_limit or last_ns >= end_ns:
            return table, None
        last_ms = last_ns // MS
        if first_ns // MS == last_ms:  # the whole page is one millisecond
            seen = (skip if cursor is not None and t_ms == last_ms else 0) + len(rows)
            return table, (last_ms, seen)
        return table, (last_ms, 0)

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        """The first bar, or first trade: BitMEX pages oldest first from the very start, so
        it is one request of ``count=1``."""
        if kind == "ohlc":
            code, bin_ns = _BINS[span or "1d"]
            path = "/api/v1/trade/bucketed"
            params: dict[str, Any] = {"binSize": code, "partial": False}
        else:
            bin_ns, path, params = 0, "/api/v1/trade", {}
        rows = await self._rows(path, {
            "symbol": market.native, "reverse": False, "count": 1, **params,
        })
        if not rows:
            return None
        # A bucket's timestamp is its end: the first bar opened one bin earlier.
        first: int = _iso_to_ns(pa.array([rows[0]["timestamp"]], pa.string()))[0].as_py()
        return first - bin_ns
