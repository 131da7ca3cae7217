"""Coinbase Exchange public market data (``https://api.exchange.coinbase.com``).

Facts (``docs/exchanges.md#coinbase``) are tagged [C] documented (docs.cdp.coinbase.com
exchange reference and pagination page), [B] believed — every [B] behaviour is a venue
setting. One real row of each response, from the (GDAX-era and current) docs::

    candles: [1415398768, 0.32, 4.2, 0.35, 4.2, 12.3]       [time, low, high, open, close, volume]
    trades:  {"time": "2020-03-20T00:36:59.860Z", "trade_id": 86327327,
              "price": "6225.32000000", "size": "0.06469797", "side": "sell"}

Errors are ``{"message": ...}`` with a 4xx status. Trades page by trade id cursors in the
``CB-BEFORE`` / ``CB-AFTER`` headers; candles by time window (at most 300 per request).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from dccd_cli.emulator.bars import Bars
from dccd_cli.emulator.instruments import E8, Instrument, format_e8
from dccd_cli.emulator.limiter import TokenBuckets
from dccd_cli.emulator.market import MarketModel
from dccd_cli.emulator.trades import Trades
from dccd_cli.emulator.venue import Clock, Headers, Refused, Request, Response, Route, Venue, route
from dccd_cli.timeutil import NS, Span, datetime_to_ns, ns_to_datetime

# [C] "granularity must be one of 60, 300, 900, 3600, 21600, 86400".
GRANULARITIES: dict[int, Span] = {60: Span.parse("1m"), 300: Span.parse("5m"),
                                  900: Span.parse("15m"), 3600: Span.parse("1h"),
                                  21600: Span.parse("6h"), 86400: Span.parse("1d")}
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class CoinbaseError(Exception):
    """A refused request: HTTP ``status`` with body ``{"message": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _num(value_e8: int) -> float:
    """An exact 1e-8 count as the nearest float (candle values are JSON numbers)."""
    return value_e8 / E8


def candle_rows(bars: Bars, inst: Instrument) -> list[list[Any]]:
    """[C] ``[time_s, low, high, open, close, volume]``, newest first."""
    t, lot = inst.tick_e8, inst.lot_e8
    cols = zip(bars.open_ns.tolist(), bars.low.tolist(), bars.high.tolist(),
               bars.open.tolist(), bars.close.tolist(), bars.volume.tolist(), strict=True)
    rows = [[o // NS, _num(lo * t), _num(hi * t), _num(op * t), _num(cl * t), _num(v * lot)]
            for o, lo, hi, op, cl, v in cols]
    rows.reverse()
    return rows


def iso_time(ns: int, digits: int) -> str:
    """``2020-03-20T00:36:59.860000Z``: UTC with ``digits`` decimals of the second."""
    base = ns_to_datetime(ns - ns % NS).strftime("%Y-%m-%dT%H:%M:%S")
    if digits <= 0:
        return base + "Z"
    frac = f"{ns % NS:09d}"[:digits]
    return f"{base}.{frac}Z"


def trade_items(tr: Trades, inst: Instrument, digits: int) -> list[dict[str, Any]]:
    """[C] ``{time, trade_id, price, size, side}``, newest first; ``side`` is the maker's:
    a buyer-maker trade (the taker sold) is ``"buy"``."""
    t, lot = inst.tick_e8, inst.lot_e8
    cols = zip(tr.ts_ns.tolist(), tr.id.tolist(), tr.price.tolist(), tr.qty.tolist(),
               tr.buyer_maker.tolist(), strict=True)
    items = [{"time": iso_time(ts, digits), "trade_id": i, "price": format_e8(p * t),
              "size": format_e8(q * lot), "side": "buy" if m else "sell"}
             for ts, i, p, q, m in cols]
    items.reverse()
    return items


def product(inst: Instrument) -> dict[str, Any]:
    """One ``GET /products`` entry, with the fields of the real list (ccxt's sample)."""
    return {
        "id": inst.symbol, "base_currency": inst.base, "quote_currency": inst.quote,
        "quote_increment": inst.tick, "base_increment": inst.lot,
        "display_name": f"{inst.base}/{inst.quote}", "min_market_funds": "1",
        "margin_enabled": False, "fx_stablecoin": False,
        "max_slippage_percentage": "0.02000000", "post_only": False, "limit_only": False,
        "cancel_only": False, "trading_disabled": False, "status": "online",
        "status_message": "", "auction_mode": False,
    }


class CoinbaseVenue(Venue[CoinbaseError]):
    """``/coinbase/{time,products,products/{id},products/{id}/candles,
    products/{id}/trades}`` over the shared market; product ids are ``BASE-QUOTE``."""

    name = "coinbase"
    defaults: dict[str, Any] = {
        "rate_per_s": 10.0,  # [C] public endpoints: 10 requests per second per IP
        "burst": 15,  # [C] "bursts up to 15"
        "retry_after": False,  # [B] no Retry-After on a public 429
        "candles_max": 300,  # [C] at most 300 aggregations per request
        "candles_end_inclusive": True,  # [B] start and end both inclusive (301 rows max)
        "candles_default_count": 300,  # [B] rows without start/end (third parties saw 350)
        "unix_seconds": True,  # [B] start/end also accepted as Unix seconds
        "cursor_inclusive": False,  # [B] after=X: ids < X, before=X: ids > X (True: <=, >=)
        "trades_limit_over_max": "clamp",  # [B] limit > 1000: "clamp" or "error" (400)
        "trade_time_digits": 6,  # [B] live responses show microseconds; the docs' example 3
    }
    trailing_slash = True
    charge_unknown = True  # every request counts, an unknown path too
    not_found = Response.json({"message": "NotFound"}, 404)
    error_type = CoinbaseError
    strict_limits = {"rate_per_s": 1.0, "burst": 2}

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        super().__init__(market, settings, clock)
        s = self.settings
        if s["trades_limit_over_max"] not in ("clamp", "error"):
            raise ValueError("coinbase trades_limit_over_max must be 'clamp' or 'error'")
        rate, burst = float(s["rate_per_s"]), float(s["burst"])
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        # [C] "10 requests per second, bursts up to 15": the wording of a token bucket,
        # not of fixed windows.
        self.buckets = TokenBuckets(burst, rate)
        self.products = {i.symbol: i for i in market.instruments}

    def reset(self) -> None:
        self.buckets.reset()

    def admit(self, request: Request, matched: Route | None) -> Headers:
        if not self.buckets.take(request.client).admitted:
            headers = [("Retry-After", "1")] if self.settings["retry_after"] else []
            # [B] third-party measurements of the body.
            raise Refused(Response.json({"message": "Public rate limit exceeded"}, 429,
                                        headers))
        return []

    def query(self, request: Request) -> dict[str, str]:
        return {k: v[-1] for k, v in request.params().items()}

    def error_reply(self, exc: CoinbaseError) -> Response:
        return Response.json({"message": exc.message}, exc.status)

    def error_in_200(self) -> Any:
        return {"message": "Internal server error"}

    # -- endpoints --------------------------------------------------------------------

    @route("/time")
    async def server_time(self, params: dict[str, str]) -> Any:
        now = self.clock.now_ns()
        return {"iso": iso_time(now, 3), "epoch": now / NS}

    @route("/products")
    async def product_list(self, params: dict[str, str]) -> Any:
        now = self.clock.now_ns()
        return [product(i) for i in self.products.values()
                if self.market.is_listed(i.symbol, now)]

    @route("/products/{product_id}")
    async def product_info(self, params: dict[str, str], product_id: str) -> Any:
        return product(self._product(product_id, self.clock.now_ns()))


    def _product(self, product_id: str, now: int) -> Instrument:
        # Product ids are case-insensitive (third-party client docs); a product whose
        # listing is still in the future (fixed clock) does not exist yet.
        inst = self.products.get(product_id.upper())
        if inst is None or not self.market.is_listed(inst.symbol, now):
            raise CoinbaseError(404, "NotFound")
        return inst

    def _time(self, params: dict[str, str], name: str) -> int | None:
        """An ISO-8601 instant (naive = UTC), or [B] Unix seconds, in ns."""
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if _NUMBER.match(raw) and self.settings["unix_seconds"]:
            whole, _, frac = raw.partition(".")
            return int(whole) * NS + int((frac + "000000000")[:9])
        try:
            dt = datetime.fromisoformat(raw.replace(" ", "+"))  # '+' arrives as a space
        except ValueError:
            raise CoinbaseError(400, f"Invalid {name}") from None  # [B] wording unknown
        return datetime_to_ns(dt if dt.tzinfo else dt.replace(tzinfo=UTC))

    @route("/products/{product_id}/candles", data=True)
    async def candles(self, params: dict[str, str], product_id: str) -> list[list[Any]]:
        now = self.clock.now_ns()
        inst = self._product(product_id, now)
        raw = params.get("granularity")
        gran = int(raw) if raw is not None and raw.isdigit() else None
        span = GRANULARITIES.get(gran) if gran is not None else None
        if span is None or gran is None:
            raise CoinbaseError(400, "Unsupported granularity")  # [B] wording
        step = gran * NS
        start, end = self._time(params, "start"), self._time(params, "end")
        if start is None or end is None:
            # [C] "If the start or end fields are not provided, both fields are ignored"
            # and a range ending now is chosen: the last N intervals, the forming one too.
            count = int(self.settings["candles_default_count"])
            lo, hi = span.floor(now) - (count - 1) * step, now + 1
        else:
            cap = int(self.settings["candles_max"])
            if end - start > cap * step:
                # [C] rejected beyond 300; [B] the wording, and that the count is the
                # number of intervals (end - start) / granularity.
                raise CoinbaseError(400, "granularity too small for the requested time "
                                    f"range. Count of aggregations requested exceeds {cap}")
            # [C] candles "may precede your declared start": the one holding it is in.
            lo = span.floor(start)
            hi = end + 1 if self.settings["candles_end_inclusive"] else end
        if hi <= lo:
            return []
        # [C] "No data is published for intervals where there are no ticks."
        bars = await asyncio.to_thread(self.market.bars, inst.symbol, span, lo, hi, now,
                                       empty=False)
        return candle_rows(bars, inst)

    def _cursor(self, params: dict[str, str], name: str) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if not raw.isdigit():
            raise CoinbaseError(400, f"Invalid {name}")  # [B] wording unknown
        return int(raw)

    @route("/products/{product_id}/trades", data=True)
    async def trades(self, params: dict[str, str], product_id: str) -> Response:
        now = self.clock.now_ns()
        inst = self._product(product_id, now)
        raw = params.get("limit")
        limit = 1000  # [C] default and maximum 1000
        if raw is not None and raw != "":
            if not raw.isdigit() or int(raw) < 1:
                raise CoinbaseError(400, "Invalid limit")  # [B] wording unknown
            limit = int(raw)
            if limit > 1000:
                if self.settings["trades_limit_over_max"] == "error":
                    raise CoinbaseError(400, "Invalid limit")
                limit = 1000
        before, after = self._cursor(params, "before"), self._cursor(params, "after")
        if self.settings["cursor_inclusive"]:  # move the cursors one id outwards
            before = before - 1 if before is not None else None
            after = after + 1 if after is not None else None
        sym = inst.symbol
        if after is not None:
            # [C] after = older data; [B] the cursor is the trade id.
            tr = await asyncio.to_thread(self.market.trades_before_id, sym, after, limit, now)
            if before is not None:
                tr = tr.take(tr.id > before)
        elif before is not None:
            # [B] before = the page of newer trades right after the cursor (ids > X).
            tr = await asyncio.to_thread(self.market.trades_from_id, sym, before + 1, limit,
                                         now)
        else:
            tr = await asyncio.to_thread(self.market.trades_window, sym, 0, now, limit, True)
        items = trade_items(tr, inst, int(self.settings["trade_time_digits"]))
        headers = []
        if items:
            # [C] CB-BEFORE: the first (newest) item; CB-AFTER: the last (oldest).
            headers = [("CB-BEFORE", str(items[0]["trade_id"])),
                       ("CB-AFTER", str(items[-1]["trade_id"]))]
        return Response.json(items, 200, headers)


__all__ = ["GRANULARITIES", "CoinbaseVenue"]
