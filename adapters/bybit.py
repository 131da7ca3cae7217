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
import pyarrow.compute as pc

from dccd_cli.errors import (
    BannedError,
    DccdError,
    ExchangeError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    UnknownSymbolError,
)
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.net.headers import exchange_message
from dccd_cli.schema import empty_ohlc, ohlc_table

MS = 1_000_000

# Unified span -> Bybit ``interval`` [C]. D, W and M open at 00:00 UTC, weeks on Monday.
_INTERVALS = {
    "1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30",
    "1h": "60", "2h": "120", "4h": "240", "6h": "360", "12h": "720",
    "1d": "D", "1w": "W", "1M": "M",
}
_KLINE_CAP = 1000  # limit in [1, 1000] [C]

# A 403 blocks the IP for "at least 10 minutes" [C]; asking sooner would only extend it.
_BAN_S = 600.0
# retCodes (Bybit's error table, as ccxt maps it): 10006 "Too many visits!", 10018 "exceed ip
# rate limit"; 10001 parameter errors ("Not supported symbols", "Invalid period!"); 10000 /
# 5004 "Server Timeout" and 10016 "System error. Please try again later": worth a retry.
_RATE_LIMITED = {10006, 10018}
_BAD_REQUEST = 10001
_SERVER_SIDE = {5004, 10000, 10016}


def _ceil_ms(ns: int) -> int:
    return -(-ns // MS)


def _retry_after(headers: Mapping[str, str], body: Mapping[str, Any]) -> float | None:
    """Seconds until ``X-Bapi-Limit-Reset-Timestamp`` (ms), on the clock of the reply's own
    ``time`` field, so our clock's error does not enter."""
    try:
        reset_ms = float(headers.get("x-bapi-limit-reset-timestamp") or "")
        now_ms = float(body.get("time") or "")
    except ValueError:
        return None
    return max(0.0, (reset_ms - now_ms) / 1000)


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

    @staticmethod
    def check(status: int, headers: Mapping[str, str], body: Any) -> DccdError | None:
        """Bybit's errors arrive inside HTTP 200, e.g. ``{"retCode":10001,"retMsg":"Not
        supported symbols","result":{},"retExtInfo":{},"time":1726147060461}``."""
        if status == 403:
            return BannedError(
                "bybit refuses this IP (HTTP 403): more than 600 requests in 5 s block it for "
                "at least 10 minutes (Bybit also answers 403 to IPs from regions it does not "
                "serve)",
                retry_after=_BAN_S,
            )
        if not isinstance(body, Mapping) or "retCode" not in body:
            return None  # 429 ("system level frequency protection"), 5xx pages: generic rules
        try:
            code = int(body["retCode"])
        except (TypeError, ValueError):
            return None
        if code == 0:
            return None
        message = exchange_message(body, "")
        if code in _RATE_LIMITED:
            return RateLimitedError(f"rate limited: {message}",
                                    retry_after=_retry_after(headers, body))
        if code == _BAD_REQUEST and "symbol" in str(body.get("retMsg", "")).lower():
            return UnknownSymbolError(f"bybit: {message}")
        if code in _SERVER_SIDE:
            return ServerError(f"server error: {message}")
        return ExchangeError(message)  # "Invalid period!" and every other refusal

    async def _result(self, path: str, params: dict[str, Any]) -> Mapping[str, Any]:
        body = await self.http.get_json(path, params)
        result = body.get("result") if isinstance(body, Mapping) else None
        if not isinstance(result, Mapping) or not isinstance(result.get("list"), list):
            raise ProtocolError(f"{path}: no result.list in the reply", exchange=self.name)
        return result

    async def load_markets(self) -> list[Market]:
        """Spot instruments, e.g. ``{"symbol":"BTCUSDT","baseCoin":"BTC","quoteCoin":"USDT",
        "status":"Trading",...}``. Spot ignores the cursor today; it is followed anyway."""
        out: list[Market] = []
        params: dict[str, Any] = {"category": "spot"}
        for _ in range(100):  # bounded: a server repeating its cursor must not loop for ever
            result = await self._result("/v5/market/instruments-info", params)
            for item in result["list"]:
                base, quote = str(item["baseCoin"]).upper(), str(item["quoteCoin"]).upper()
                out.append(Market(symbol=f"{base}-{quote}", native=item["symbol"], base=base,
                                  quote=quote, extra={"status": item.get("status")}))
            cursor = result.get("nextPageCursor")
            if not cursor or cursor == params.get("cursor"):
                break
            params = {"category": "spot", "cursor": cursor}
        return out

    async def _klines(self, market: Market, interval: str, **params: Any) -> list[list[str]]:
        result = await self._result("/v5/market/kline", {
            "category": "spot", "symbol": market.native, "interval": interval, **params,
        })
        return result["list"]  # type: ignore[no-any-return]

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
            start=_ceil_ms(start_ns), end=_ceil_ms(end_ns) - 1, limit=min(limit, _KLINE_CAP),
        )
        if not rows:
            return empty_ohlc()
        rows.reverse()  # oldest first
        cols = list(zip(*rows, strict=False))
        ts = pc.multiply(pc.cast(pa.array(cols[0], pa.string()), pa.int64()), MS)
        return ohlc_table(ts, cols[1], cols[2], cols[3], cols[4], cols[5], quote_volume=cols[6])

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        """The open of the oldest monthly candle: one request, since 1000 months reach
        back past Bybit's founding. A month early at worst; earlier windows come back empty."""
        rows = await self._klines(market, _INTERVALS["1M"], limit=_KLINE_CAP)
        return min(int(r[0]) for r in rows) * MS if rows else None
