"""BitMEX's wire format for spot pairs: assets and their scales, instruments, buckets,
trades, and the continuously refilled request budget behind the ``X-RateLimit-*`` headers.

Units [C: ccxt 4.5.83 reads them so]: spot sizes and volumes are *raw* integers of the base
asset's smallest unit (satoshis for XBt, scale 8; gwei for ETH, scale 9) — ccxt multiplies
them by ``10**-scale`` from ``wallet/assets``. ``homeNotional`` is the same amount in base
units, ``foreignNotional`` in quote units, and ``turnover``/``grossValue`` are the quote
amount in raw quote units (USDt, scale 6) [B: shown for contracts only]. Prices are plain
JSON numbers.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dccd_cli.emulator.bars import Bars
from dccd_cli.emulator.instruments import E8, Instrument, quote_e8
from dccd_cli.emulator.limiter import TokenBuckets
from dccd_cli.emulator.trades import Trades
from dccd_cli.timeutil import MS, NS

# asset -> (currency id, scale, name) [C: ccxt fixtures for XBt and USDt; B for the rest].
ASSETS: dict[str, tuple[str, int, str]] = {
    "XBT": ("XBt", 8, "Bitcoin"), "USDT": ("USDt", 6, "Tether"), "ETH": ("Gwei", 9, "Ether"),
}
ALIASES = {"BTC": "XBT"}  # BitMEX names bitcoin XBT


def asset(code: str) -> tuple[str, str, int, str]:
    """``(asset, currency, scale, name)`` of one of the model's currency codes."""
    name = ALIASES.get(code, code)
    currency, scale, full = ASSETS.get(name, (name, 8, name))
    return name, currency, scale, full


def raw_per_e8(code: str) -> tuple[int, int]:
    """Raw units per 1e-8 unit of a currency, as a fraction ``(num, den)``."""
    scale = asset(code)[2]
    return (10 ** (scale - 8), 1) if scale >= 8 else (1, 10 ** (8 - scale))


def to_raw(value_e8: int, code: str) -> int:
    """A 1e-8 amount in the currency's raw units (rounded half-up when coarser)."""
    num, den = raw_per_e8(code)
    return value_e8 * num if den == 1 else (value_e8 + den // 2) // den


def symbol_of(inst: Instrument) -> str:
    return f"{asset(inst.base)[0]}_{asset(inst.quote)[0]}"


def iso(ns: int) -> str:
    """``2019-01-05T21:45:31.597Z``: BitMEX timestamps, always with milliseconds."""
    dt = datetime.fromtimestamp(ns // NS, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % NS // MS:03d}Z"


def parse_time(text: str) -> int:
    """An ISO date or datetime (naive = UTC) in ns; ValueError when it is neither."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    dt = datetime.fromisoformat(raw)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * NS + dt.microsecond * 1000


def match_id(symbol: str, trade_id: int) -> str:
    """A stable UUID for the model's trade id (BitMEX's ``trdMatchID``)."""
    digest = hashlib.blake2b(f"{symbol}:{trade_id}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest))


def assets_items(codes: list[str]) -> list[dict[str, Any]]:
    """``wallet/assets``: what ccxt needs to scale spot sizes (``asset``, ``currency``,
    ``scale``), plus the usual descriptive fields."""
    out = []
    for code in dict.fromkeys(codes):
        name, currency, scale, full = asset(code)
        out.append({"asset": name, "currency": currency, "majorCurrency": name,
                    "name": full, "currencyType": "Crypto", "scale": scale,
                    "enabled": True, "isMarginCurrency": name in ("XBT", "USDT"),
                    "minDepositAmount": None, "minWithdrawalAmount": None,
                    "maxWithdrawalAmount": None, "networks": []})
    return out


def instrument_item(inst: Instrument, now_ns: int) -> dict[str, Any]:
    """One spot instrument of ``instrument/active`` (``typ`` IFXXXP = spot [C: ccxt])."""
    base, quote = asset(inst.base), asset(inst.quote)
    return {
        "symbol": symbol_of(inst), "rootSymbol": base[0], "state": "Open", "typ": "IFXXXP",
        "listing": iso(inst.listed_ns), "front": iso(inst.listed_ns), "expiry": None,
        "settle": None, "positionCurrency": base[0], "underlying": base[0],
        "quoteCurrency": quote[0], "underlyingSymbol": "", "reference": "BMEX",
        "referenceSymbol": "", "maxOrderQty": 10 ** 15, "maxPrice": 10_000_000,
        "lotSize": to_raw(inst.lot_e8, inst.base), "tickSize": inst.tick_e8 / E8,
        "multiplier": 1, "settlCurrency": "", "underlyingToPositionMultiplier": 10 ** base[2],
        "quoteToSettleMultiplier": 10 ** quote[2], "isQuanto": False, "isInverse": False,
        "initMargin": 1, "maintMargin": 0, "makerFee": 0.001, "takerFee": 0.001,
        "hasLiquidity": True, "timestamp": iso(now_ns),
    }


def bucket_items(bars: Bars, inst: Instrument, bin_ns: int, prev_close: int,
                 last_sizes: list[int | None] | None) -> list[dict[str, Any]]:
    """Buckets oldest first: ``timestamp`` is the bucket's END and ``open`` the previous
    bucket's close [C]; high/low come from the bucket's own trades (in the real sample the
    low can lie above the open) and empty buckets are flat with ``vwap``/``lastSize`` null.
    ``prev_close``: close (ticks) before the first bar."""
    t, lot = inst.tick_e8, inst.lot_e8
    sym = symbol_of(inst)
    opens = [prev_close, *bars.close.tolist()[:-1]]
    cols = zip(bars.open_ns.tolist(), opens, bars.high.tolist(), bars.low.tolist(),
               bars.close.tolist(), bars.volume.tolist(), bars.quote_volume.tolist(),
               bars.trades.tolist(), strict=True)
    out = []
    for k, (o, op, hi, lo, cl, v, qv, n) in enumerate(cols):
        quote = quote_e8(qv, t, lot)
        out.append({
            "timestamp": iso(o + bin_ns), "symbol": sym, "open": op * t / E8,
            "high": hi * t / E8, "low": lo * t / E8, "close": cl * t / E8, "trades": n,
            "volume": to_raw(v * lot, inst.base),
            "vwap": round(quote / (v * lot), 8) if v else None,
            "lastSize": last_sizes[k] if last_sizes is not None and n else None,
            "turnover": to_raw(quote, inst.quote), "homeNotional": v * lot / E8,
            "foreignNotional": quote / E8,
        })
    return out


_DIRECTIONS = {(1, True): "PlusTick", (-1, False): "MinusTick", (0, True): "ZeroPlusTick",
               (0, False): "ZeroMinusTick"}


def trade_items(tr: Trades, inst: Instrument, prior: list[int]) -> list[dict[str, Any]]:
    """Trades in id order. ``prior``: prices (ticks) of the trades just before, oldest
    first, from which the first trade's ``tickDirection`` is found (the last move wins; a
    run of equal prices keeps the direction of the move before it)."""
    t, lot = inst.tick_e8, inst.lot_e8
    sym = symbol_of(inst)
    up, last = True, None
    for price in prior:
        if last is not None and price != last:
            up = price > last
        last = price
    out = []
    cols = zip(tr.id.tolist(), tr.ts_ns.tolist(), tr.price.tolist(), tr.qty.tolist(),
               tr.buyer_maker.tolist(), strict=True)
    for i, ts, p, q, maker in cols:
        move = 0 if last is None or p == last else (1 if p > last else -1)
        if move:
            up = move > 0
        last = p
        quote = quote_e8(p * q, t, lot)
        out.append({
            "timestamp": iso(ts), "symbol": sym, "side": "Sell" if maker else "Buy",
            "size": to_raw(q * lot, inst.base), "price": p * t / E8,
            "tickDirection": _DIRECTIONS[(move, up)], "trdMatchID": match_id(sym, i),
            "grossValue": to_raw(quote, inst.quote), "homeNotional": q * lot / E8,
            "foreignNotional": quote / E8, "trdType": "Regular",
        })
    return out


class RequestBudget:
    """A token bucket per client: ``limit`` requests, refilled continuously over
    ``window_s`` ("this counter refills continuously" [C: BitMEX REST docs]), with what
    BitMEX's headers say about it. Real monotonic time, never the market clock."""

    def __init__(self, limit: int, window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.rate = limit, limit / window_s
        self._buckets = TokenBuckets(float(limit), self.rate, clock=clock)

    def reset(self) -> None:
        self._buckets.reset()

    def take(self, key: str) -> tuple[bool, int, float, float]:
        """``(admitted, remaining, seconds until full, seconds until one request)``."""
        admitted, tokens = self._buckets.take(key)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
        return admitted, math.floor(tokens), (self.limit - tokens) / self.rate, wait
