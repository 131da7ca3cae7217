"""Binance spot public market data (``/api/v3``), as documented in binance-spot-api-docs.

Facts (``docs/exchanges.md#binance``) are tagged [C] documented (rest-api.md, errors.md,
CHANGELOG.md), [B] believed — every [B] behaviour is a venue setting so it can change
when the truth is known. One real row of each response, from the docs::

    klines:           [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100",
                       "148976.11427815", 1499644799999, "2434.19055334", 308,
                       "1756.87402397", "28.46694368", "0"]
    aggTrades:        {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781,
                       "l": 27781, "T": 1498793709153, "m": true, "M": true}
    historicalTrades: {"id": 28457, "price": "4.00000100", "qty": "12.00000000",
                       "quoteQty": "48.000012", "time": 1499865549590,
                       "isBuyerMaker": true, "isBestMatch": true}
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from dccd_cli.emulator.instruments import Instrument
from dccd_cli.emulator.limiter import Verdict, WeightLimiter
from dccd_cli.emulator.market import MarketModel
from dccd_cli.emulator.venue import Clock, Headers, Refused, Request, Response, Route, Venue, route
from dccd_cli.emulator.venues import binance_format as fmt
from dccd_cli.emulator.venues.binance_format import BinanceError, ParamReader
from dccd_cli.timeutil import MS, Span

# [C] rest-api.md "Kline/Candlestick data": the 16 case-sensitive intervals.
INTERVALS: dict[str, Span] = {code: Span.parse(code) for code in (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
    "1d", "3d", "1w", "1M")}
# [C] request weights (rest-api.md, current docs).
WEIGHTS = {"/api/v3/ping": 1, "/api/v3/time": 1, "/api/v3/exchangeInfo": 20,
           "/api/v3/klines": 2, "/api/v3/uiKlines": 2, "/api/v3/aggTrades": 4,
           "/api/v3/trades": 25, "/api/v3/historicalTrades": 25}


class BinanceVenue(Venue[BinanceError]):
    """``/binance/api/v3/{ping,time,exchangeInfo,klines,uiKlines,aggTrades,trades,
    historicalTrades}`` over the shared market; native symbols are ``BASE+QUOTE``."""

    name = "binance"
    defaults: dict[str, Any] = {
        "weight_limit": 6000,  # [C] REQUEST_WEIGHT per window
        "window_s": 60,  # [C] 1 MINUTE
        "ban_after": 3,  # rejected (429) requests tolerated per window before a ban [B]
        "ban_s": 120,  # [C] bans last from 2 minutes (first offence) up to 3 days
        "empty_klines": "flat",  # [B] "flat": zero-volume bar at the previous close; "omit"
        "limit_over_max": "error",  # [B] limit > 1000: "error" (-1130) or "clamp"
        "aggtrades_fromid_with_time": "error",  # [B] "error" (-1128) or "fromid" (ignore time)
        "aggtrades_max_window_ms": None,  # [C] None since 2022; 3600000 = pre-2022 rule
    }
    # [B] unknown endpoint: 404, no body worth parsing.
    not_found = Response(404, b"", content_type="text/html")
    error_type = BinanceError
    strict_limits = {"weight_limit": 25, "window_s": 2, "ban_after": 1000}

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        super().__init__(market, settings, clock)
        s = self.settings
        if s["empty_klines"] not in ("flat", "omit"):
            raise ValueError("binance empty_klines must be 'flat' or 'omit'")
        self.limiter = WeightLimiter(int(s["weight_limit"]), float(s["window_s"]),
                                     ban_after=s["ban_after"], ban_s=float(s["ban_s"]))
        self.symbols: dict[str, Instrument] = {
            i.base + i.quote: i for i in market.instruments}

    def reset(self) -> None:
        self.limiter.reset()

    def error_in_200(self) -> Any:
        """The body of the ``error200`` fault (:mod:`..faults`): Binance's error object
        where a list was expected — seen in the wild behind misbehaving proxies."""
        return fmt.limited_body(int(self.settings["weight_limit"]), self.settings["window_s"])

    # -- plumbing ---------------------------------------------------------------------

    def _weight_header(self) -> str:
        # [C] X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter), named after the window.
        w = float(self.settings["window_s"])
        if w % 86400 == 0:
            return f"X-MBX-USED-WEIGHT-{int(w // 86400)}D"
        if w % 3600 == 0:
            return f"X-MBX-USED-WEIGHT-{int(w // 3600)}H"
        if w % 60 == 0:
            return f"X-MBX-USED-WEIGHT-{int(w // 60)}M"
        return f"X-MBX-USED-WEIGHT-{math.ceil(w)}S"

    def admit(self, request: Request, matched: Route | None) -> Headers:
        assert matched is not None
        decision = self.limiter.charge(request.client, WEIGHTS[matched.pattern])
        used = [(self._weight_header(), str(decision.used)),
                ("X-MBX-USED-WEIGHT", str(decision.used))]
        if decision.verdict is Verdict.BANNED:
            until_ms = (self.clock.now_ns() // MS) + decision.retry_after_s * 1000
            raise Refused(Response.json(fmt.banned_body(until_ms), 418,
                                        used + [("Retry-After", str(decision.retry_after_s))]))
        if decision.verdict is Verdict.LIMITED:
            body = fmt.limited_body(self.limiter.limit, self.settings["window_s"])
            raise Refused(Response.json(
                body, 429, used + [("Retry-After", str(decision.retry_after_s))]))
        return used

    def query(self, request: Request) -> ParamReader:
        return ParamReader(request.params())

    def error_reply(self, exc: BinanceError) -> Response:
        return Response.json({"code": exc.code, "msg": exc.msg}, exc.status)

    def _symbol(self, p: ParamReader) -> Instrument:
        name = p.symbol()
        inst = self.symbols.get(name)
        # A symbol whose listing is still in the future (fixed 'now') does not exist yet.
        if inst is None or not self.market.is_listed(inst.symbol, self.clock.now_ns()):
            raise BinanceError(-1121, "Invalid symbol.")  # [C] errors.md
        return inst

    def _limit(self, p: ParamReader) -> int:
        limit = p.integer("limit")
        if limit is None:
            return 500  # [C] default 500
        if limit > 1000 and self.settings["limit_over_max"] == "clamp":
            return 1000
        if not 1 <= limit <= 1000:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        return limit

    # -- endpoints --------------------------------------------------------------------

    @route("/api/v3/ping")
    async def ping(self, p: ParamReader) -> Any:
        return {}

    @route("/api/v3/time")
    async def time(self, p: ParamReader) -> Any:
        return {"serverTime": self.clock.now_ns() // MS}

    @route("/api/v3/exchangeInfo")
    async def exchange_info(self, p: ParamReader) -> Any:
        wanted = p.symbol_list()
        now = self.clock.now_ns()
        listed = {name: inst for name, inst in self.symbols.items()
                  if self.market.is_listed(inst.symbol, now)}
        if wanted is not None:
            for name in wanted:
                if name not in listed:
                    raise BinanceError(-1121, "Invalid symbol.")  # [C] rest-api.md notes
            listed = {name: listed[name] for name in dict.fromkeys(wanted)}
        # [B] a symbol in a maintenance window shows status BREAK (enums.md lists it).
        insts = [(inst, "TRADING" if self.market.is_live(inst.symbol, now) else "BREAK")
                 for inst in listed.values()]
        return fmt.exchange_info(insts, now // MS, self.settings)

    # [B] uiKlines "modified for presentation" is undocumented: served as klines.
    @route("/api/v3/klines", "/api/v3/uiKlines", data=True)
    async def klines(self, p: ParamReader) -> Any:
        inst = self._symbol(p)
        code = p.required("interval")
        span = INTERVALS.get(code)
        if span is None:
            raise BinanceError(-1120, "Invalid interval.")  # [C]
        start, end = p.time("startTime"), p.time("endTime")
        offset = p.time_zone()
        limit = self._limit(p)
        now = self.clock.now_ns()
        if start is not None and end is not None and start > end:
            return []  # [B]
        # [C] general rule: start only / both -> oldest from start; end only / none ->
        # newest up to end (or now). Klines are identified by open time; bounds inclusive.
        lo = start if start is not None else 0
        hi = end + MS if end is not None else now + 1
        flat = self.settings["empty_klines"] == "flat"
        bars = await asyncio.to_thread(
            self.market.bars, inst.symbol, span, lo, hi, now, limit=limit,
            newest=start is None, empty=flat, offset_ns=offset)
        return fmt.kline_rows(bars, inst)

    @route("/api/v3/aggTrades", data=True)
    async def agg_trades(self, p: ParamReader) -> Any:
        inst = self._symbol(p)
        from_id = p.integer("fromId")
        start, end = p.time("startTime"), p.time("endTime")
        limit = self._limit(p)
        now = self.clock.now_ns()
        if from_id is not None and (start is not None or end is not None):
            if self.settings["aggtrades_fromid_with_time"] == "error":
                raise BinanceError(-1128, "Combination of optional parameters invalid.")
            start = end = None
        cap = self.settings["aggtrades_max_window_ms"]
        if cap is not None and start is not None and end is not None and end - start > cap * MS:
            hours = cap // 3_600_000
            raise BinanceError(-1127, f"More than {hours} hours between startTime and endTime.")
        if from_id is not None:
            agg = await asyncio.to_thread(self.market.agg_trades_from_id, inst.symbol,
                                          from_id, limit, now)
        else:
            if start is not None and end is not None and start > end:
                return []  # [B]
            lo = start if start is not None else 0
            hi = min(end + MS if end is not None else now, now)
            # [C] CHANGELOG 2022: start only -> from start; end only -> before end;
            # both -> oldest items (2022-05-17); none -> the most recent.
            agg = await asyncio.to_thread(self.market.agg_trades, inst.symbol, lo, hi, limit,
                                          start is None)
        return fmt.agg_trade_items(agg, inst)

    @route("/api/v3/trades", data=True)
    async def recent_trades(self, p: ParamReader) -> Any:
        inst = self._symbol(p)
        limit = self._limit(p)
        now = self.clock.now_ns()
        tr = await asyncio.to_thread(self.market.trades_window, inst.symbol, 0, now, limit, True)
        return fmt.trade_items(tr, inst)

    @route("/api/v3/historicalTrades", data=True)
    async def historical_trades(self, p: ParamReader) -> Any:
        inst = self._symbol(p)
        limit = self._limit(p)
        from_id = p.integer("fromId")
        now = self.clock.now_ns()
        if from_id is None:  # [C] "Default gets most recent trades."
            tr = await asyncio.to_thread(self.market.trades_window, inst.symbol, 0, now,
                                         limit, True)
        else:
            tr = await asyncio.to_thread(self.market.trades_from_id, inst.symbol, from_id,
                                         limit, now)
        return fmt.trade_items(tr, inst)
