"""Kraken's wire format: asset and pair names, AssetPairs/Assets entries, OHLC and Trades
rows, and fixed-decimal strings. See :mod:`.kraken` for the endpoints.

Kraken names assets its own way: BTC is ``XBT``; the assets it listed first carry a class
prefix in their internal id (``XXBT``, ``XETH``, fiat ``ZUSD``, ``ZEUR``), later ones do not
(``USDT``, ``SOL``). A pair's internal name (the result key) joins two prefixed ids
(``XXBTZUSD``) when both have one, else it is the altname (``XBTUSDT``, ``ETHUSDT``).
"""

from __future__ import annotations

from typing import Any

from dccd_cli.emulator.bars import Bars
from dccd_cli.emulator.instruments import E8, Instrument, format_e8, quote_e8
from dccd_cli.emulator.trades import Trades
from dccd_cli.timeutil import NS

# Kraken's short names where they differ from the usual code.
SHORT_NAMES = {"BTC": "XBT", "DOGE": "XDG"}
# Internal ids of the assets Kraken listed first (crypto X-, fiat Z-prefixed).
LEGACY_IDS = {
    "XBT": "XXBT", "ETH": "XETH", "LTC": "XLTC", "XRP": "XXRP", "XLM": "XXLM",
    "ETC": "XETC", "ZEC": "XZEC", "XMR": "XXMR", "XDG": "XXDG", "REP": "XREP",
    "MLN": "XMLN", "USD": "ZUSD", "EUR": "ZEUR", "GBP": "ZGBP", "JPY": "ZJPY",
    "CAD": "ZCAD", "AUD": "ZAUD",
}
MAX_RANK = 998  # position cursors stay inside their millisecond: (rank + 1) us <= 999 us


def short_name(code: str) -> str:
    return SHORT_NAMES.get(code, code)


def asset_id(code: str) -> str:
    """``BTC`` -> ``XXBT``, ``EUR`` -> ``ZEUR``, ``USDT`` -> ``USDT``."""
    short = short_name(code)
    return LEGACY_IDS.get(short, short)


def altname(inst: Instrument) -> str:
    return short_name(inst.base) + short_name(inst.quote)


def pair_key(inst: Instrument) -> str:
    """The internal pair name: ``XXBTZUSD``, ``XBTUSDT``, ``ETHUSDT``, ``SOLEUR``."""
    base, quote = short_name(inst.base), short_name(inst.quote)
    if base in LEGACY_IDS and quote in LEGACY_IDS:
        return LEGACY_IDS[base] + LEGACY_IDS[quote]
    return base + quote


def decimals(increment: str) -> int:
    """Decimal places of an increment string: ``"0.01"`` -> 2, ``"1"`` -> 0."""
    _, _, frac = increment.partition(".")
    return len(frac.rstrip("0"))


def ratio(num: int, den: int, places: int) -> str:
    """``num / den`` (den > 0) as a string with ``places`` decimals, rounded half-even."""
    q, r = divmod(num * 10**places, den)
    if 2 * r > den or (2 * r == den and q % 2):
        q += 1
    sign = "-" if q < 0 else ""
    whole, frac = divmod(abs(q), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}" if places else f"{sign}{whole}"


def fixed(value_e8: int, places: int) -> str:
    """A 1e-8 count as a string with ``places`` decimals, rounded half-even."""
    return ratio(value_e8, E8, places)


_FEES = [[0, 0.4], [10000, 0.35], [50000, 0.24], [100000, 0.22], [250000, 0.2],
         [500000, 0.18], [1000000, 0.16], [2500000, 0.14], [5000000, 0.12],
         [10000000, 0.1]]
_FEES_MAKER = [[0, 0.25], [10000, 0.2], [50000, 0.14], [100000, 0.12], [250000, 0.1],
               [500000, 0.08], [1000000, 0.06], [2500000, 0.04], [5000000, 0.02],
               [10000000, 0.0]]


def asset_pair(inst: Instrument) -> dict[str, Any]:
    """One ``AssetPairs`` entry (the fields of the docs' example; ccxt needs altname, base,
    quote, pair_decimals, lot_decimals and status)."""
    base, quote = short_name(inst.base), short_name(inst.quote)
    return {
        "altname": base + quote, "wsname": f"{base}/{quote}",
        "aclass_base": "currency", "base": asset_id(inst.base),
        "aclass_quote": "currency", "quote": asset_id(inst.quote), "lot": "unit",
        "cost_decimals": 5, "pair_decimals": decimals(inst.tick),
        "lot_decimals": decimals(inst.lot), "lot_multiplier": 1,
        "leverage_buy": [], "leverage_sell": [], "fees": _FEES, "fees_maker": _FEES_MAKER,
        "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40,
        "ordermin": inst.lot, "costmin": "0.5", "tick_size": inst.tick, "status": "online",
    }


def asset(code: str) -> dict[str, Any]:
    """One ``Assets`` entry."""
    return {"aclass": "currency", "altname": short_name(code), "decimals": 10,
            "display_decimals": 5, "status": "enabled"}


def ohlc_rows(bars: Bars, inst: Instrument) -> list[list[Any]]:
    """``[time_s, open, high, low, close, vwap, volume, count]``: prices and vwap with the
    pair's decimals, volume with 8; an empty bar has vwap 0 (as live responses show)."""
    t, lot, places = inst.tick_e8, inst.lot_e8, decimals(inst.tick)
    cols = zip(bars.open_ns.tolist(), bars.open.tolist(), bars.high.tolist(),
               bars.low.tolist(), bars.close.tolist(), bars.volume.tolist(),
               bars.quote_volume.tolist(), bars.trades.tolist(), strict=True)
    rows = []
    for o, op, hi, lo, cl, v, qv, n in cols:
        vwap = ratio(quote_e8(qv, t, lot), v * lot, places) if v else fixed(0, places)
        rows.append([o // NS, fixed(op * t, places), fixed(hi * t, places),
                     fixed(lo * t, places), fixed(cl * t, places), vwap,
                     format_e8(v * lot), n])
    return rows


def position_cursor(ts_ns: int, rank: int) -> int:
    """A ``last`` that names one trade exactly: its millisecond plus (rank + 1) us, where
    ``rank`` counts the trades before it in that millisecond. Kraken's ``last`` is a ns
    timestamp finer than the model's whole milliseconds; without the offset a page ending
    inside a busy millisecond could not be resumed exactly."""
    return ts_ns + (min(rank, MAX_RANK) + 1) * 1000


def trade_rows(tr: Trades, inst: Instrument, price_places: int) -> list[list[Any]]:
    """``[price, volume, time_s, "b"|"s", "m"|"l", misc, trade_id]``; "b"/"s" is the taker
    side. The order type is per taker order (aggregate), drawn from its id."""
    t, lot = inst.tick_e8, inst.lot_e8
    places = max(price_places, decimals(inst.tick))
    cols = zip(tr.price.tolist(), tr.qty.tolist(), tr.ts_ns.tolist(), tr.buyer_maker.tolist(),
               tr.agg_id.tolist(), tr.id.tolist(), strict=True)
    return [[fixed(p * t, places), format_e8(q * lot), ns / NS, "s" if m else "b",
             "l" if (agg * 0x9E3779B1) >> 7 & 3 == 0 else "m", "", i]
            for p, q, ns, m, agg, i in cols]


__all__ = ["altname", "asset", "asset_id", "asset_pair", "decimals", "fixed",
           "ohlc_rows", "pair_key", "position_cursor", "short_name", "trade_rows"]
