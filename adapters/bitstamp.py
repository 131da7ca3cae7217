"""Bitstamp: ``/api/v2/ohlc/{pair}/`` for OHLC, ``/api/v2/transactions/{pair}/`` for the
last day of trades.

Facts (docs/exchanges.md#bitstamp, docs/ccxt.md#bitstamp): times in Unix seconds, all values
strings; OHLC takes ``step`` (seconds) and a required ``limit`` of 1-1000, oldest first;
"if both start and end timestamps are posted, end timestamp will be used". Trades: one
newest-first list of at most the last 24 h, without paging. Errors look like
``{"status":"error","reason":...,"code":...}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import DccdError
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.exchange.listing import MarketFields
from dccd_cli.exchange.replies import Envelope, ErrorTable
from dccd_cli.exchange.rows import s_column
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.schema import empty_ohlc, empty_trades, ohlc_table, trades_table
from dccd_cli.timeutil import HOUR_NS, NS, s_to_ns

# Unified span -> ``step`` in seconds [C]. 3d bars are taken to sit on the epoch grid, as
# our 3d span does (bar timestamps are multiples of the step [B]); ccxt's 1w -> 259200 is
# wrong (three days), so Bitstamp offers no weekly span here.
_STEPS = {
    "1m": "60", "3m": "180", "5m": "300", "15m": "900", "30m": "1800",
    "1h": "3600", "2h": "7200", "4h": "14400", "6h": "21600", "12h": "43200",
    "1d": "86400", "3d": "259200",
}
_OHLC_CAP = 1000  # ``limit`` must be 1..1000 [C]
# The day of trades arrives whole in one reply; there is no page cap to declare.
_NO_CAP = 1_000_000
# One day-list serves every trades window of a run that starts within this many seconds:
# windows are drained concurrently, and each would otherwise download the same day again.
_DAY_LIST_TTL_S = 60.0


def _reason(body: Mapping[str, Any]) -> str:
    """The words of an error body: ``reason`` is a sentence or a dict of field errors
    (``{"__all__": ["Minimum order size is 5.0 EUR."]}``, ``{"step": ["Not a valid choice."]}``);
    a few replies say ``{"error": "..."}`` instead."""
    reason = body.get("reason", body.get("error"))
    if isinstance(reason, Mapping):
        parts = []
        for field, msgs in reason.items():
            text = " ".join(map(str, msgs)) if isinstance(msgs, list) else str(msgs)
            if text:
                parts.append(text if field == "__all__" else f"{field}: {text}")
        return "; ".join(parts)
    return str(reason or "")


class _Errors(ErrorTable):
    """``{"status": "error", "reason": ..., "code": ...}`` (or ``{"error": "..."}``) in any
    HTTP status [B], the reason a sentence or a dict of field errors (``_reason``)."""

    def read(self, body: Any) -> tuple[Any, str] | None:
        if not isinstance(body, Mapping):
            return None  # data lists, or 429/5xx pages without a JSON body: generic rules
        if body.get("status") != "error" and not isinstance(body.get("error"), str):
            return None
        code = str(body.get("code") or body.get("response_code") or "")
        return (code or None), _reason(body) or "error"


# Rate limiting is code 400.002 "Request rejected due to exceeded rate limit", or says so
# [B]; maintenance is retried with backoff like a 5xx.
_ERRORS = _Errors(rate_limited=ErrorTable.codes("400.002"), rate_limited_words=("rate limit",),
                  server_words=("maintenance",))
# For requests whose path names the pair: there a 404, or a refusal about the pair or
# market, means the pair is unknown (exit 2, not retried).
_PAIR_ERRORS = replace(_ERRORS, unknown_statuses=frozenset({404}),
                       unknown_symbol_words=("pair", "market"))
_OHLC = Envelope("data.ohlc")
_LIST = Envelope()


def _pair_check(status: int, headers: Mapping[str, str], body: Any) -> DccdError | None:
    return _PAIR_ERRORS.check(BitstampAdapter.name, status, headers, body)


class BitstampAdapter(Adapter):
    name = "bitstamp"
    title = "Bitstamp"
    default_base_url = "https://www.bitstamp.net"
    # Sources disagree: a summary of the docs says 10,000 per 10 minutes, ccxt's comment
    # 8,000 [B]. The lower one: a breach costs more than the 20% of speed it gives up.
    rate_limit = RateLimit(capacity=8000, window_s=600)
    ohlc = Capability(
        kind="ohlc", max_per_request=_OHLC_CAP, page_direction="backward", spans=_STEPS,
    )
    trades = Capability(
        kind="trades", max_per_request=_NO_CAP, page_direction="forward",
        history="recent",
        # The list covers the 24 h before the request, which comes after the job fixed its
        # 'now'; 23 h keeps the clamped start inside it with an hour to spare.
        recent_ns=23 * HOUR_NS,
        note=(
            "Bitstamp serves trades over REST as one list of the last 24 hours (dccd takes 23 of "
            "them: the list moves on while a run works); a `dccd sync` job "
            "with start = \"-23h\" run from cron more often than every 23 hours keeps a "
            "complete record from now on."
        ),
    )

    def __init__(self, http: AsyncHTTPClient) -> None:
        super().__init__(http)
        # pair -> (monotonic time the request started, the request in flight or done)
        self._day_lists: dict[str, tuple[float, asyncio.Task[pa.Table]]] = {}

    errors = _ERRORS
    # Markets, e.g. ``{"market_symbol":"btcusdt","base_currency":"BTC",
    # "counter_currency":"USDT","trading":"Enabled","market_type":"SPOT",...}``.
    market_fields = MarketFields(
        endpoint="/api/v2/markets/", only={"market_type": "SPOT"}, only_default=True,
        native="market_symbol", base="base_currency", quote="counter_currency",
        extra=("trading",),
    )

    async def _ohlc(self, market: Market, step: str, params: dict[str, Any]) -> list[Any]:
        return await self.get_rows(
            f"/api/v2/ohlc/{market.native}/",
            {"step": step, "exclude_current_candle": True, **params}, _OHLC, check=_pair_check,
        )

    async def fetch_ohlc_page(
        self, market: Market, span: str, start_ns: int, end_ns: int, limit: int
    ) -> pa.Table:
        """Parse ``data.ohlc`` items, oldest first, e.g. ``{"timestamp": "1710327600",
        "open": "73241", "high": "73293", "low": "73240", "close": "73285", "volume":
        "0.01076655"}`` (BTC/USDT 1h; volume in the base currency; no quote volume, vwap or
        trade count, which stay null).

        Paged by ``end`` + ``limit`` (as ccxt does): the ``limit`` bars up to the window's
        last second. That reads the same whether Bitstamp takes ``end`` as inclusive,
        exclusive or containing, and a market with missing bars only widens the page into
        the past (the core drops rows before the window). ``start`` is not sent: with
        ``end`` it would be ignored. ``exclude_current_candle``: the exchange itself keeps
        the bar still forming out, whatever our clock says.
        """
        end_s = -(-end_ns // NS) - 1
        rows = await self._ohlc(market, _STEPS[span],
                                {"end": end_s, "limit": max(1, min(limit, _OHLC_CAP))})
        if not rows:
            return empty_ohlc()
        cols = {k: [r[k] for r in rows] for k in ("timestamp", "open", "high", "low", "close", "volume")}
        return ohlc_table(s_column(cols["timestamp"]), cols["open"], cols["high"], cols["low"],
                          cols["close"], cols["volume"])

    async def _day_list(self, market: Market) -> pa.Table:
        """The last 24 h of trades, one request shared by the concurrent windows of a run."""
        now = time.monotonic()
        cached = self._day_lists.get(market.native)
        if cached is None or now - cached[0] > _DAY_LIST_TTL_S:
            cached = (now, asyncio.ensure_future(self._get_day_list(market)))
            self._day_lists[market.native] = cached
        try:
            return await asyncio.shield(cached[1])
        except BaseException:
            if self._day_lists.get(market.native) is cached and cached[1].done():
                del self._day_lists[market.native]  # a failed request is asked again
            raise

    async def _get_day_list(self, market: Market) -> pa.Table:
        """Parse transactions, newest first, e.g. ``{"amount": "0.00055284", "date":
        "1710327533", "price": "73254", "tid": "326595342", "type": "0"}``; ``type`` "0" is
        a buy and "1" a sell, by the taker (the order that executed on arrival)."""
        items = await self.get_rows(f"/api/v2/transactions/{market.native}/", {"time": "day"},
                                    _LIST, check=_pair_check)
        if not items:
            return empty_trades()
        sides = {"0": "buy", "1": "sell"}
        return trades_table(
            s_column([str(it["date"]) for it in items]),
            [str(it["tid"]) for it in items],
            [str(it["price"]) for it in items],
            [str(it["amount"]) for it in items],
            [sides.get(str(it.get("type"))) for it in items],
        )

    async def fetch_trades_page(
        self, market: Market, start_ns: int, end_ns: int, limit: int, cursor: Any
    ) -> tuple[pa.Table, Any]:
        """The window's trades out of the day list; one page drains it (the core clamps the
        window into the last day with ``recent_ns``). Timestamps have whole seconds only."""
        table = await self._day_list(market)
        if table.num_rows:
            ts = table.column("ts").combine_chunks().view(pa.int64())
            table = table.filter(pc.and_(pc.greater_equal(ts, start_ns), pc.less(ts, end_ns)))
        return table, None

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        """The open of the oldest 3-day bar, paging ``end`` back 1000 bars (8 years) a
        request until a page comes back short: two or three requests for the oldest pairs."""
        end: int | None = None
        oldest: int | None = None
        for _ in range(8):
            params: dict[str, Any] = {"limit": _OHLC_CAP}
            if end is not None:
                params["end"] = end
            rows = await self._ohlc(market, _STEPS["3d"], params)
            if not rows:
                break
            first = min(int(r["timestamp"]) for r in rows)
            if oldest is not None and first >= oldest:
                break  # no progress: the exchange ignored ``end``
            oldest = first
            if len(rows) < _OHLC_CAP:
                break
            end = first - 1
        return None if oldest is None else s_to_ns(oldest)
