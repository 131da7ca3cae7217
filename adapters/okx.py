"""OKX spot: ``/api/v5/market/history-candles`` for OHLC, ``/api/v5/market/history-trades``
for trades (the last three months only).

Facts (docs/exchanges.md#okx, docs/ccxt.md#okx): every reply is
``{"code":"0","msg":"","data":[...]}`` with all values strings and times in ms. Both
endpoints page newest first with exclusive bounds: ``after`` = records earlier than,
``before`` = records newer than. 20 requests per 2 s per IP, no usage headers. Errors carry
a non-zero ``code``, often inside HTTP 200: ``50011`` rate limit (also as HTTP 429),
``51001`` unknown instrument, ``51000`` bad parameter.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import ExchangeError, ProtocolError
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.exchange.listing import MarketFields
from dccd_cli.exchange.replies import Envelope, ErrorTable
from dccd_cli.exchange.rows import ms_column
from dccd_cli.schema import empty_ohlc, empty_trades, ohlc_table, trades_table
from dccd_cli.timeutil import DAY_NS, ceil_ms, ms_to_ns

# Unified span -> OKX ``bar``. From 6h up OKX offers two grids: Hong Kong time (``6H``,
# ``1D``...) and UTC (``6Hutc``, ``1Dutc``...); our spans are UTC-aligned, so the ``utc``
# codes. Left out on purpose: ``1s`` (served for the last 3 months only, while recent-only
# history is declared per data kind, not per span), ``2Dutc``/``3Dutc``/``3Mutc`` (their
# grid anchor is undocumented; bars off our grid would be misplaced).
_BARS = {
    "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m",
    "1h": "1H", "2h": "2H", "4h": "4H",
    "6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc", "1w": "1Wutc", "1M": "1Mutc",
}

# history-candles: the current docs allow 300 rows a request [C], the older docs and some
# SDKs 100. We declare 300 (3x fewer requests against a 20 req/2 s budget) and guard against
# a venue still capped at 100: pages are anchored at ``after`` (the window's end), so a
# capped page would be the window's *newest* 100 bars, which the core cannot tell from a
# quiet start of the window. ``fetch_ohlc_page`` therefore continues below a page of
# exactly 100 rows when it asked for more — one extra, empty request at worst.
_CANDLE_CAP = 300
_LEGACY_CANDLE_CAP = 100
_TRADE_CAP = 100  # history-trades: max and default 100 [C]

_WINDOW_S = 2.0  # OKX counts requests in 2 s windows: after a 429 the next window is clean
# OKX error codes (docs/exchanges.md#okx; OKX's public error table as ccxt maps it), in any
# HTTP status; code "0" (or none: 5xx pages and the like) is not OKX's error.
_ERRORS = ErrorTable(
    code="code", message=("msg",), ok=ErrorTable.codes(0),
    rate_limited=ErrorTable.codes(50011),  # "Too Many Requests", also as HTTP 429
    unknown_symbol=ErrorTable.codes(51001),  # "Instrument ID does not exist"
    # Worth a retry: 50001 upgrading, 50004 endpoint timeout, 50005 API offline, 50013
    # busy, 50026 "System error, please try again later".
    server=ErrorTable.codes(50001, 50004, 50005, 50013, 50026),
    unlisted=ExchangeError,  # 51000 "Parameter bar error" and every other refusal
    rate_limit_wait=_WINDOW_S,
)
_DATA = Envelope("data")


class OkxAdapter(Adapter):
    name = "okx"
    title = "OKX (spot)"
    default_base_url = "https://www.okx.com"
    rate_limit = RateLimit(capacity=20, window_s=2)  # per IP, both endpoints [C]
    ohlc = Capability(
        kind="ohlc", max_per_request=_CANDLE_CAP, page_direction="backward", spans=_BARS,
    )
    trades = Capability(
        kind="trades", max_per_request=_TRADE_CAP, page_direction="backward",
        history="recent",
        # "The last 3 months" [C]: 89 days is the shortest three months (Feb-Apr), so a start
        # clamped to it never falls in a day OKX has already dropped — which would be
        # recorded as a quiet market, not as a gap.
        recent_ns=89 * DAY_NS,
        note=(
            "OKX serves trades over REST for the last 3 months (dccd asks for 89 days, the "
            "shortest three months, so as never to record a dropped day as a quiet one); older trades are "
            "published as daily files on OKX's historical market data download page, which dccd "
            "does not read yet."
        ),
    )

    errors = _ERRORS
    # Spot instruments, e.g. ``{"instType":"SPOT","instId":"BTC-USDT","baseCcy":"BTC",
    # "quoteCcy":"USDT","listTime":"1548133413000","state":"live",...}`` in ``data``.
    market_fields = MarketFields(
        endpoint="/api/v5/public/instruments", rows="data", params={"instType": "SPOT"},
        native="instId", base="baseCcy", quote="quoteCcy", listed="listTime", extra=("state",),
    )

    async def _data(self, path: str, params: dict[str, Any]) -> list[Any]:
        return await self.get_rows(path, params, _DATA)

    async def fetch_ohlc_page(
        self, market: Market, span: str, start_ns: int, end_ns: int, limit: int
    ) -> pa.Table:
        """Parse history-candles rows, newest first, e.g. ``["1597026383085", "3.721",
        "3.743", "3.677", "3.708", "8422410", "22698348.04828491", "12698348.04828491",
        "1"]`` (ts, O, H, L, C, vol, volCcy, volCcyQuote, confirm). For spot ``vol`` is in
        the base currency and ``volCcyQuote`` in the quote currency. ``confirm`` "0" marks
        the bar still forming: kept, because the core decides by the exchange's clock what
        is unfinished (and keeps it when asked to).
        """
        bar = _BARS[span]
        # Exclusive bounds: ``after`` = bars opening before the window's end, ``before`` =
        # bars opening at or after its start (ccxt sends ``before=since-1`` likewise).
        before = ceil_ms(start_ns) - 1
        after = ceil_ms(end_ns)
        rows: list[list[str]] = []
        want = min(limit, _CANDLE_CAP)
        while True:
            page = await self._data("/api/v5/market/history-candles", {
                "instId": market.native, "bar": bar,
                "after": after, "before": before, "limit": want,
            })
            rows.extend(page)
            # A page shorter than asked is the whole rest of the window — unless it is
            # exactly the legacy cap while more was asked (see _CANDLE_CAP).
            if len(page) != _LEGACY_CANDLE_CAP or want <= _LEGACY_CANDLE_CAP:
                break
            want -= len(page)
            after = min(int(r[0]) for r in page)
            if after <= before + 1:
                break
        if not rows:
            return empty_ohlc()
        rows.reverse()  # oldest first
        cols = list(zip(*rows, strict=False))
        width = min(len(r) for r in rows)
        # Rows of 9 (since 2022) carry volCcyQuote at 7; older rows of 7 end at volCcy,
        # which for spot is the quote-currency volume too.
        quote = cols[7] if width >= 9 else cols[6] if width >= 7 else None
        return ohlc_table(ms_column(cols[0]), cols[1], cols[2], cols[3], cols[4], cols[5],
                          quote_volume=quote)

    async def fetch_trades_page(
        self, market: Market, start_ns: int, end_ns: int, limit: int, cursor: Any
    ) -> tuple[pa.Table, Any]:
        """Parse history-trades items, newest first, e.g. ``{"instId": "BTC-USDT", "side":
        "sell", "sz": "0.00001", "source": "0", "px": "29963.2", "tradeId": "242720720",
        "ts": "1654161646974"}``; ``side`` is the taker's, ``sz`` in the base currency.

        The cursor walks from the window's end into the past: the first page is addressed
        by time (``type=2``, trades before the end), the next ones by trade id (``type=1``,
        ``after`` = the oldest id seen, exclusive). Ids are exact where timestamps are not —
        a page resumed by time would either repeat or drop the trades sharing its oldest
        millisecond, and loop for ever on a page of 100 trades of one millisecond.
        """
        page_limit = min(limit, _TRADE_CAP)
        params: dict[str, Any] = {"instId": market.native, "limit": page_limit}
        if cursor is None:
            params.update(type=2, after=ceil_ms(end_ns))
        else:
            params.update(type=1, after=cursor)
        items = await self._data("/api/v5/market/history-trades", params)
        if not items:
            return empty_trades(), None
        items.reverse()  # oldest first
        ts = ms_column([it["ts"] for it in items])
        table = trades_table(
            ts,
            [str(it["tradeId"]) for it in items],
            [it["px"] for it in items],
            [it["sz"] for it in items],
            [s if (s := str(it.get("side", "")).lower()) in ("buy", "sell") else None
             for it in items],
        )
        oldest_ns = pc.min(ts).as_py()
        # Drained once the page reaches before the window (ids and time run together), or
        # when OKX has nothing older (a short page: the end of its 3 months).
        if len(items) < page_limit or oldest_ns < start_ns:
            return table, None
        try:
            return table, min((str(it["tradeId"]) for it in items), key=int)
        except ValueError as exc:
            raise ProtocolError(f"history-trades: non-numeric tradeId ({exc})",
                                exchange=self.name) from exc

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        """The open of OKX's oldest monthly bar: one request (300 months reach back past
        OKX's founding). A month early at worst; the windows before the first bar come
        back empty. Trades are recent-only and the core clamps their start anyway."""
        rows = await self._data("/api/v5/market/history-candles", {
            "instId": market.native, "bar": _BARS["1M"], "limit": _CANDLE_CAP,
        })
        return min(ms_to_ns(r[0]) for r in rows) if rows else None
