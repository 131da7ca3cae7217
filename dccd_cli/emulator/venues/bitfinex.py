"""Bitfinex v2 public market data (``https://api-pub.bitfinex.com/v2``).

Facts (``docs/exchanges.md#bitfinex``) are tagged [C] documented (docs.bitfinex.com
rest-public-candles, rest-public-trades, rest-public-conf), [B] believed — every [B]
behaviour is a venue setting. Every value is a JSON number; errors are arrays
``["error", code, "message"]``. A real candle row (docs.bitfinex.com, ws-public-candles;
REST rows have the same shape) and the documented trade layout::

    candles: [1574698260000, 7379.785503, 7383.8, 7388.3, 7379.785503, 1.68829482]
                                             [MTS, OPEN, CLOSE, HIGH, LOW, VOLUME]
    trades:  [ID, MTS, AMOUNT, PRICE]        AMOUNT < 0: the taker sold

Trading symbols are ``t`` + base + quote, with Bitfinex's own codes (USDT is ``UST``);
a code longer than three letters needs a colon (``tDOGE:USD``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from dccd_cli.emulator.bars import Bars
from dccd_cli.emulator.instruments import E8, Instrument
from dccd_cli.emulator.limiter import Verdict, WeightLimiter
from dccd_cli.emulator.market import MarketModel
from dccd_cli.emulator.trades import Trades
from dccd_cli.emulator.venue import Clock, Headers, Refused, Request, Response, Route, Venue, route
from dccd_cli.timeutil import MS, Span

# [C] candle timeframes; ccxt also sends 7D (and maps 1w to it): a 7-day bar.
TIMEFRAMES: dict[str, Span] = {
    "1m": Span.parse("1m"), "5m": Span.parse("5m"), "15m": Span.parse("15m"),
    "30m": Span.parse("30m"), "1h": Span.parse("1h"), "3h": Span.parse("3h"),
    "6h": Span.parse("6h"), "12h": Span.parse("12h"), "1D": Span.parse("1d"),
    "1W": Span.parse("1w"), "7D": Span.parse("7d"), "14D": Span.parse("14d"),
    "1M": Span.parse("1M"),
}
CODES = {"USDT": "UST", "DASH": "DSH", "IOTA": "IOT", "QTUM": "QTM", "DATA": "DAT"}
# What follows /v2/candles/, /v2/trades/ and /v2/conf/.
_CANDLES = re.compile(r"^([^/]+)/(hist|last)$")
_TRADES = re.compile(r"^([^/]+)/hist$")
_CONF = re.compile(r"^([^/]+)$")


class BitfinexError(Exception):
    """A refused request: HTTP ``status`` (500 [B]) with ``["error", code, message]``."""

    def __init__(self, code: int, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def pair_name(inst: Instrument) -> str:
    """``BTCUST``, ``SOLEUR``; ``DOGE:USD`` when a code is longer than three letters."""
    base, quote = CODES.get(inst.base, inst.base), CODES.get(inst.quote, inst.quote)
    return base + quote if len(base) == len(quote) == 3 else f"{base}:{quote}"


def _num(value_e8: int) -> float:
    return value_e8 / E8


def candle_rows(bars: Bars, inst: Instrument) -> list[list[Any]]:
    """[C] ``[MTS, OPEN, CLOSE, HIGH, LOW, VOLUME]``, oldest first (callers reverse)."""
    t, lot = inst.tick_e8, inst.lot_e8
    cols = zip(bars.open_ns.tolist(), bars.open.tolist(), bars.close.tolist(),
               bars.high.tolist(), bars.low.tolist(), bars.volume.tolist(), strict=True)
    return [[o // MS, _num(op * t), _num(cl * t), _num(hi * t), _num(lo * t), _num(v * lot)]
            for o, op, cl, hi, lo, v in cols]


def trade_rows(tr: Trades, inst: Instrument) -> list[list[Any]]:
    """[C] ``[ID, MTS, AMOUNT, PRICE]``, oldest first; AMOUNT < 0 when the taker sold."""
    t, lot = inst.tick_e8, inst.lot_e8
    cols = zip(tr.id.tolist(), tr.ts_ns.tolist(), tr.qty.tolist(), tr.price.tolist(),
               tr.buyer_maker.tolist(), strict=True)
    return [[i, ts // MS, _num(-q * lot if m else q * lot), _num(p * t)]
            for i, ts, q, p, m in cols]


class BitfinexVenue(Venue[BitfinexError]):
    """``/bitfinex/v2/{conf/<keys>,candles/trade:<TF>:<SYMBOL>/{hist,last},
    trades/<SYMBOL>/hist}`` over the shared market."""

    name = "bitfinex"
    defaults: dict[str, Any] = {
        "candles_per_min": 30,  # [B] docs say 30; another version of the page says 90
        "trades_per_min": 15,  # [C] 15 requests a minute
        "conf_per_min": 90,  # [B] ccxt's comment: 90 a minute
        "block_s": 60,  # [B] over the limit: the IP is blocked ~60 s on that endpoint
        "candles_default_limit": 100,  # [C] "the last 100 candles"
        "trades_default_limit": 120,  # [B] ccxt
        "end_inclusive": True,  # [B] MTS <= end ([C] MTS >= start); False: MTS < end
        "default_sort": -1,  # [B] newest first unless sort=1
        "max_limit": 10000,  # [B] ccxt; above it: 500 ["error",10020,"limit: invalid"]
        "error_status": 500,  # [B] HTTP status of ["error", 10020, ...]
        "unknown_candle_key": "empty",  # [B] unknown symbol on candles: "empty" [] or "error"
    }
    trailing_slash = True
    not_found = Response.json(["error", 10020, "path: invalid"], 404)  # [B]
    error_type = BitfinexError
    strict_limits = {"candles_per_min": 1, "block_s": 2}

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        super().__init__(market, settings, clock)
        s = self.settings
        block = float(s["block_s"])
        # One limiter per endpoint: the first refusal in a minute blocks that endpoint.
        self.limiters = {kind: WeightLimiter(int(s[f"{kind}_per_min"]), 60.0, ban_after=0,
                                             ban_s=block)
                         for kind in ("candles", "trades", "conf")}
        self.symbols = {"t" + pair_name(i): i for i in market.instruments}

    def reset(self) -> None:
        for limiter in self.limiters.values():
            limiter.reset()

    def admit(self, request: Request, matched: Route | None) -> Headers:
        assert matched is not None
        kind = matched.pattern.split("/")[2]  # /v2/<kind>/...: each endpoint its own limit
        if self.limiters[kind].charge(request.client, 1).verdict is not Verdict.OK:
            # [B] third-party tests: 429 with this body, the IP blocked for a while.
            raise Refused(Response.json(["error", 11010, "ratelimit: error"], 429))
        return []

    def query(self, request: Request) -> dict[str, str]:
        return {k: v[-1] for k, v in request.params().items()}

    def error_reply(self, exc: BitfinexError) -> Response:
        status = exc.status if exc.status != 500 else int(self.settings["error_status"])
        return Response.json(["error", exc.code, exc.message], status)

    def error_in_200(self) -> Any:
        return ["error", 20060, "maintenance"]

    # -- parameters -------------------------------------------------------------------

    def _int(self, params: dict[str, str], name: str) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise BitfinexError(10020, f"{name}: invalid") from None  # [B]

    def _window(self, params: dict[str, str], default_limit: int,
                now: int) -> tuple[int, int, int, bool]:
        """``(lo_ns, hi_ns, limit, newest)``: start (ms) inclusive, end per the
        ``end_inclusive`` setting, never past now; sort -1 takes the newest, +1 the
        oldest."""
        limit = self._int(params, "limit")
        if limit is None:
            limit = default_limit
        if not 1 <= limit <= int(self.settings["max_limit"]):
            raise BitfinexError(10020, "limit: invalid")
        sort = self._int(params, "sort")
        if sort is None:
            sort = int(self.settings["default_sort"])
        start, end = self._int(params, "start"), self._int(params, "end")
        lo = max(start, 0) * MS if start is not None else 0
        hi = now + 1
        if end is not None:
            hi = min(end * MS + (MS if self.settings["end_inclusive"] else 0), hi)
        return lo, hi, limit, sort != 1

    # -- endpoints --------------------------------------------------------------------

    @route("/v2/conf/{keys*}")
    async def conf(self, params: dict[str, str], keys: str) -> list[Any]:
        """[C] ``/conf/<key>[,<key>...]``: one entry per key, in order."""
        now = self.clock.now_ns()
        m = _CONF.match(keys)
        if m is None:
            raise BitfinexError(10020, "keys: invalid")
        listed = [i for i in self.market.instruments if self.market.is_listed(i.symbol, now)]
        names = [pair_name(i) for i in listed]
        codes = list(dict.fromkeys(CODES.get(c, c) for i in listed for c in (i.base, i.quote)))
        info = [[pair_name(i), [None, None, None, i.lot, "2000.0", None, None, None, 0.2, 0.1]]
                for i in listed]  # [.., MIN_ORDER_SIZE, MAX_ORDER_SIZE, .., margins]
        known: dict[str, Any] = {
            "pub:list:pair:exchange": names, "pub:list:pair:margin": [],
            "pub:list:pair:futures": [], "pub:list:pair:securities": [],
            "pub:info:pair": info, "pub:info:pair:futures": [],
            "pub:list:currency": codes, "pub:list:currency:margin": [],
            "pub:map:currency:sym": [[CODES[c], c] for c in CODES if CODES[c] in codes],
            "pub:map:currency:label": [[c, c] for c in codes],
        }
        # [B] keys not modelled here answer null (ccxt's currency keys read as empty).
        return [known.get(key) for key in m.group(1).split(",")]

    @route("/v2/candles/{key*}", data=True)
    async def candles(self, params: dict[str, str], key: str) -> Any:
        now = self.clock.now_ns()
        m = _CANDLES.match(key)
        parts = m.group(1).split(":") if m is not None else []
        if m is None or len(parts) < 3 or parts[0] != "trade":
            raise BitfinexError(10020, "key: invalid")  # [B]
        span = TIMEFRAMES.get(parts[1])
        if span is None:
            raise BitfinexError(10020, "time_interval: invalid")  # [B] third-party
        inst = self.symbols.get(":".join(parts[2:]))
        if inst is None or not self.market.is_listed(inst.symbol, now):
            if self.settings["unknown_candle_key"] == "error":
                raise BitfinexError(10020, "symbol: invalid")
            return []  # [B]
        if m.group(2) == "last":  # [C] section "last": one candle, not a list
            bars = await asyncio.to_thread(self.market.bars, inst.symbol, span, 0, now + 1,
                                           now, limit=1, newest=True, empty=False)
            rows = candle_rows(bars, inst)
            return rows[0] if rows else []
        lo, hi, limit, newest = self._window(params, int(self.settings["candles_default_limit"]),
                                             now)
        if hi <= lo:
            return []
        # [B] candles are not generated for intervals without trades.
        bars = await asyncio.to_thread(self.market.bars, inst.symbol, span, lo, hi, now,
                                       limit=limit, newest=newest, empty=False)
        rows = candle_rows(bars, inst)
        return rows[::-1] if newest else rows

    @route("/v2/trades/{key*}", data=True)
    async def trades(self, params: dict[str, str], key: str) -> Any:
        now = self.clock.now_ns()
        m = _TRADES.match(key)
        inst = self.symbols.get(m.group(1)) if m is not None else None
        if inst is None or not self.market.is_listed(inst.symbol, now):
            raise BitfinexError(10020, "symbol: invalid")  # [B] third-party
        lo, hi, limit, newest = self._window(params, int(self.settings["trades_default_limit"]),
                                             now)
        if hi <= lo:
            return []
        tr = await asyncio.to_thread(self.market.trades_window, inst.symbol, lo, hi, limit,
                                     newest)
        rows = trade_rows(tr, inst)
        return rows[::-1] if newest else rows  # newest first: by time, then id, descending
