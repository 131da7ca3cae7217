"""Bitstamp public market data (``/api/v2``), as documented in Bitstamp's OpenAPI docs.

Facts (``docs/exchanges.md#bitstamp``) are tagged [C] documented, [B] believed — every
[B] behaviour is a venue setting so it can change when the truth is known. One real row
of each response (ccxt fixtures)::

    ohlc:         {"high": "9064.77", "timestamp": "1593961440", "volume": "18.49436608",
                   "low": "9040.87", "close": "9064.77", "open": "9040.87"}
    transactions: {"date": "1637845199", "tid": "209895701", "amount": "0.00500000",
                   "type": "0", "price": "4451.25"}

Parameter errors name the field with marshmallow's messages ("Missing data for required
field.", "Not a valid choice.", "Must be between 1 and 1000." [C]) inside a wrapper that
is not documented [B]: ``{"status": "error", "reason": {field: [msg]}, "code": "400.002"}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dccd_cli.emulator.bars import BarFrame, Bars
from dccd_cli.emulator.instruments import Instrument, format_e8
from dccd_cli.emulator.limiter import Verdict, WeightLimiter
from dccd_cli.emulator.market import MarketModel
from dccd_cli.emulator.trades import Trades
from dccd_cli.emulator.venue import Clock, Headers, Refused, Request, Response, Route, Venue, route
from dccd_cli.timeutil import NS, Span

# [C] OHLC steps in seconds.
STEPS = (60, 180, 300, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400, 259200)
# [C] transactions `time`: how far back from now.
WINDOWS = {"minute": 60, "hour": 3600, "day": 86400}
# Names for `description` ("Bitcoin / Tether"), which ccxt requires.
NAMES = {"BTC": "Bitcoin", "ETH": "Ether", "SOL": "Solana", "USDT": "Tether",
         "USD": "U.S. dollar", "EUR": "Euro", "USDC": "USD Coin"}
_TRUE, _FALSE = ("true", "True", "1"), ("false", "False", "0")


class BitstampError(Exception):
    """A refused request: HTTP ``status`` with a ``reason`` (a message or field errors)."""

    def __init__(self, reason: str | dict[str, list[str]], code: str = "400.002",
                 status: int = 400) -> None:
        super().__init__(str(reason))
        self.reason, self.code, self.status = reason, code, status


def fixed(value_e8: int, decimals: int) -> str:
    """1e-8 units with exactly ``decimals`` places (Bitstamp pads, it does not strip)."""
    text = format_e8(value_e8)
    return text[: len(text) - 8 + decimals].rstrip(".")


def decimals_of(increment_e8: int) -> int:
    """Decimal places of an increment given in 1e-8 units (0.01 -> 2)."""
    places = 8
    while places and increment_e8 % 10 == 0:
        increment_e8 //= 10
        places -= 1
    return places


class _Form:
    """Query fields validated together, marshmallow-style: every bad field is reported."""

    def __init__(self, params: dict[str, list[str]]) -> None:
        self.params = params
        self.errors: dict[str, list[str]] = {}

    def get(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values and values[0] != "" else None

    def integer(self, name: str, required: bool = False) -> int | None:
        value = self.get(name)
        if value is None:
            if required:
                self.errors[name] = ["Missing data for required field."]
            return None
        try:
            return int(value)
        except ValueError:
            self.errors[name] = ["Not a valid integer."]
            return None

    def boolean(self, name: str) -> bool:
        value = self.get(name)
        if value is None or value in _FALSE:
            return False
        if value not in _TRUE:
            self.errors[name] = ["Not a valid boolean."]
        return value in _TRUE

    def fail(self, name: str, message: str) -> None:
        self.errors[name] = [message]

    def check(self) -> None:
        if self.errors:
            raise BitstampError(dict(self.errors))


class BitstampVenue(Venue[BitstampError]):
    """``/bitstamp/api/v2/{markets/, ohlc/{pair}/, transactions/{pair}/}``; pairs are
    lower case ``basequote``."""

    name = "bitstamp"
    defaults: dict[str, Any] = {
        "rate_limit": 8000,  # [B] requests per window (ccxt; a 3rd party says 10,000)
        "rate_window_s": 600,  # [B] 10 minutes
        "start_inclusive_open": True,  # [B] start: first bar opening at/after it, or False:
        # the bar that holds it
        "empty_candles": "flat",  # [B] steps without trades: "flat" candle or "omit"
        "ohlc_oldest_first": True,  # [B]
        "error_code_key": "code",  # [B] "code" (ccxt comments) or "response_code" (newer)
        "unknown_pair_status": 404,  # [B]
    }
    trailing_slash = True  # the documented paths end in "/"; served without it too
    not_found = Response(404, b"Not found", content_type="text/html")
    error_type = BitstampError
    strict_limits = {"rate_limit": 3, "rate_window_s": 2}

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        super().__init__(market, settings, clock)
        s = self.settings
        if s["empty_candles"] not in ("flat", "omit"):
            raise ValueError("bitstamp empty_candles must be 'flat' or 'omit'")
        self.limiter = WeightLimiter(int(s["rate_limit"]), float(s["rate_window_s"]))
        self.pairs = {(i.base + i.quote).lower(): i for i in market.instruments}

    def reset(self) -> None:
        self.limiter.reset()

    def admit(self, request: Request, matched: Route | None) -> Headers:
        if self.limiter.charge(request.client, 1).verdict is not Verdict.OK:
            raise Refused(self.error_reply(
                BitstampError("Rate limit exceeded", "400.002", 429)))  # [B]
        return []

    def query(self, request: Request) -> _Form:
        return _Form(request.params())

    def error_reply(self, exc: BitstampError) -> Response:
        body = {"status": "error", "reason": exc.reason, self.settings["error_code_key"]: exc.code}
        return Response.json(body, exc.status)

    def error_in_200(self) -> Any:
        return {"status": "error", "reason": "Internal error", "code": "API0000"}

    def _pair(self, name: str) -> Instrument:
        inst = self.pairs.get(name)
        if inst is None or not self.market.is_listed(inst.symbol, self.clock.now_ns()):
            raise BitstampError("Not found.", "404.002",
                                int(self.settings["unknown_pair_status"]))  # [B]
        return inst

    # -- endpoints --------------------------------------------------------------------

    @route("/api/v2/markets")
    async def markets(self, form: _Form) -> list[dict[str, Any]]:
        """[C] the fields ccxt reads; ``description`` and ``minimum_order_value`` are
        required by it."""
        now = self.clock.now_ns()
        return [{
            "name": f"{i.base}/{i.quote}", "market_symbol": name, "base_currency": i.base,
            "base_decimals": decimals_of(i.lot_e8), "counter_currency": i.quote,
            "counter_decimals": decimals_of(i.tick_e8), "minimum_order_value": "10",
            "trading": "Enabled", "instant_order_counter_decimals": decimals_of(i.tick_e8),
            "instant_and_market_orders": "Enabled",
            "description": f"{NAMES.get(i.base, i.base)} / {NAMES.get(i.quote, i.quote)}",
            "market_type": "SPOT",
        } for name, i in self.pairs.items() if self.market.is_listed(i.symbol, now)]

    @route("/api/v2/ohlc/{pair}", data=True)
    async def ohlc(self, form: _Form, pair: str) -> Any:
        inst = self._pair(pair)
        step = form.integer("step", required=True)
        if step is not None and step not in STEPS:
            form.fail("step", "Not a valid choice.")
        limit = form.integer("limit", required=True)
        if limit is not None and not 1 <= limit <= 1000:
            form.fail("limit", "Must be between 1 and 1000.")
        start, end = form.integer("start"), form.integer("end")
        exclude = form.boolean("exclude_current_candle")
        form.check()
        assert step is not None and limit is not None
        span = Span.parse(f"{step}s") if step < 60 else Span.parse(f"{step // 60}m")
        frame = BarFrame(span, 0)
        now = self.clock.now_ns()
        hi = now + 1
        if exclude:  # [C] drop the candle that holds 'now'
            hi = frame.floor(now)
        lo, newest = 0, True
        if end is not None:  # [C] with both, end wins: the `limit` bars up to end
            hi = min(hi, end * NS + 1)
        elif start is not None:  # [B] from start, oldest first
            lo = start * NS if self.settings["start_inclusive_open"] else frame.floor(start * NS)
            newest = False
        bars = await asyncio.to_thread(
            self.market.bars, inst.symbol, span, lo, hi, now, limit=limit, newest=newest,
            empty=self.settings["empty_candles"] == "flat")
        rows = ohlc_rows(bars, inst)
        if not self.settings["ohlc_oldest_first"]:
            rows.reverse()
        return {"data": {"pair": f"{inst.base}/{inst.quote}", "ohlc": rows}}

    @route("/api/v2/transactions/{pair}", data=True)
    async def transactions(self, form: _Form, pair: str) -> Any:
        inst = self._pair(pair)
        time = form.get("time") or "hour"  # [C] default hour
        if time not in WINDOWS:
            form.fail("time", "Must be one of: minute, hour, day.")
        form.check()
        now = self.clock.now_ns()
        tr = await asyncio.to_thread(self.market.trades, inst.symbol,
                                     now - WINDOWS[time] * NS, now)
        return transaction_items(tr, inst)


def ohlc_rows(bars: Bars, inst: Instrument) -> list[dict[str, str]]:
    """Oldest first [B]; prices with the pair's counter decimals, volume (base) with 8."""
    t, places = inst.tick_e8, decimals_of(inst.tick_e8)
    lot = inst.lot_e8
    cols = zip(bars.open_ns.tolist(), bars.open.tolist(), bars.high.tolist(),
               bars.low.tolist(), bars.close.tolist(), bars.volume.tolist(), strict=True)
    return [{"timestamp": str(o // NS), "open": fixed(op * t, places),
             "high": fixed(hi * t, places), "low": fixed(lo * t, places),
             "close": fixed(cl * t, places), "volume": format_e8(v * lot)}
            for o, op, hi, lo, cl, v in cols]


def transaction_items(tr: Trades, inst: Instrument) -> list[dict[str, str]]:
    """Newest first [C]; ``type`` "0" = buy, "1" = sell (the taker's side), ``date`` in
    whole seconds (Bitstamp drops the milliseconds)."""
    t, places, lot = inst.tick_e8, decimals_of(inst.tick_e8), inst.lot_e8
    cols = zip(tr.id.tolist(), tr.price.tolist(), tr.qty.tolist(), tr.ts_ns.tolist(),
               tr.buyer_maker.tolist(), strict=True)
    items = [{"date": str(ts // NS), "tid": str(i), "amount": format_e8(q * lot),
              "type": "1" if m else "0", "price": fixed(p * t, places)}
             for i, p, q, ts, m in cols]
    items.reverse()
    return items

