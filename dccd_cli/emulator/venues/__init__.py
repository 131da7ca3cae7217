"""The emulated venues. A new venue is one module and one line in :data:`VENUE_CLASSES`.

Each venue class takes ``(market, settings, clock)`` (see :class:`..http.Venue`) and is
mounted by the server at ``/<name>``. Venues are imported when the registry is first read,
so a server only pays for the venues it loads.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from dccd_cli.emulator.venue import Venue

# name -> "module:Class" inside this package
VENUE_CLASSES: dict[str, str] = {
    "binance": "binance:BinanceVenue",
    "coinbase": "coinbase:CoinbaseVenue",
    "kraken": "kraken:KrakenVenue",
    "bitfinex": "bitfinex:BitfinexVenue",
    "okx": "okx:OkxVenue",
    "bybit": "bybit:BybitVenue",
    "bitstamp": "bitstamp:BitstampVenue",
    "bitmex": "bitmex:BitmexVenue",
}


@cache
def venues() -> dict[str, type[Venue[Any]]]:
    """Name -> venue class, for every venue whose module is present."""
    out: dict[str, type[Venue[Any]]] = {}
    for name, target in VENUE_CLASSES.items():
        module_name, cls_name = target.split(":")
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module_name}":
                raise  # a venue that exists but fails to import is a bug, not an absence
            continue
        out[name] = getattr(module, cls_name)
    return out


__all__ = ["VENUE_CLASSES", "venues"]
