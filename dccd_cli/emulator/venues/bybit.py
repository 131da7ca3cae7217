"""Bybit v5 public market data (``/v5/market``), as documented in bybit-exchange/docs.

Facts (``docs/exchanges.md#bybit``) are tagged [C] documented, [B] believed — every
[B] behaviour is a venue setting so it can change when the truth is known. One real row
of each response, from the docs::

    kline:        ["1670608800000", "17071", "17073", "17027", "17055.5", "268611",
                   "15.74462667"]
    recent-trade: {"execId": "2100000000007764263", "symbol": "BTCUSDT", "price": "16618.49",
                   "size": "0.00012", "side": "Buy", "time": "1672052955758",
                   "isBlockTrade": false, "isRPITrade": true, "seq": "123456"}

Every answer is ``{retCode, retMsg, result, retExtInfo, time}``; errors keep HTTP 200.
The synthetic market has spot pairs only: ``linear``/``inverse`` (the kline default)
know none of its symbols and answer "Not supported symbols". There is no REST trade
history: recent-trade has no time or cursor parameters [C].
"""

from __future__ import annotations

import asyncio
from typing import Any

from dccd_cli.emulator.bars import BarFrame, Bars
from dccd_cli.emulator.instruments import Instrument, plain_decimal, quote_e8
from dccd_cli.emulator.limiter import Verdict, WeightLimiter
from dccd_cli.emulator.market import MarketModel
from dccd_cli.emulator.trades import Trades
from dccd_cli.emulator.venue import Clock, Headers, Refused, Request, Response, Route, Venue, route
from dccd_cli.emulator.venues.query import QueryParams
from dccd_cli.timeutil import MS, Span

# [C] kline intervals: minutes as numbers, then day, week (Monday) and month.
INTERVALS: dict[str, Span] = {
    **{code: Span.parse(code + "m") for code in ("1", "3", "5", "15", "30")},
    **{code: Span.parse(f"{int(code) // 60}h") for code in ("60", "120", "240", "360", "720")},
    "D": Span.parse("1d"), "W": Span.parse("1w"), "M": Span.parse("1M"),
}
_CATEGORIES = ("spot", "linear", "inverse", "option")


class BybitError(Exception):
    """A refused request: ``retCode``/``retMsg`` inside HTTP 200."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _params(params: dict[str, list[str]]) -> QueryParams:
    """Query parameters; missing and malformed ones answer with the venue's error [B]."""
    return QueryParams(
        params,
        missing=lambda name: BybitError(10001, f"params error: {name} is required"),
        malformed=lambda name: BybitError(10001, f"params error: {name} invalid"),
        signed=True,
    )


class BybitVenue(Venue[BybitError]):
    """``/bybit/v5/market/{time, instruments-info, kline, recent-trade}``; symbols
    ``BASEQUOTE`` (upper case)."""

    name = "bybit"
    defaults: dict[str, Any] = {
        "ip_limit": 600,  # [C] requests per window per IP, all endpoints together
        "ip_window_s": 5,  # [C]
        "ip_ban_s": 600,  # [B] docs: "wait at least 10 minutes"; the real length is unknown
        "kline_contains_start": True,  # [B] the candle holding `start` is returned (ccxt)
        "kline_anchor": "end",  # [B] start+end spanning > limit: newest page ("end") or "start"
        "kline_start_only_anchor": "start",  # [B] start without end: from start (3rd party)
        "kline_limit_out_of_range": "clamp",  # [B] limit outside [1,1000]: "clamp" or "error"
        "trade_limit_out_of_range": "clamp",  # [B] spot limit outside [1,60]: same choices
        "empty_klines": "flat",  # [B] minutes without trades: "flat" candle or "omit"
        "error_http_status": 200,  # [B] retCode errors come inside HTTP 200
    }
    not_found = Response(404, b"", content_type="text/plain")  # [B]
    error_type = BybitError
    strict_limits = {"ip_limit": 3, "ip_window_s": 5, "ip_ban_s": 600}
    limit_reply_is_ban = True  # [C] 403 "access too frequent": wait at least 10 minutes

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        super().__init__(market, settings, clock)
        s = self.settings
        choices = {"kline_anchor": ("end", "start"), "kline_start_only_anchor": ("end", "start"),
                   "kline_limit_out_of_range": ("clamp", "error"),
                   "trade_limit_out_of_range": ("clamp", "error"),
                   "empty_klines": ("flat", "omit")}
        for key, allowed in choices.items():
            if s[key] not in allowed:
                raise ValueError(f"bybit {key} must be one of {allowed}")
        # ban_after=0: the first request over the limit blocks the IP for ip_ban_s [C].
        self.limiter = WeightLimiter(int(s["ip_limit"]), float(s["ip_window_s"]), ban_after=0,
                                     ban_s=float(s["ip_ban_s"]))
        self.symbols = {i.base + i.quote: i for i in market.instruments}

    def reset(self) -> None:
        self.limiter.reset()

    def admit(self, request: Request, matched: Route | None) -> Headers:
        if self.limiter.charge(request.client, 1).verdict is not Verdict.OK:
            # [C] HTTP 403 "access too frequent"; the IP stays blocked for a while.
            raise Refused(Response(403, b"access too frequent", content_type="text/plain"))
        return []

    def query(self, request: Request) -> QueryParams:
        return _params(request.params())

    def error_reply(self, exc: BybitError) -> Response:
        return Response.json({"retCode": exc.code, "retMsg": exc.msg, "result": {},
                              "retExtInfo": {}, "time": self.clock.now_ns() // MS},
                             int(self.settings["error_http_status"]))

    def envelope(self, result: Any) -> Any:
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                "time": self.clock.now_ns() // MS}

    def error_in_200(self) -> Any:
        return {"retCode": 10016, "retMsg": "Internal system error.", "result": {},
                "retExtInfo": {}}

    # -- helpers ----------------------------------------------------------------------

    def _category(self, p: QueryParams, default: str | None) -> str:
        category = p.get("category") or default
        if category is None:
            raise BybitError(10001, "params error: category is required")  # [B] wording
        if category not in _CATEGORIES:
            raise BybitError(10001, "params error: Illegal category")  # [B] wording
        return category

    def _symbol(self, p: QueryParams, category: str) -> Instrument:
        inst = self.symbols.get(p.required("symbol"))
        if category != "spot" or inst is None or \
                not self.market.is_listed(inst.symbol, self.clock.now_ns()):
            raise BybitError(10001, "Not supported symbols")  # [B] quoted by ccxt
        return inst

    def _limit(self, p: QueryParams, default: int, cap: int, setting: str) -> int:
        limit = p.integer("limit")
        if limit is None:
            return default
        if not 1 <= limit <= cap:
            if self.settings[setting] == "error":
                raise BybitError(10001, "params error: limit invalid")  # [B] wording
            return min(max(limit, 1), cap)
        return limit

    # -- endpoints --------------------------------------------------------------------

    @route("/v5/market/time")
    async def time(self, p: QueryParams) -> Any:
        now = self.clock.now_ns()
        return {"timeSecond": str(now // 1_000_000_000), "timeNano": str(now)}

    @route("/v5/market/instruments-info")
    async def instruments_info(self, p: QueryParams) -> Any:
        category = self._category(p, None)
        if category != "spot":
            return {"category": category, "list": [], "nextPageCursor": ""}
        now = self.clock.now_ns()
        wanted = p.get("symbol")
        out = []
        for name, i in self.symbols.items():
            if not self.market.is_listed(i.symbol, now) or wanted not in (None, name):
                continue
            lot = plain_decimal(i.lot_e8)
            out.append({
                "symbol": name, "baseCoin": i.base, "quoteCoin": i.quote, "innovation": "0",
                "status": "Trading", "marginTrading": "none", "stTag": "0",
                "lotSizeFilter": {"basePrecision": lot, "quotePrecision": "0.00000001",
                                  "minOrderQty": lot, "maxOrderQty": "9000",
                                  "minOrderAmt": "1", "maxOrderAmt": "2000000"},
                "priceFilter": {"tickSize": plain_decimal(i.tick_e8)},
                "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
            })
        return {"category": "spot", "list": out}

    @route("/v5/market/kline", data=True)
    async def kline(self, p: QueryParams) -> Any:
        category = self._category(p, "linear")  # [C] category defaults to linear
        inst = self._symbol(p, category)
        span = INTERVALS.get(p.required("interval"))
        if span is None:
            raise BybitError(10001, "Invalid period!")  # [B] third-party logs
        limit = self._limit(p, 200, 1000, "kline_limit_out_of_range")  # [C] default 200
        start, end = p.integer("start"), p.integer("end")
        now = self.clock.now_ns()
        frame = BarFrame(span, 0)
        lo = 0
        if start is not None:
            lo = start * MS
            if self.settings["kline_contains_start"]:
                lo = frame.floor(lo)
        hi = end * MS + 1 if end is not None else now + 1  # bars that open at or before end
        if start is not None and end is None:
            newest = self.settings["kline_start_only_anchor"] == "end"
        else:
            newest = start is None or self.settings["kline_anchor"] == "end"
        bars = await asyncio.to_thread(
            self.market.bars, inst.symbol, span, lo, hi, now, limit=limit, newest=newest,
            empty=self.settings["empty_klines"] == "flat")
        return {"symbol": p.required("symbol"), "category": category,
                "list": kline_rows(bars, inst)}

    @route("/v5/market/recent-trade", data=True)
    async def recent_trade(self, p: QueryParams) -> Any:
        category = self._category(p, None)  # [C] required here
        inst = self._symbol(p, category)
        limit = self._limit(p, 60, 60, "trade_limit_out_of_range")  # [C] spot 1-60, 60
        now = self.clock.now_ns()
        tr = await asyncio.to_thread(self.market.trades_window, inst.symbol, 0, now, limit, True)
        return {"category": category, "list": trade_items(tr, inst)}


def kline_rows(bars: Bars, inst: Instrument) -> list[list[str]]:
    """``[startTime, open, high, low, close, volume, turnover]`` newest first [C]; volume in
    base units, turnover in quote units; the still-forming candle is included."""
    t, lot = inst.tick_e8, inst.lot_e8
    cols = zip(bars.open_ns.tolist(), bars.open.tolist(), bars.high.tolist(),
               bars.low.tolist(), bars.close.tolist(), bars.volume.tolist(),
               bars.quote_volume.tolist(), strict=True)
    rows = [[str(o // MS), plain_decimal(op * t), plain_decimal(hi * t), plain_decimal(lo * t), plain_decimal(cl * t), plain_decimal(v * lot),
             plain_decimal(quote_e8(qv, t, lot))] for o, op, hi, lo, cl, v, qv in cols]
    rows.reverse()
    return rows


def trade_items(tr: Trades, inst: Instrument) -> list[dict[str, Any]]:
    """Recent trades newest first; ``side`` is the taker's, ``execId``/``seq`` the model's
    cumulative trade id."""
    t, lot = inst.tick_e8, inst.lot_e8
    name = inst.base + inst.quote
    cols = zip(tr.id.tolist(), tr.price.tolist(), tr.qty.tolist(), tr.ts_ns.tolist(),
               tr.buyer_maker.tolist(), strict=True)
    items = [{"execId": str(i), "symbol": name, "price": plain_decimal(p * t), "size": plain_decimal(q * lot),
              "side": "Sell" if m else "Buy", "time": str(ts // MS), "isBlockTrade": False,
              "isRPITrade": False, "seq": str(i)} for i, p, q, ts, m in cols]
    items.reverse()
    return items
