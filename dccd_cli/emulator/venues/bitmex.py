"""BitMEX public market data (``/api/v1``) for spot pairs, as documented in BitMEX's
swagger.json and REST docs (BitMEX/api-connectors).

Facts (``docs/exchanges.md#bitmex``) are tagged [C] documented, [B] believed — every
[B] behaviour is a venue setting so it can change when the truth is known. One real row
of each response::

    trade/bucketed: {"timestamp": "2017-01-01T00:01:00.000Z", "symbol": "XBTUSD",
                     "open": 968.29, "high": 968.76, "low": 968.49, "close": 968.7,
                     "trades": 17, "volume": 12993, "vwap": 968.72, "lastSize": 2000,
                     "turnover": 1341256747, "homeNotional": 13.41256747,
                     "foreignNotional": 12993}
    trade:          {"timestamp": "2019-01-05T21:45:31.597Z", "symbol": "XBTUSD",
                     "side": "Sell", "size": 180, "price": 3838,
                     "tickDirection": "ZeroMinusTick",
                     "trdMatchID": "cb96e6d2-0bc9-d921-dafe-f96857773931",
                     "grossValue": 4689900, "homeNotional": 0.046899, "foreignNotional": 180}

Both tables take ``symbol, count, start (row offset), reverse, startTime, endTime``:
oldest first from ``startTime`` (or the listing), newest first with ``reverse``; ``start``
skips rows, which is BitMEX's own cursor. Trades are listed in execution order (the
model's trade ids), those of one millisecond too; their ``trdMatchID`` is a UUID made
from that id, so only the listing tells the order. Units: see :mod:`.bitmex_format`. ``filter``
and ``columns`` are accepted and ignored.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from dccd_cli.emulator.bars import Bars
from dccd_cli.emulator.instruments import Instrument
from dccd_cli.emulator.market import MarketModel
from dccd_cli.emulator.venue import Clock, Headers, Refused, Request, Response, Route, Venue, route
from dccd_cli.emulator.venues import bitmex_format as fmt
from dccd_cli.timeutil import MS, Span

# [C] bin sizes of trade/bucketed.
BINS: dict[str, Span] = {code: Span.parse(code) for code in ("1m", "5m", "1h", "1d")}


class BitmexError(Exception):
    """A refused request: ``{"error": {"message", "name"}}`` with HTTP ``status``."""

    def __init__(self, message: str, status: int = 400, name: str = "HTTPError") -> None:
        super().__init__(message)
        self.message, self.status, self.name = message, status, name


class _Query:
    """The shared table parameters, validated the BitMEX way (400 HTTPError) [B wording]."""

    def __init__(self, params: dict[str, list[str]], count_max: int, over_max: str) -> None:
        self.params = params
        self.symbol = self.get("symbol")
        self.reverse = self.flag("reverse")
        self.start = self.integer("start") or 0
        count = self.integer("count")
        if count is None:
            count = 100  # [C] default 100
        if count > count_max and over_max == "error":
            raise BitmexError(f"Invalid count: must be <= {count_max}.")
        self.count = min(count, count_max)
        self.start_ns = self.time("startTime")
        self.end_ns = self.time("endTime")

    def get(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values and values[0] != "" else None

    def flag(self, name: str) -> bool:
        value = self.get(name)
        if value is None or value in ("false", "0"):
            return False
        if value in ("true", "1"):
            return True
        raise BitmexError(f"Invalid {name}: expected a boolean.")

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if not value.isdigit():
            raise BitmexError(f"Invalid {name}: expected a non-negative integer.")
        return int(value)

    def time(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return fmt.parse_time(value)
        except ValueError:
            raise BitmexError(f"Invalid {name}: {value!r} is not a date.") from None


class BitmexVenue(Venue[BitmexError]):
    """``/bitmex/api/v1/{instrument/active, wallet/assets, trade/bucketed, trade}``;
    symbols ``XBT_USDT`` (BTC is XBT), spot only."""

    name = "bitmex"
    defaults: dict[str, Any] = {
        "rate_limit": 30,  # [B] unauthenticated requests per window (~30/min)
        "rate_window_s": 60,  # [C] per minute, refilled continuously
        "count_max": 1000,  # [B]
        "count_over_max": "error",  # [B] count > count_max: "error" (400) or "clamp"
        "end_time_inclusive": True,  # [B] rows at exactly endTime are returned
        "unknown_symbol": "empty",  # [B] an unknown symbol: "empty" (200 []) or "error"
        "last_size": "null",  # "trade": the bucket's last trade size, as BitMEX does; costs
        # one minute's expansion per bucket (~1 ms at full scale), so off by default
    }
    trailing_slash = True
    charge_unknown = True  # every request spends the budget, and carries its headers
    not_found = Response.json({"error": {"message": "Not Found", "name": "HTTPError"}}, 404)
    error_type = BitmexError
    strict_limits = {"rate_limit": 1, "rate_window_s": 5}

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        super().__init__(market, settings, clock)
        s = self.settings
        for key, allowed in {"count_over_max": ("error", "clamp"),
                             "unknown_symbol": ("empty", "error"),
                             "last_size": ("null", "trade")}.items():
            if s[key] not in allowed:
                raise ValueError(f"bitmex {key} must be one of {allowed}")
        self.budget = fmt.RequestBudget(int(s["rate_limit"]), float(s["rate_window_s"]))
        self.symbols = {fmt.symbol_of(i): i for i in market.instruments}

    def reset(self) -> None:
        self.budget.reset()

    def admit(self, request: Request, matched: Route | None) -> Headers:
        admitted, remaining, full_s, wait_s = self.budget.take(request.client)
        now_s = self.clock.now_ns() / 1e9
        # [C] on every response; Reset is when the budget is whole again (unix seconds).
        headers = [("X-RateLimit-Limit", str(self.budget.limit)),
                   ("X-RateLimit-Remaining", str(remaining)),
                   ("X-RateLimit-Reset", str(math.ceil(now_s + full_s)))]
        if not admitted:
            retry = max(1, math.ceil(wait_s))
            body = {"error": {"message": f"Rate limit exceeded, retry in {retry} seconds.",
                              "name": "RateLimitError"}}  # [C: real body in 3rd-party logs]
            raise Refused(Response.json(body, 429, headers + [("Retry-After", str(retry))]))
        return headers

    def error_reply(self, exc: BitmexError) -> Response:
        return Response.json({"error": {"message": exc.message, "name": exc.name}}, exc.status)

    def error_in_200(self) -> Any:
        return {"error": {"message": "Service unavailable", "name": "HTTPError"}}

    # -- helpers ----------------------------------------------------------------------

    def _query(self, params: dict[str, list[str]]) -> _Query:
        return _Query(params, int(self.settings["count_max"]), self.settings["count_over_max"])

    def _inst(self, q: _Query) -> Instrument | None:
        """The instrument, or None for an unknown symbol answered with an empty list."""
        if q.symbol is None:
            # Real BitMEX mixes every instrument; this emulator serves one at a time.
            raise BitmexError("symbol is required by the dccd emulator")
        inst = self.symbols.get(q.symbol)
        if inst is not None and self.market.is_listed(inst.symbol, self.clock.now_ns()):
            return inst
        if self.settings["unknown_symbol"] == "error":
            raise BitmexError(f"Unknown symbol {q.symbol}", 404)
        return None

    def _until(self, q: _Query, now: int) -> int:
        """Exclusive upper bound in ns for trade timestamps."""
        if q.end_ns is None:
            return now
        return min(now, q.end_ns + (MS if self.settings["end_time_inclusive"] else 0))

    # -- endpoints --------------------------------------------------------------------

    @route("/api/v1/instrument/active")
    async def instrument_active(self, params: dict[str, list[str]]) -> Any:
        now = self.clock.now_ns()
        return [fmt.instrument_item(i, now) for i in self.symbols.values()
                if self.market.is_listed(i.symbol, now)]

    @route("/api/v1/wallet/assets")
    async def wallet_assets(self, params: dict[str, list[str]]) -> Any:
        codes = [c for i in self.market.instruments for c in (i.base, i.quote)]
        return fmt.assets_items(codes)

    @route("/api/v1/trade/bucketed", data=True)
    async def bucketed(self, params: dict[str, list[str]]) -> Any:
        q = self._query(params)
        code = q.get("binSize") or "1m"  # [C] default 1m
        span = BINS.get(code)
        if span is None:
            raise BitmexError(f"Invalid binSize: must be one of {', '.join(BINS)}.")
        partial = q.flag("partial")  # [C] default false: no still-forming bucket
        inst = self._inst(q)
        if inst is None:
            return []
        step = span.fixed_ns
        assert step is not None
        now = self.clock.now_ns()
        # Filters apply to the bucket's END timestamp: open = timestamp - step.
        lo = q.start_ns - step if q.start_ns is not None else 0
        hi = now + 1 if partial else now - step + 1  # opens < hi
        if q.end_ns is not None:
            hi = min(hi, q.end_ns - step + (1 if self.settings["end_time_inclusive"] else 0))
        if q.reverse:
            hi -= q.start * step  # `start` skips the newest rows
        else:
            lo = max(span.ceil(lo), span.floor(inst.listed_ns)) + q.start * step
        bars = await asyncio.to_thread(self.market.bars, inst.symbol, span, lo, hi, now,
                                       limit=q.count, newest=q.reverse)
        return await asyncio.to_thread(self._bucket_rows, bars, inst, step, q.reverse, now)

    def _bucket_rows(self, bars: Bars, inst: Instrument, step: int, reverse: bool,
                     now: int) -> list[dict[str, Any]]:
        if len(bars) == 0:
            return []
        prev = self.market.last_price_before(inst.symbol, int(bars.open_ns[0]))
        sizes: list[int | None] | None = None
        if self.settings["last_size"] == "trade":
            sizes = []
            for o, n in zip(bars.open_ns.tolist(), bars.trades.tolist(), strict=True):
                last = self.market.trades_window(inst.symbol, o, min(o + step, now), 1, True) \
                    if n else None
                sizes.append(fmt.to_raw(int(last.qty[-1]) * inst.lot_e8, inst.base)
                             if last is not None and len(last) else None)
        rows = fmt.bucket_items(bars, inst, step, prev, sizes)
        if reverse:
            rows.reverse()
        return rows

    @route("/api/v1/trade", data=True)
    async def trade(self, params: dict[str, list[str]]) -> Any:
        q = self._query(params)
        inst = self._inst(q)
        if inst is None:
            return []
        return await asyncio.to_thread(self._trade_rows, q, inst)

    def _trade_rows(self, q: _Query, inst: Instrument) -> list[dict[str, Any]]:
        m, sym = self.market, inst.symbol
        now = self.clock.now_ns()
        until = self._until(q, now)
        # Offsets are exact in trade ids: the id of the first trade at or after a time is
        # the count of trades before it.
        if q.reverse:
            top = m.trade_id_at(sym, until) - q.start
            tr = m.trades_before_id(sym, top, q.count, until)
            if q.start_ns is not None:
                tr = tr.take(tr.ts_ns >= q.start_ns)
        else:
            first = m.trade_id_at(sym, q.start_ns) if q.start_ns is not None else 0
            tr = m.trades_from_id(sym, first + q.start, q.count, until)
        if len(tr) == 0:
            return []
        # Enough history to know the tick direction of the page's first trade.
        prior = m.trades_before_id(sym, int(tr.id[0]), 100, until)
        rows = fmt.trade_items(tr, inst, prior.price.tolist())
        if q.reverse:
            rows.reverse()
        return rows

