"""OKX v5 public market data (``/api/v5``), as documented in OKX's docs-v5.

Facts (``docs/exchanges.md#okx``) are tagged [C] documented, [B] believed — every
[B] behaviour is a venue setting so it can change when the truth is known. One real row
of each response, from the docs::

    history-candles: ["1597026383085", "3.721", "3.743", "3.677", "3.708", "8422410",
                      "22698348.04828491", "12698348.04828491", "1"]
    history-trades:  {"instId": "BTC-USDT", "side": "sell", "sz": "0.00001", "source": "0",
                      "px": "29963.2", "tradeId": "242720720", "ts": "1654161646974"}

Every answer is ``{"code": "0", "msg": "", "data": [...]}``, all values strings. Paging
cursors are exclusive: ``after`` = older than, ``before`` = newer than; a page is always
the newest ``limit`` records between them (newest first), which is also what "the latest
data is returned when using before individually" [C] means.
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
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MS, Span

# [C] bar codes. Days, weeks, months and 6H/12H open on Hong Kong time (UTC+8) unless the
# code ends in "utc"; 1H-4H boundaries are the same in both zones.
_HK = 8 * HOUR_NS
BARS: dict[str, tuple[Span, int]] = {
    **{code: (Span.parse(code), 0) for code in ("1s", "1m", "3m", "5m", "15m", "30m")},
    "1H": (Span.parse("1h"), 0), "2H": (Span.parse("2h"), 0), "4H": (Span.parse("4h"), 0),
    **{code: (Span.parse(code.lower() if code[-1] != "M" else code), _HK)
       for code in ("6H", "12H", "1D", "2D", "3D", "1W", "1M", "3M")},
    **{code + "utc": (Span.parse(code.lower() if code[-1] != "M" else code), 0)
       for code in ("6H", "12H", "1D", "2D", "3D", "1W", "1M", "3M")},
}
_PREFIX = "/api/v5"


class OkxError(Exception):
    """A refused request: ``{"code", "msg", "data": []}`` (HTTP status: a setting)."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _params(params: dict[str, list[str]]) -> QueryParams:
    """Query parameters; missing and malformed ones answer with the venue's error [B]."""
    return QueryParams(
        params,
        missing=lambda name: OkxError("50014", f"Parameter {name} can not be empty."),
        malformed=lambda name: OkxError("51000", f"Parameter {name} error"),
        signed=False,
    )


class OkxVenue(Venue[OkxError]):
    """``/okx/api/v5/{public/instruments, public/time, market/candles,
    market/history-candles, market/trades, market/history-trades}``; instId ``BASE-QUOTE``."""

    name = "okx"
    defaults: dict[str, Any] = {
        # [C] per-IP limits, each endpoint counted on its own: (requests, window seconds).
        "rate_limits": {"/public/instruments": (20, 2), "/public/time": (10, 2),
                        "/market/candles": (40, 2), "/market/history-candles": (20, 2),
                        "/market/trades": (100, 2), "/market/history-trades": (20, 2)},
        "candles_limit_max": 300,  # [C] current docs; [B] older docs and SDKs say 100
        "limit_over_max": "clamp",  # [B] a limit above the cap: "clamp" or "error" (51000)
        "candles_latest_rows": 1440,  # [C] market/candles keeps only the latest 1440 bars
        "history_days": 90,  # [C] history-trades and 1s candles: "the last 3 months"
        "empty_candles": "flat",  # [B] minutes without trades: "flat" bar or "omit"
        "candles_newest_first": True,  # [B] standard OKX order
        "error_http_status": 200,  # [B] 51000/51001 come inside HTTP 200 (one report)
    }
    not_found = Response.json({"msg": "Not Found", "code": "404"}, 404)  # [B]
    error_type = OkxError
    strict_limits = {"rate_limits": {**defaults["rate_limits"],
                                     "/market/history-candles": (1, 2)}}

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        super().__init__(market, settings, clock)
        s = self.settings
        if s["empty_candles"] not in ("flat", "omit") or \
                s["limit_over_max"] not in ("clamp", "error"):
            raise ValueError("okx empty_candles must be flat|omit, limit_over_max clamp|error")
        self.limiters = {path: WeightLimiter(int(n), float(w))
                         for path, (n, w) in dict(s["rate_limits"]).items()}

    def reset(self) -> None:
        for limiter in self.limiters.values():
            limiter.reset()

    def admit(self, request: Request, matched: Route | None) -> Headers:
        assert matched is not None
        limiter = self.limiters.get(matched.pattern.removeprefix(_PREFIX))
        if limiter is not None and limiter.charge(request.client, 1).verdict is not Verdict.OK:
            # [B] body seen in many logs; OKX sends no Retry-After or usage headers.
            raise Refused(Response.json({"msg": "Too Many Requests", "code": "50011"}, 429))
        return []

    def query(self, request: Request) -> QueryParams:
        return _params(request.params())

    def error_reply(self, exc: OkxError) -> Response:
        return Response.json({"code": exc.code, "data": [], "msg": exc.msg},
                             int(self.settings["error_http_status"]))

    def envelope(self, result: Any) -> Any:
        return {"code": "0", "msg": "", "data": result}

    def error_in_200(self) -> Any:
        return {"code": "50001", "msg": "Service temporarily unavailable. Please try again "
                "later.", "data": []}

    # -- helpers ----------------------------------------------------------------------

    def _inst(self, p: QueryParams) -> Instrument:
        name = p.required("instId")
        try:
            inst = self.market.instrument(name)
        except KeyError:
            inst = None
        # An instrument listed after the (fixed) 'now' does not exist yet.
        if inst is None or not self.market.is_listed(inst.symbol, self.clock.now_ns()):
            raise OkxError("51001", "Instrument ID does not exist")  # [B] wording varies
        return inst

    def _limit(self, p: QueryParams, default: int, cap: int) -> int:
        limit = p.integer("limit")
        if limit is None or limit == 0:
            return default
        if limit > cap:
            if self.settings["limit_over_max"] == "error":
                raise OkxError("51000", "Parameter limit error")
            return cap
        return limit

    # -- endpoints --------------------------------------------------------------------

    @route(_PREFIX + "/public/time")
    async def time(self, p: QueryParams) -> Any:
        return [{"ts": str(self.clock.now_ns() // MS)}]

    @route(_PREFIX + "/public/instruments")
    async def instruments(self, p: QueryParams) -> Any:
        kind = p.required("instType")
        if kind not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
            raise OkxError("51000", "Parameter instType error")
        if kind != "SPOT":
            return []  # the synthetic market has spot pairs only (no margin, no derivatives)
        now = self.clock.now_ns()
        wanted = p.get("instId")
        insts = [i for i in self.market.instruments if self.market.is_listed(i.symbol, now)
                 and (wanted is None or i.symbol == wanted)]
        return [{
            "instType": "SPOT", "instId": i.symbol, "uly": "", "instFamily": "",
            "category": "1", "baseCcy": i.base, "quoteCcy": i.quote, "settleCcy": "",
            "ctVal": "", "ctMult": "", "ctValCcy": "", "optType": "", "stk": "",
            "listTime": str(i.listed_ns // MS), "expTime": "", "lever": "",
            "tickSz": plain_decimal(i.tick_e8), "lotSz": plain_decimal(i.lot_e8), "minSz": plain_decimal(i.lot_e8),
            "ctType": "", "alias": "", "state": "live", "ruleType": "normal",
            "maxLmtSz": "9999999999", "maxMktSz": "1000000", "maxLmtAmt": "20000000",
            "maxMktAmt": "1000000", "maxTwapSz": "9999999999", "maxIcebergSz": "9999999999",
            "maxTriggerSz": "9999999999", "maxStopSz": "1000000",
        } for i in insts]

    @route(_PREFIX + "/market/candles", data=True)
    async def candles(self, p: QueryParams) -> Any:
        return await self._candles(p, history=False)

    @route(_PREFIX + "/market/history-candles", data=True)
    async def history_candles(self, p: QueryParams) -> Any:
        return await self._candles(p, history=True)

    async def _candles(self, p: QueryParams, history: bool) -> Any:
        inst = self._inst(p)
        code = p.get("bar") or "1m"  # [C] default 1m
        if code not in BARS:
            raise OkxError("51000", "Parameter bar error")  # [B]
        span, offset = BARS[code]
        limit = self._limit(p, 100, int(self.settings["candles_limit_max"]))
        after, before = p.integer("after"), p.integer("before")
        now = self.clock.now_ns()
        # Both cursors are exclusive bar open times in ms.
        hi = after * MS if after is not None else now + 1
        lo = before * MS + 1 if before is not None else 0
        frame = BarFrame(span, offset)
        if not history:  # [C] only the latest N bars exist on market/candles
            lo = max(lo, frame.add(frame.floor(now), 1 - int(self.settings["candles_latest_rows"])))
        if span.code == "1s":  # [C] 1s bars only for the last 3 months
            lo = max(lo, now - int(self.settings["history_days"]) * DAY_NS)
        bars = await asyncio.to_thread(
            self.market.bars, inst.symbol, span, lo, hi, now, limit=limit, newest=True,
            empty=self.settings["empty_candles"] == "flat", offset_ns=offset)
        rows = candle_rows(bars, inst, now)
        if not self.settings["candles_newest_first"]:
            rows.reverse()
        return rows

    @route(_PREFIX + "/market/trades", data=True)
    async def trades(self, p: QueryParams) -> Any:
        inst = self._inst(p)
        limit = self._limit(p, 100, 500)  # [C] latest <= 500, default 100
        now = self.clock.now_ns()
        tr = await asyncio.to_thread(self.market.trades_window, inst.symbol, 0, now, limit, True)
        return trade_items(tr, inst)

    @route(_PREFIX + "/market/history-trades", data=True)
    async def history_trades(self, p: QueryParams) -> Any:
        inst = self._inst(p)
        kind = p.get("type") or "1"  # [C] 1 = by tradeId (default), 2 = by timestamp
        if kind not in ("1", "2"):
            raise OkxError("51000", "Parameter type error")
        limit = self._limit(p, 100, 100)  # [C] max and default 100
        after, before = p.integer("after"), p.integer("before")
        now = self.clock.now_ns()
        floor = now - int(self.settings["history_days"]) * DAY_NS  # [C] last 3 months only
        sym = inst.symbol
        if kind == "2":
            # [C] `before` does not page by timestamp: ignored with type=2.
            end = min(after * MS, now) if after is not None else now
            tr = await asyncio.to_thread(self.market.trades_window, sym, floor, end, limit, True)
        else:
            if after is not None:
                tr = await asyncio.to_thread(self.market.trades_before_id, sym, after, limit, now)
            else:
                tr = await asyncio.to_thread(self.market.trades_window, sym, floor, now, limit,
                                             True)
            if before is not None:
                tr = tr.take(tr.id > before)
            tr = tr.take(tr.ts_ns >= floor)
        return trade_items(tr, inst)


def candle_rows(bars: Bars, inst: Instrument, now_ns: int) -> list[list[str]]:
    """``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`` newest first; for spot, vol
    is in base units and both volCcy and volCcyQuote in quote units [C]."""
    t, lot = inst.tick_e8, inst.lot_e8
    cols = zip(bars.open_ns.tolist(), bars.end_ns.tolist(), bars.open.tolist(),
               bars.high.tolist(), bars.low.tolist(), bars.close.tolist(),
               bars.volume.tolist(), bars.quote_volume.tolist(), strict=True)
    rows = []
    for o, e, op, hi, lo, cl, v, qv in cols:
        quote = plain_decimal(quote_e8(qv, t, lot))
        rows.append([str(o // MS), plain_decimal(op * t), plain_decimal(hi * t), plain_decimal(lo * t), plain_decimal(cl * t),
                     plain_decimal(v * lot), quote, quote, "1" if e <= now_ns else "0"])
    rows.reverse()
    return rows


def trade_items(tr: Trades, inst: Instrument) -> list[dict[str, str]]:
    """``{instId, side, sz, source, px, tradeId, ts}`` newest first; ``side`` is the taker's."""
    t, lot = inst.tick_e8, inst.lot_e8
    cols = zip(tr.id.tolist(), tr.price.tolist(), tr.qty.tolist(), tr.ts_ns.tolist(),
               tr.buyer_maker.tolist(), strict=True)
    items = [{"instId": inst.symbol, "side": "sell" if m else "buy", "sz": plain_decimal(q * lot),
              "source": "0", "px": plain_decimal(p * t), "tradeId": str(i), "ts": str(ts // MS)}
             for i, p, q, ts, m in cols]
    items.reverse()
    return items
