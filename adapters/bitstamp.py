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
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import (
    DccdError,
    ExchangeError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    UnknownSymbolError,
)
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.net.headers import exchange_message
from dccd_cli.schema import empty_ohlc, empty_trades, ohlc_table, trades_table

NS = 1_000_000_000
HOUR_NS = 3600 * NS

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
# Bitstamp error codes [B]: 400.002 "Request rejected due to exceeded rate limit".
_RATE_LIMIT_CODES = ("400.002",)


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


def _s_to_ns(values: Any) -> pa.Array:
    """Decimal-string Unix seconds -> int64 ns, in C."""
    return pc.multiply(pc.cast(pa.array(values, pa.string()), pa.int64()), NS)


def _pair_check(status: int, headers: Mapping[str, str], body: Any) -> DccdError | None:
    """For requests whose path names the pair: there a 404, or an error about the pair or
    market, means the pair is unknown (exit 2, not retried)."""
    if status == 404:
        return UnknownSymbolError(f"bitstamp: no such market ({exchange_message(body, 'not found')})")
    verdict = BitstampAdapter.check(status, headers, body)
    if type(verdict) is ExchangeError and any(w in str(verdict).lower() for w in ("pair", "market")):
        return UnknownSymbolError(f"bitstamp: {verdict.args[0]}")
    return verdict


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

    @staticmethod
    def check(status: int, headers: Mapping[str, str], body: Any) -> DccdError | None:
        """``{"status": "error", "reason": ..., "code": ...}`` (or ``{"error": "..."}``) in
        any HTTP status [B]; rate limiting is code ``400.002`` or says so [B]."""
        if not isinstance(body, Mapping):
            return None  # data lists, or 429/5xx pages without a JSON body: generic rules
        if body.get("status") != "error" and not isinstance(body.get("error"), str):
            return None
        code = str(body.get("code") or body.get("response_code") or "")
        reason = _reason(body)
        message = f"{reason} (code {code})" if code else reason or "error"
        if status == 429 or code.startswith(_RATE_LIMIT_CODES) or "rate limit" in reason.lower():
            return RateLimitedError(f"rate limited: {message}")
        if status >= 500 or "maintenance" in reason.lower():
            return ServerError(f"server error: {message}")  # retried with backoff
        return ExchangeError(message)

    async def load_markets(self) -> list[Market]:
        """Markets, e.g. ``{"market_symbol":"btcusdt","base_currency":"BTC",
        "counter_currency":"USDT","trading":"Enabled","market_type":"SPOT",...}``."""
        items = await self.http.get_json("/api/v2/markets/")
        if not isinstance(items, list):
            raise ProtocolError("markets: expected a list", exchange=self.name)
        out = []
        for item in items:
            if str(item.get("market_type") or "SPOT").upper() != "SPOT":
                continue
            base, quote = str(item["base_currency"]).upper(), str(item["counter_currency"]).upper()
            out.append(Market(symbol=f"{base}-{quote}", native=item["market_symbol"], base=base,
                              quote=quote, extra={"trading": item.get("trading")}))
        return out

    async def _ohlc(self, market: Market, step: str, params: dict[str, Any]) -> list[Any]:
        body = await self.http.get_json(
            f"/api/v2/ohlc/{market.native}/",
            {"step": step, "exclude_current_candle": True, **params},
            check=_pair_check,
        )
        data = body.get("data") if isinstance(body, Mapping) else None
        rows = data.get("ohlc") if isinstance(data, Mapping) else None
        if not isinstance(rows, list):
            raise ProtocolError("ohlc: no data.ohlc list in the reply", exchange=self.name)
        return rows

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
        return ohlc_table(_s_to_ns(cols["timestamp"]), cols["open"], cols["high"], cols["low"],
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
        items = await self.http.get_json(
            f"/api/v2/transactions/{market.native}/", {"time": "day"}, check=_pair_check
        )
        if not isinstance(items, list):
            raise ProtocolError("transactions: expected a list", exchange=self.name)
        if not items:
            return empty_trades()
        sides = {"0": "buy", "1": "sell"}
        return trades_table(
            _s_to_ns([str(it["date"]) for it in items]),
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
        return None if oldest is None else oldest * NS
