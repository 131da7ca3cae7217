"""The emulated venues. A new venue is one module and one line in :data:`VENUES`.

Each venue class takes ``(market, settings, clock)`` (see :class:`..http.Venue`) and is
mounted by the server at ``/<name>``.
"""

from __future__ import annotations

from ..http import Venue
from .binance import BinanceVenue

VENUES: dict[str, type[Venue]] = {
    "binance": BinanceVenue,
}

__all__ = ["VENUES", "BinanceVenue"]
