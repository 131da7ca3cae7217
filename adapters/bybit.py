"""Bybit v5, spot category: ``/v5/market/kline`` for OHLC; no trade history over REST.

Facts (docs/exchanges.md#bybit, docs/ccxt.md#bybit): ``category`` defaults to linear, so
every request sends ``category=spot``; times in ms; kline pages newest first, at most 1000
rows, the candle containing ``start`` included. Replies are ``{retCode, retMsg, result,
retExtInfo, time}`` and errors come inside HTTP 200 (``10001`` bad symbol or interval,
``10006`` too many visits). 600 requests per 5 s per IP; beyond it HTTP 403 "access too
frequent" blocks the IP for at least 10 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from dccd_cli.errors import BannedError, DccdError, ExchangeError
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.exchange.listing import MarketFields
from dccd_cli.exchange.replies import Envelope, ErrorTable, pick
from dccd_cli.exchange.rows import ms_column
from dccd_cli.schema import empty_ohlc, ohlc_table
from dccd_cli.timeutil import ceil_ms, ms_to_ns

# Unified span -> Bybit ``interval`` [C]. D, W and M open at 00:00 UTC, weeks on Monday.
_INTERVALS = {
    "1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30",
    "1h": "60", "2h": "120", "4h": "240", "6h": "360", "12h": "720",
    "1d": "D", "1w": "W", "1M": "M",
}
_KLINE_CAP = 1000  # limit in [1, 1000] [C]

# A 403 blocks the IP for "at least 10 minutes" [C]; asking sooner would only extend it.
_BAN_S = 600.0


def _retry_after(headers: Mapping[str, str], body: Any) -> float | None:
    """Seconds until ``X-Bapi-Limit-Reset-Timestamp`` (ms), on the clock of the reply's own
    ``time`` field, so our clock's error does not enter."""
    try:
        reset_ms = float(headers.get("x-bapi-limit-reset-timestamp") or "")
        now_ms = float(pick(body, "time") or "")
    except ValueError:
        return None
    return max(0.0, (reset_ms - now_ms) / 1000)


# retCodes (Bybit's error table, as ccxt maps it): 10006 "Too many visits!", 10018 "exceed ip
# rate limit"; 10001 parameter errors ("Not supported symbols", "Invalid period!"); 10000 /
# 5004 "Server Timeout" and 10016 "System error. Please try again later": worth a retry.
# Any other non-zero retCode is a refusal; one saying "symbol" (10001 "Not supported
# symbols") names a market Bybit does not have.
_ERRORS = ErrorTable(
    code="retCode", message=("retMsg",), ok=ErrorTable.codes(0),
    rate_limited=ErrorTable.codes(10006, 10018), server=ErrorTable.codes(5004, 10000, 10016),
    unknown_symbol_words=("symbol",), unlisted=ExchangeError, rate_limit_wait=_retry_after,
)
_ROWS = Envelope("result.list")


class BybitAdapter(Adapter):
    name = "bybit"
    title = "Bybit (spot)"
    default_base_url = "https://api.bybit.com"
    # 600 per 5 s per IP [C]. The bucket paces below it (95%, small burst): crossing it is
    # not a 429 but a 10-minute IP block.
    rate_limit = RateLimit(capacity=600, window_s=5)
    ohlc = Capability(
        kind="ohlc", max_per_request=_KLINE_CAP, page_direction="backward", spans=_INTERVALS,
    )
    trades = None
    unsupported = {
        "trades": (
            "Bybit has no trade history over REST (/v5/market/recent-trade returns only the "
            "latest 60 spot trades and takes no time or cursor); Bybit publishes past trades "
            "as daily archive files on its public data site (public.bybit.com), which dccd does "
            "not read yet"
        ),
    }

    errors = _ERRORS
    # Spot instruments, e.g. ``{"symbol":"BTCUSDT","baseCoin":"BTC","quoteCoin":"USDT",
    # "status":"Trading",...}`` in ``result.list``, paged by ``result.nextPageCursor``.
    market_fields = MarketFields(
        endpoint="/v5/market/instruments-info", rows="result.list", params={"category": "spot"},
        native="symbol", base="baseCoin", quote="quoteCoin", extra=("status",),
    )

    @classmethod
    def check(cls, status: int, headers: Mapping[str, str], body: Any) -> DccdError | None:
        """Bybit's errors arrive inside HTTP 200, e.g. ``{"retCode":10001,"retMsg":"Not
        supported symbols","result":{},"retExtInfo":{},"time":1726147060461}``; an HTTP
        403 is the IP block."""
        if status == 403:
            return BannedError(
                "bybit refuses this IP (HTTP 403): more than 600 requests in 5 s block it for "
                "at least 10 minutes (Bybit also answers 403 to IPs from regions it does not "
                "serve)",
                retry_after=_BAN_S,
            )
        return super().check(status, headers, body)

    async def load_markets(self) -> list[Market]:
        """The declared market list, following ``nextPageCursor`` (spot ignores the cursor
        today; it is followed anyway)."""
        fields = self.market_fields
        out: list[Market] = []
        params: dict[str, Any] = dict(fields.params)
        for _ in range(100):  # bounded: a server repeating its cursor must not loop for ever
            body = await self.http.get_json(fields.endpoint, params)
            out += fields.markets(fields.envelope.unwrap(body, what=fields.endpoint,
                                                         exchange=self.name))
            cursor = pick(body, "result.nextPageCursor")
            if not cursor or cursor == params.get("cursor"):
                break
            params = {**fields.params, "cursor": cursor}
        return out

    async def _klines(self, market: Market, interval: str, **params: Any) -> list[Any]:
        return await self.get_rows("/v5/market/kline", {
            "category": "spot", "symbol": market.native, "interval": interval, **params,
        }, _ROWS)

    async def fetch_ohlc_page(
        self, market: Market, span: str, start_ns: int, end_ns: int, limit: int
    ) -> pa.Table:
        """Parse kline rows, newest first, e.g. ``["1670608800000", "17071", "17073",
        "17027", "17055.5", "268611", "15.74462667"]`` (start, O, H, L, C, volume,
        turnover). For spot ``volume`` is in the base coin and ``turnover`` in the quote
        coin (the docs' example is an inverse contract, where the two swap roles). The
        candle still forming is included: the core decides by the exchange's clock.

        ``start`` and ``end`` are both sent and the window never holds more than ``limit``
        bars, so it does not matter that an over-full range would be answered with its
        newest bars [B]. ``end`` is the window's last millisecond: the candle containing it
        is the window's last bar, whether Bybit reads ``end`` as inclusive or containing.
        """
        rows = await self._klines(
            market, _INTERVALS[span],
            start=ceil_ms(start_ns), end=ceil_ms(end_ns) - 1, limit=min(limit, _KLINE_CAP),
        )
        if not rows:
            return empty_ohlc()
        rows.reverse()  # oldest first
        cols = list(zip(*rows, strict=False))
        return ohlc_table(ms_column(cols[0]), cols[1], cols[2], cols[3], cols[4], cols[5], quote_volume=cols[6])

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        """The open of the oldest monthly candle: one request, since 1000 months reach
        back past Bybit's founding. A month early at worst; earlier windows come back empty."""
        rows = await self._klines(market, _INTERVALS["1M"], limit=_KLINE_CAP)
        return min(ms_to_ns(r[0]) for r in rows) if rows else None
