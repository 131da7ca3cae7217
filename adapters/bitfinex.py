"""Bitfinex v2: ``/v2/candles/trade:{TF}:{SYM}/hist`` for OHLC, ``/v2/trades/{SYM}/hist``.

Facts (docs/exchanges.md#bitfinex): times in ms; ``start`` is ``MTS >= start``, ``end``
inclusive [B], ``sort=1`` oldest first (the default is newest first); candle rows
``[MTS, OPEN, CLOSE, HIGH, LOW, VOLUME]`` (close before high and low), trade rows
``[ID, MTS, AMOUNT, PRICE]`` where a negative amount is a sell. Per IP: candles 30
requests/min (another version of the page says 90), trades 15/min; over it, HTTP 429
``["error",11010,"ratelimit: error"]`` and the IP is blocked for about a minute. Errors are
arrays ``["error", code, "msg"]``, usually with HTTP 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import DccdError, ExchangeError, ProtocolError
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.exchange.markets import SYMBOL_RE
from dccd_cli.exchange.replies import ErrorTable
from dccd_cli.exchange.rows import columns, ms_column
from dccd_cli.schema import empty_ohlc, empty_trades, ohlc_table, require_on_span_grid, trades_table
from dccd_cli.timeutil import MS, Span, ceil_ms, format_ns, ms_to_ns

if TYPE_CHECKING:
    from dccd_cli.net.client import AsyncHTTPClient

log = logging.getLogger("dccd.adapters.bitfinex")

_TIMEFRAMES = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "3h": "3h",
               "6h": "6h", "12h": "12h", "1d": "1D", "1w": "1W", "14d": "14D", "1M": "1M"}
# The documented maximum `limit` of both endpoints [B: ccxt; Bitfinex's candles page]. An
# older note measured 1000, above which Bitfinex answered 500 "limit: invalid": if it ever
# does, this adapter falls back to _FALLBACK_LIMIT and pages within the window itself.
_MAX_LIMIT = 10_000
_FALLBACK_LIMIT = 1_000
# One bucket per exchange, two documented budgets: candles 30/min, trades 15/min. Against a
# 30/min bucket a trades request weighs 2, so each kind alone stays inside its own limit
# and a mix of both is paced conservatively. (The 90/min version of the candles page is
# not relied on.)
_CANDLES_WEIGHT = 1
_TRADES_WEIGHT = 2
_BLOCK_S = 60.0  # a rate-limited IP is blocked for 10-60 s [B]: wait the whole minute
_MAINTENANCE_S = 30.0
# Bitfinex's own short codes for currencies that are known elsewhere by their usual ticker.
_ALIASES = {"UST": "USDT", "UDC": "USDC", "TSD": "TUSD", "DSH": "DASH", "IOT": "IOTA",
            "QTM": "QTUM", "MNA": "MANA", "ATO": "ATOM", "ALG": "ALGO", "STJ": "STORJ"}


class _Errors(ErrorTable):
    """``["error", 11010, "ratelimit: error"]`` and friends, whatever the HTTP status, and
    the ``{"error": "ERR_RATE_LIMIT"}`` of older replies."""

    def read(self, body: Any) -> tuple[Any, str] | None:
        if isinstance(body, list) and len(body) >= 3 and body[0] == "error":
            return body[1], str(body[2])
        if isinstance(body, Mapping) and body.get("error"):
            return None, str(body["error"])
        return None


_ERRORS = _Errors(
    rate_limited=ErrorTable.codes(11010), rate_limited_words=("ratelimit", "rate_limit"),
    rate_limit_wait=_BLOCK_S,
    server=ErrorTable.codes(20060), server_words=("maintenance",), server_wait=_MAINTENANCE_S,
    refused=ErrorTable.codes(10020),  # bad input: symbol, time frame, limit
)


class BitfinexAdapter(Adapter):
    name = "bitfinex"
    title = "Bitfinex"
    default_base_url = "https://api-pub.bitfinex.com"
    rate_limit = RateLimit(capacity=30, window_s=60)
    ohlc = Capability(
        kind="ohlc", max_per_request=_MAX_LIMIT, page_direction="forward",
        weight=_CANDLES_WEIGHT, spans=_TIMEFRAMES,
    )
    trades = Capability(
        kind="trades", max_per_request=_MAX_LIMIT, page_direction="forward", weight=_TRADES_WEIGHT,
    )

    def __init__(self, http: AsyncHTTPClient) -> None:
        super().__init__(http)
        # The largest `limit` each endpoint has accepted so far (see _MAX_LIMIT).
        self._limit = {"candles": _MAX_LIMIT, "trades": _MAX_LIMIT}

    errors = _ERRORS

    async def server_time_ns(self) -> int | None:
        """Bitfinex has no time endpoint: the ``Date`` header of ``/v2/platform/status``
        (``[1]`` when operative), or of its error reply, is its clock."""
        try:
            await self.http.get_json("/v2/platform/status")
        except DccdError:
            pass
        return self.http.server_time_ns()

    async def load_markets(self) -> list[Market]:
        """Parse ``/v2/conf/pub:list:pair:exchange``, e.g. ``[["BTCUSD", "BTCUST",
        "TESTBTC:TESTUSD", ...]]``: 3+3 letters, or base and quote split on ':'."""
        body = await self.http.get_json("/v2/conf/pub:list:pair:exchange")
        if not (isinstance(body, list) and body and isinstance(body[0], list)):
            raise ProtocolError("conf pub:list:pair:exchange: expected [[pairs]]",
                                exchange=self.name)
        out: dict[str, Market] = {}
        for pair in body[0]:
            pair = str(pair).upper()
            if ":" in pair:
                base, _, quote = pair.partition(":")
            elif len(pair) == 6:
                base, quote = pair[:3], pair[3:]
            else:
                continue
            base, quote = _ALIASES.get(base, base), _ALIASES.get(quote, quote)
            symbol = f"{base}-{quote}"
            if SYMBOL_RE.match(symbol) and symbol not in out:
                out[symbol] = Market(symbol=symbol, native=f"t{pair}", base=base, quote=quote)
        return list(out.values())

    async def _rows(self, endpoint: str, path: str, params: dict[str, Any], weight: int) -> Any:
        """GET, falling back once to the older 1000 cap if Bitfinex says "limit: invalid"."""
        while True:
            params["limit"] = min(params["limit"], self._limit[endpoint])
            try:
                return await self.http.get_json(path, params, weight=weight)
            except ExchangeError as exc:
                if "limit: invalid" not in exc.args[0] or params["limit"] <= _FALLBACK_LIMIT:
                    raise
                log.warning("bitfinex refused limit=%s on %s; using %s", params["limit"],
                            endpoint, _FALLBACK_LIMIT)
                self._limit[endpoint] = _FALLBACK_LIMIT

    async def fetch_ohlc_page(
        self, market: Market, span: str, start_ns: int, end_ns: int, limit: int
    ) -> pa.Table:
        """Parse candle rows, e.g. ``[1574698260000, 7379.785503, 7383.8, 7388.3,
        7379.785503, 1.68829482]`` (MTS, OPEN, CLOSE, HIGH, LOW, VOLUME).

        Bitfinex leaves out intervals without trades, so a short page says nothing about
        whether the window is done: when the page cap is below the window's bars, pages
        are chained here until one comes back short.
        """
        path = f"/v2/candles/trade:{_TIMEFRAMES[span]}:{market.native}/hist"
        rows: list[list[Any]] = []
        lo, remaining = ceil_ms(start_ns), limit
        while remaining > 0:
            params = {"start": lo, "end": ceil_ms(end_ns), "limit": remaining, "sort": 1}
            page = await self._rows("candles", path, params, _CANDLES_WEIGHT)
            if not isinstance(page, list):
                raise ProtocolError(f"candles: expected a list, got {type(page).__name__}",
                                    exchange=self.name)
            rows.extend(page)
            remaining -= len(page)
            if len(page) < params["limit"]:
                break
            lo = int(page[-1][0]) + 1
        if not rows:
            return empty_ohlc()
        mts, open_, close, high, low, volume = columns(rows, 6, "candles", exchange=self.name)
        ts = ms_column(mts)
        require_on_span_grid(ts, Span.parse(span), exchange=self.name, what="candles")
        return ohlc_table(ts, open_, high, low, close, volume)

    async def fetch_trades_page(
        self, market: Market, start_ns: int, end_ns: int, limit: int, cursor: Any
    ) -> tuple[pa.Table, Any]:
        """Parse trade rows, e.g. ``[401597393, 1574694475039, 0.005, 7244.9]`` (ID, MTS,
        AMOUNT, PRICE; the amount's sign is the taker's side — negative sold — stored positive).

        The cursor is the newest row's MTS and the next page starts *at* it, never after:
        many trades share a millisecond, and the core drops the repeated ones by id.
        """
        lo = start_ns // MS if cursor is None else int(cursor)
        params = {"start": lo, "end": ceil_ms(end_ns), "limit": limit, "sort": 1}
        rows = await self._rows("trades", f"/v2/trades/{market.native}/hist", params,
                                _TRADES_WEIGHT)
        if not isinstance(rows, list):
            raise ProtocolError(f"trades: expected a list, got {type(rows).__name__}",
                                exchange=self.name)
        if not rows:
            return empty_trades(), None
        ids, mts, amount, price = columns(rows, 4, "trades", exchange=self.name)
        amounts = pa.array(amount, pa.float64())
        sides = pc.if_else(pc.less(amounts, 0), "sell", "buy")
        table = trades_table(ms_column(mts), ids, price,
                             pc.abs(amounts), sides)
        newest = int(mts[-1])
        # Bounded by `end`, so a short page is the whole rest of the window.
        if len(rows) < params["limit"] or newest * MS >= end_ns:
            return table, None
        if newest <= lo:
            raise ProtocolError(f"trades: more than {len(rows)} trades share the millisecond "
                                f"{newest} ({format_ns(newest * MS)}); cannot page past it",
                                exchange=self.name)
        return table, newest

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        """The oldest candle or trade: ``sort=1&limit=1`` from ``start=0``, one request."""
        params = {"start": 0, "limit": 1, "sort": 1}
        if kind == "ohlc":
            path = f"/v2/candles/trade:{_TIMEFRAMES[span or '1d']}:{market.native}/hist"
            rows = await self.http.get_json(path, params, weight=_CANDLES_WEIGHT)
            return ms_to_ns(rows[0][0]) if rows else None
        rows = await self.http.get_json(f"/v2/trades/{market.native}/hist", params,
                                        weight=_TRADES_WEIGHT)
        return ms_to_ns(rows[0][1]) if rows else None
