"""Binance spot: ``/api/v3/klines`` for OHLC, ``/api/v3/aggTrades`` for trades.

Facts (docs/exchanges.md#binance): times in ms; klines oldest first, bounds inclusive on
open time, at most 1000 per request, weight 2; aggTrades paged by ``fromId`` (inclusive),
at most 1000, weight 4; 6000 weight per minute per IP, reported in ``X-MBX-USED-WEIGHT-1M``;
HTTP 429 then 418 (ban) with ``Retry-After``; error bodies ``{"code":-1121,"msg":"..."}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import ProtocolError, ServerError
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.exchange.listing import MarketFields
from dccd_cli.exchange.pagescan import Layout, scan
from dccd_cli.exchange.replies import ErrorTable
from dccd_cli.schema import empty_ohlc, empty_trades, ohlc_table, trades_table
from dccd_cli.timeutil import MS, ceil_ms, ms_to_ns

_INTERVALS = ("1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M").split()

# One aggTrades item, as a struct type so pyarrow converts a whole page in C.
_AGG_TRADE = pa.struct(
    [("a", pa.int64()), ("p", pa.string()), ("q", pa.string()), ("T", pa.int64()), ("m", pa.bool_())]
)


# The taker's side, by ``m`` (the buyer was the maker). Typed scalars: pyarrow.compute given
# bare strings infers their type each call (~130 µs for if_else here).
_SELL, _BUY = pa.scalar("sell", pa.string()), pa.scalar("buy", pa.string())

# The exact shapes of the two pages, read straight into columns by dccd_cli.exchange.pagescan (no
# Python object per cell); any other body — an error object, whitespace, a changed field —
# is parsed as JSON instead, by the code below that was there first.
_AGG_TRADES = Layout.objects(
    a="int", p="dec", q="dec", f="int", l="int", T="int", m="bool", M="bool",
    keep=("a", "p", "q", "T", "m"),
)
_KLINES = Layout.arrays(
    open_time="int", open="dec", high="dec", low="dec", close="dec", volume="dec",
    close_time="int", quote_volume="dec", trades="int", taker_base="dec", taker_quote="dec",
    ignore="str",
    keep=("open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades"),
)


def _scan_trades(body: bytes) -> dict[str, pa.Array] | None:
    return scan(body, _AGG_TRADES)


def _scan_klines(body: bytes) -> dict[str, pa.Array] | None:
    return scan(body, _KLINES)


def _consecutive_from(ids: npt.NDArray[np.int64], first: int) -> bool:
    """Whether ``ids`` are exactly ``first, first + 1, ..., first + len - 1`` in that order:
    strictly rising from ``first`` to ``first + len - 1`` leaves no room for a gap or a
    repeat."""
    n = len(ids)
    return (n > 0 and int(ids[0]) == first and int(ids[-1]) - first == n - 1
            and bool((ids[1:] > ids[:-1]).all()))


def _next_cursor(ids: npt.NDArray[np.int64], times: npt.NDArray[np.int64], cursor: int | None,
                 start_ns: int, end_ns: int, limit: int) -> int | None:
    """The ``fromId`` of the next page, or None when the window is drained (see
    ``_next_cursor_by_own_rows``, whose answer this is)."""
    if cursor is not None and _consecutive_from(ids, cursor):
        # The usual page by id: exactly ``cursor, cursor + 1, ...``, so every row is its own
        # and the general answer is known without np.unique and the masks (~70 µs a page;
        # these checks ~4; tests/adapters/test_binance_fast_paths.py).
        if len(ids) < limit or int(times.max()) * MS >= end_ns:
            return None
        return cursor + len(ids)
    return _next_cursor_by_own_rows(ids, times, cursor, start_ns, end_ns, limit)


def _next_cursor_by_own_rows(ids: npt.NDArray[np.int64], times: npt.NDArray[np.int64],
                             cursor: int | None, start_ns: int, end_ns: int, limit: int) -> int | None:
    """The ``fromId`` of the next page, or None when the window is drained.

    Only the page's own rows move the cursor — for a page by time, those inside the window;
    for a page by id, the run of consecutive ids from the cursor — never simply its last
    row: a page out of order, or one repeating rows of another page across its boundary,
    must neither send the cursor back (pages read again) nor past rows unseen (rows lost).
    Drained when the page's own rows do not fill it (nothing more up to the window's end
    or the exchange's now), or already reach past the window.
    """
    if cursor is None:
        own = (times >= ceil_ms(start_ns)) & (times <= (end_ns - 1) // MS)
    else:
        run = np.unique(ids[ids >= cursor])  # sorted
        n = int(np.count_nonzero(run == cursor + np.arange(len(run))))
        own = (ids >= cursor) & (ids < cursor + n)
    if int(np.count_nonzero(own)) < limit:
        return None
    if int(times[own].max()) * MS >= end_ns:
        return None
    return int(ids[own].max()) + 1


class BinanceAdapter(Adapter):
    name = "binance"
    title = "Binance (spot)"
    default_base_url = "https://api.binance.com"
    # [C] 6000 weight per minute per IP, counted per window and reported in every reply.
    rate_limit = RateLimit(capacity=6000, window_s=60, used_weight_header="X-MBX-USED-WEIGHT-1M",
                           counts_per_window=True)
    # 16 windows in flight: with window mode's burst, round trips (not the budget) bound a
    # download of up to a window's worth of requests (~2800 klines).
    ohlc = Capability(
        kind="ohlc", max_per_request=1000, page_direction="forward", weight=2, concurrency=16,
        spans={s: s for s in _INTERVALS},
    )
    # Aggregate trade ids are consecutive and ``fromId`` pages by them: dccd proves every
    # range of trades complete by its ids (dccd_cli.sources.rest.checks.verify_dense_ids).
    trades = Capability(kind="trades", max_per_request=1000, page_direction="forward", weight=4,
                        dense_ids=True)

    # Error bodies ``{"code": -1121, "msg": "Invalid symbol."}`` go with their HTTP status;
    # the same object inside a 2xx reply — ``{"code": -1003, "msg": "Too much request
    # weight used; ..."}`` where klines or trades were expected, as overloaded gateways
    # send — is not data: it is retried with backoff like a 5xx.
    errors = ErrorTable(code="code", message=("msg",), in_ok_reply=ServerError)
    # exchangeInfo: ``{"symbols": [{"symbol": "BTCUSDT", "status": "TRADING",
    # "baseAsset": "BTC", "quoteAsset": "USDT", ...}]}``, weight 20.
    market_fields = MarketFields(
        endpoint="/api/v3/exchangeInfo", rows="symbols", weight=20,
        native="symbol", base="baseAsset", quote="quoteAsset", extra=("status",),
    )

    async def server_time_ns(self) -> int | None:
        body = await self.http.get_json("/api/v3/time", weight=1)
        return ms_to_ns(body["serverTime"])

    async def fetch_ohlc_page(
        self, market: Market, span: str, start_ns: int, end_ns: int, limit: int
    ) -> pa.Table:
        """Parse klines rows, e.g. ``[1499040000000, "0.01634790", "0.80000000",
        "0.01575800", "0.01577100", "148976.11427815", 1499644799999, "2434.19055334", 308,
        "1756.87402397", "28.46694368", "0"]`` (open time, O, H, L, C, volume, close time,
        quote volume, trade count, taker buy base, taker buy quote, ignore)."""
        reply = await self.http.get(
            "/api/v3/klines",
            {
                "symbol": market.native,
                "interval": self.ohlc.spans[span],
                "startTime": ceil_ms(start_ns),  # ceil: never a bar before the window
                "endTime": (end_ns - 1) // MS,  # endTime is inclusive
                "limit": limit,
            },
            weight=2,
            decode=_scan_klines,
        )
        if (c := reply.decoded) is not None:
            open_time = pa.array(c["open_time"].to_numpy() * MS)
            return ohlc_table(open_time, c["open"], c["high"], c["low"], c["close"], c["volume"],
                              quote_volume=c["quote_volume"], trades=c["trades"])
        rows = reply.json
        if not isinstance(rows, list):
            raise ProtocolError(f"klines: expected a list, got {type(rows).__name__}", exchange=self.name)
        if not rows:
            return empty_ohlc()
        cols = list(zip(*rows))
        ts = pc.multiply(pa.array(cols[0], pa.int64()), MS)
        return ohlc_table(ts, cols[1], cols[2], cols[3], cols[4], cols[5],
                          quote_volume=cols[7], trades=cols[8])

    async def fetch_trades_page(
        self, market: Market, start_ns: int, end_ns: int, limit: int, cursor: Any
    ) -> tuple[pa.Table, Any]:
        """Parse aggTrades items, e.g. ``{"a": 26129, "p": "0.01633102", "q": "4.70443515",
        "f": 27781, "l": 27781, "T": 1498793709153, "m": true, "M": true}``; ``m`` true means
        the buyer was the maker, so the taker sold.

        The first page of a window is asked by time; the rest follow ``fromId`` (inclusive)
        so that trades sharing a millisecond are never split or skipped.
        """
        params: dict[str, Any] = {"symbol": market.native, "limit": limit}
        if cursor is None:
            params["startTime"] = ceil_ms(start_ns)
            params["endTime"] = (end_ns - 1) // MS
        else:
            params["fromId"] = cursor
        reply = await self.http.get("/api/v3/aggTrades", params, weight=4, decode=_scan_trades)
        cols: dict[str, pa.Array] | None = reply.decoded
        if cols is None:  # not scanned: parsed as JSON
            items = reply.json
            if not isinstance(items, list):
                raise ProtocolError(f"aggTrades: expected a list, got {type(items).__name__}",
                                    exchange=self.name)
            if not items:
                return empty_trades(), None
            arr = pa.array(items, type=_AGG_TRADE)
            cols = {name: arr.field(name) for name in ("a", "p", "q", "T", "m")}
        # One kernel with typed scalars (~8 µs a page); a null ``m`` (JSON path only) is an
        # unknown side.
        sides = pc.if_else(cols["m"], _SELL, _BUY)
        # numpy does the per-row arithmetic (a pyarrow.compute call costs more than the
        # work on a page).
        ids = cols["a"].to_numpy()
        times = cols["T"].to_numpy()
        table = trades_table(
            pa.array(times * MS),
            cols["a"],
            cols["p"],  # float64 when scanned, decimal strings when parsed: cast alike
            cols["q"],
            sides,
        )
        if cursor is not None and int(ids.min()) > cursor:
            raise ProtocolError(f"aggTrades from id {cursor} began at id {int(ids.min())}: "
                                "ids were skipped", exchange=self.name)
        return table, _next_cursor(ids, times, cursor, start_ns, end_ns, limit)

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        if kind == "ohlc":
            rows = await self.http.get_json(
                "/api/v3/klines",
                {"symbol": market.native, "interval": self.ohlc.spans[span or "1d"],
                 "startTime": 0, "limit": 1},
                weight=2,
            )
            return ms_to_ns(rows[0][0]) if rows else None
        items = await self.http.get_json(
            "/api/v3/aggTrades", {"symbol": market.native, "fromId": 0, "limit": 1}, weight=4
        )
        return ms_to_ns(items[0]["T"]) if items else None
