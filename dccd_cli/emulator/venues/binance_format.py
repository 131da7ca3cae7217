"""Binance's wire format: parameter validation with its documented errors, and the JSON
shapes of exchangeInfo, klines, aggTrades and trades (decimal strings, 8 places)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson

from dccd_cli.emulator.bars import Bars
from dccd_cli.emulator.instruments import (
    Instrument,
    format_e8,
    format_e8_column,
    quote_e8,
    quote_e8_column,
)
from dccd_cli.emulator.trades import AggTrades, Trades
from dccd_cli.timeutil import MINUTE_NS, MS

_LONG_RE = re.compile(r"^[0-9]{1,20}$")
_LONG_RANGE = "^[0-9]{1,20}$"
_SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_SYMBOL_RANGE = "^[A-Z0-9-_.]{1,20}$"
_SYMBOLS_RANGE = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
_TZ_RE = re.compile(r"^([+-]?)([0-9]{1,2})(?::([0-9]{2}))?$")
_INT64_MAX = (1 << 63) - 1
# [B] how Binance tells microseconds from milliseconds ("can be passed in milliseconds or
# microseconds", rest-api.md): by magnitude; 1e15 us is 1970-01-12, 1e15 ms year 33658.
_MICROS_FROM = 10**15


class BinanceError(Exception):
    """A request Binance refuses: HTTP ``status`` with body ``{"code", "msg"}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def limited_body(limit: int, window_s: float) -> dict[str, Any]:
    """[C] errors.md -1003, the 2022-12-13 wording."""
    if window_s % 60 == 0:
        per = f"{int(window_s // 60)} MINUTE" if window_s != 60 else "1 MINUTE"
    else:
        per = f"{int(window_s)} SECOND"
    return {"code": -1003, "msg": f"Too much request weight used; current limit is {limit} "
            f"request weight per {per}. Please use WebSocket Streams for live updates to "
            "avoid polling the API."}


def banned_body(until_ms: int) -> dict[str, Any]:
    """[C] errors.md -1003, IP ban wording."""
    return {"code": -1003, "msg": f"Way too much request weight used; IP banned until "
            f"{until_ms}. Please use WebSocket Streams for live updates to avoid bans."}


class ParamReader:
    """Query parameters, read the way Binance validates them (errors.md 11xx)."""

    def __init__(self, params: dict[str, list[str]]) -> None:
        self.params = params

    def get(self, name: str) -> str | None:
        values = self.params.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise BinanceError(-1101, "Duplicate values for a parameter detected.")
        return values[0]

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was "
                               "empty/null, or malformed.")
        return value

    def symbol(self) -> str:
        value = self.required("symbol")
        if not _SYMBOL_RE.match(value):
            raise BinanceError(-1100, "Illegal characters found in parameter 'symbol'; "
                               f"legal range is '{_SYMBOL_RANGE}'.")
        return value

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if not _LONG_RE.match(value) or int(value) > _INT64_MAX:
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; "
                               f"legal range is '{_LONG_RANGE}'.")
        return int(value)

    def time(self, name: str) -> int | None:
        """A timestamp parameter in ns (sent in ms, or in us when that large)."""
        value = self.integer(name)
        if value is None:
            return None
        return value * 1000 if value >= _MICROS_FROM else value * MS

    def time_zone(self) -> int:
        """[C] ``timeZone``: hours[:minutes] in [-12:00, +14:00]; the offset in ns."""
        value = self.get("timeZone")
        if value is None or value == "":
            return 0
        m = _TZ_RE.match(value)
        minutes = int(m.group(2)) * 60 + int(m.group(3) or 0) if m else None
        if m is None or minutes is None or (m.group(3) and int(m.group(3)) >= 60):
            raise BinanceError(-1130, "Data sent for parameter 'timeZone' is not valid.")
        signed = -minutes if m.group(1) == "-" else minutes
        if not -12 * 60 <= signed <= 14 * 60:
            raise BinanceError(-1130, "Data sent for parameter 'timeZone' is not valid.")
        return signed * MINUTE_NS

    def symbol_list(self) -> list[str] | None:
        """``symbol=`` or ``symbols=["A","B"]`` of exchangeInfo; None when neither."""
        one, many = self.get("symbol"), self.get("symbols")
        if one is not None and many is not None:
            raise BinanceError(-1128, "Combination of optional parameters invalid.")  # [B]
        if one is not None:
            return [self.symbol()]
        if many is None:
            return None
        try:
            names = orjson.loads(many)
        except orjson.JSONDecodeError:
            names = None
        if not isinstance(names, list) or not all(
                isinstance(n, str) and _SYMBOL_RE.match(n) for n in names):
            raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'; "
                               f"legal range is '{_SYMBOLS_RANGE}'.")
        return names


def _filters(inst: Instrument) -> list[dict[str, Any]]:
    tick, lot = format_e8(inst.tick_e8), format_e8(inst.lot_e8)
    return [
        {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000",
         "tickSize": tick},
        {"filterType": "LOT_SIZE", "minQty": lot, "maxQty": "9000.00000000", "stepSize": lot},
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
         "stepSize": "0.00000000"},
        {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10,
         "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10,
         "maxTrailingBelowDelta": 2000},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
         "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
        {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
    ]


def _interval(window_s: float) -> tuple[str, int]:
    w = int(window_s)
    if w % 86400 == 0:
        return "DAY", w // 86400
    if w % 60 == 0:
        return "MINUTE", w // 60
    return "SECOND", max(w, 1)


def exchange_info(insts: list[tuple[Instrument, str]], server_ms: int,
                  settings: dict[str, Any]) -> dict[str, Any]:
    """[C] rest-api.md "Exchange information" and filters.md; ``insts`` pairs each
    instrument with its status (TRADING, or BREAK during maintenance)."""
    interval, num = _interval(settings["window_s"])
    symbols = [{
        "symbol": inst.base + inst.quote, "status": status,
        "baseAsset": inst.base, "baseAssetPrecision": 8,
        "quoteAsset": inst.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                       "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "opoAllowed": True,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
        "cancelReplaceAllowed": True, "amendAllowed": True, "pegInstructionsAllowed": True,
        "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": _filters(inst), "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH",
                                            "DECREMENT"],
    } for inst, status in insts]
    return {
        "timezone": "UTC",
        "serverTime": server_ms,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": interval, "intervalNum": num,
             "limit": int(settings["weight_limit"])},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            # [C] CHANGELOG: 61,000 per 5 minutes, raised to 300,000 from 2026-04-02.
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
             "limit": 300000},
        ],
        "exchangeFilters": [],
        "symbols": symbols,
    }


def kline_rows(bars: Bars, inst: Instrument) -> list[list[Any]]:
    """[C] ``[openTime, o, h, l, c, volume, closeTime, quoteVolume, trades, takerBuyBase,
    takerBuyQuote, "0"]``; closeTime = next open - 1 ms."""
    t, lot, n = inst.tick_e8, inst.lot_e8, len(bars.open_ns)
    # Formatted as two long columns rather than eight short ones: fewer calls into Arrow.
    plain = format_e8_column(np.concatenate([bars.open * t, bars.high * t, bars.low * t,
                                             bars.close * t, bars.volume * lot,
                                             bars.buy_volume * lot]))
    quote = quote_e8_column(np.concatenate([bars.quote_volume, bars.buy_quote_volume]), t, lot)
    cols = zip((bars.open_ns // MS).tolist(), plain[:n], plain[n:2 * n], plain[2 * n:3 * n],
               plain[3 * n:4 * n], plain[4 * n:5 * n], (bars.end_ns // MS - 1).tolist(),
               quote[:n], bars.trades.tolist(), plain[5 * n:], quote[n:], strict=True)
    return [[*row, "0"] for row in cols]


def agg_trade_items(agg: AggTrades, inst: Instrument) -> list[dict[str, Any]]:
    """[C] ``{a, p, q, f, l, T, m, M}``."""
    t, lot = inst.tick_e8, inst.lot_e8
    cols = zip(agg.id.tolist(), format_e8_column(agg.price * t), format_e8_column(agg.qty * lot),
               agg.first_id.tolist(), agg.last_id.tolist(), (agg.ts_ns // MS).tolist(),
               agg.buyer_maker.tolist(), strict=True)
    return [{"a": a, "p": p, "q": q, "f": f, "l": last, "T": ts, "m": m, "M": True}
            for a, p, q, f, last, ts, m in cols]


def trade_items(tr: Trades, inst: Instrument) -> list[dict[str, Any]]:
    """[C] ``{id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch}``."""
    t, lot = inst.tick_e8, inst.lot_e8
    cols = zip(tr.id.tolist(), tr.price.tolist(), tr.qty.tolist(), tr.ts_ns.tolist(),
               tr.buyer_maker.tolist(), strict=True)
    return [{"id": i, "price": format_e8(p * t), "qty": format_e8(q * lot),
             "quoteQty": format_e8(quote_e8(p * q, t, lot)), "time": ts // MS,
             "isBuyerMaker": m, "isBestMatch": True} for i, p, q, ts, m in cols]
