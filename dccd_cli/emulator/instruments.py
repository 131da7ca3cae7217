"""The instruments of the synthetic market, and exact decimal formatting of ticks and lots.

Prices are integer *ticks* and quantities integer *lots*; an instrument says what one tick
and one lot are worth as decimal strings ("0.01", "0.00001"). Keeping integers all the way
down is what lets a bar equal the exact sum of its trades (volume, quote volume) with no
floating-point drift, on every venue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.timeutil import MINUTE_NS, datetime_to_ns

E8 = 100_000_000


def _iso_ns(text: str) -> int:
    return datetime_to_ns(datetime.fromisoformat(text).replace(tzinfo=UTC))


def _to_e8(text: str) -> int:
    """A decimal string as an integer count of 1e-8 units ("0.01" -> 1_000_000)."""
    value = Decimal(text) * E8
    if value != value.to_integral_value() or value <= 0:
        raise ValueError(f"increment {text!r} must be a positive multiple of 1e-8")
    return int(value)


@dataclass(frozen=True)
class Instrument:
    """One tradable pair of the synthetic market.

    ``symbol`` is the unified ``BASE-QUOTE`` name; venues derive their own (``BTCUSDT``).
    ``listed`` is an ISO date or datetime (UTC) of the first possible trade, rounded down
    to the minute. ``tick`` and ``lot`` are the price and quantity increments as decimal
    strings (multiples of 1e-8). ``trades_per_day`` is the mean number of individual
    trades a day before the market's ``trades_scale``; ``mean_trade_qty`` the mean trade
    size in base units. ``anchors`` are ``(ISO date, price)`` points of the long-run price
    path (log-linear in between, flat outside); noise with annualised ``volatility`` is
    laid on top. ``burstiness`` widens the minute-to-minute spread of activity (higher
    gives longer stretches of empty minutes on an illiquid pair).
    """

    symbol: str
    listed: str
    tick: str
    lot: str
    trades_per_day: float
    mean_trade_qty: float
    anchors: tuple[tuple[str, float], ...]
    volatility: float = 0.6
    burstiness: float = 0.35
    base: str = field(init=False)
    quote: str = field(init=False)

    def __post_init__(self) -> None:
        base, sep, quote = self.symbol.partition("-")
        if not sep or not base or not quote or "-" in quote:
            raise ValueError(f"instrument symbol {self.symbol!r} must be BASE-QUOTE")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "quote", quote)
        if not self.anchors:
            raise ValueError(f"instrument {self.symbol}: at least one price anchor is needed")

    @property
    def listed_ns(self) -> int:
        """Listing instant in ns, rounded down to the minute."""
        return _iso_ns(self.listed) // MINUTE_NS * MINUTE_NS

    @property
    def tick_e8(self) -> int:
        """One tick in units of 1e-8 quote currency."""
        return _to_e8(self.tick)

    @property
    def lot_e8(self) -> int:
        """One lot in units of 1e-8 base currency."""
        return _to_e8(self.lot)

    def anchor_points(self) -> tuple[list[float], list[float]]:
        """Anchors as (minute indices since the epoch, natural-log prices)."""
        import math

        xs = [_iso_ns(d) / MINUTE_NS for d, _ in self.anchors]
        ys = [math.log(p) for _, p in self.anchors]
        return xs, ys


def format_e8(value_e8: int) -> str:
    """An integer number of 1e-8 units as a Binance-style 8-decimal string."""
    sign = "-" if value_e8 < 0 else ""
    q, r = divmod(abs(value_e8), E8)
    return f"{sign}{q}.{r:08d}"


# Columns whose magnitudes stay below this are formatted in int64 without overflow risk.
_SAFE_INT64 = 2**62


def format_e8_column(values_e8: npt.NDArray[np.int64]) -> list[str]:
    """``format_e8`` of every value of a column, computed in Arrow's C kernels: a page of
    1000 klines has 8000 such cells, and one Python call per cell made formatting the
    emulator's busiest work (~6 ms a page) — the bottleneck of any fast client."""
    v = np.asarray(values_e8)
    if v.dtype.kind not in "iu" or (len(v) and np.abs(v).max() >= _SAFE_INT64):
        return [format_e8(int(x)) for x in v.tolist()]
    whole, frac = np.divmod(np.abs(v.astype(np.int64)), E8)
    text = pc.binary_join_element_wise(
        pc.cast(pa.array(whole), pa.string()),
        pc.utf8_lpad(pc.cast(pa.array(frac), pa.string()), width=8, padding="0"),
        ".",
    )
    negative = v < 0
    if negative.any():
        text = pc.if_else(pa.array(negative), pc.binary_join_element_wise("-", text, ""), text)
    return text.to_pylist()  # type: ignore[no-any-return]


def quote_e8_column(ticklots: npt.NDArray[np.int64], tick_e8: int, lot_e8: int) -> list[str]:
    """``format_e8(quote_e8(x, tick_e8, lot_e8))`` for a column: exact in int64 when one
    tick times one lot is a whole number of 1e-8 units (all default instruments), else
    cell by cell with Python's unbounded integers."""
    per_unit, rest = divmod(tick_e8 * lot_e8, E8)
    x = np.asarray(ticklots)
    if rest or x.dtype.kind not in "iu" or (
            len(x) and np.abs(x).max() >= _SAFE_INT64 // max(per_unit, 1)):
        return [format_e8(quote_e8(int(q), tick_e8, lot_e8)) for q in x.tolist()]
    return format_e8_column(x.astype(np.int64) * per_unit)


def plain_decimal(value_e8: int) -> str:
    """1e-8 units as OKX and Bybit print numbers: plain decimals, no trailing zeros."""
    text = format_e8(value_e8).rstrip("0")
    return text[:-1] if text.endswith(".") else text


def quote_e8(ticklots: int, tick_e8: int, lot_e8: int) -> int:
    """A quote amount given in tick*lot units, in 1e-8 units, rounded half-even when the
    product of increments is finer than 1e-8 (never the case for the default instruments)."""
    num = ticklots * tick_e8 * lot_e8
    q, r = divmod(num, E8)
    if 2 * r > E8 or (2 * r == E8 and q % 2 == 1):
        q += 1
    return q


# The defaults: two liquid majors from Binance's first day and one illiquid fiat pair.
# Anchor prices follow the rough shape of history so that dates "look right" to users.
BTC_USDT = Instrument(
    symbol="BTC-USDT",
    listed="2017-08-17T04:00",
    tick="0.01",
    lot="0.00001",
    trades_per_day=1_000_000,
    mean_trade_qty=0.02,
    anchors=(
        ("2017-08-17", 4300.0), ("2017-12-17", 19000.0), ("2018-02-06", 6900.0),
        ("2018-12-15", 3200.0), ("2019-06-26", 12900.0), ("2020-03-13", 4800.0),
        ("2020-12-31", 29000.0), ("2021-04-14", 63000.0), ("2021-07-20", 30000.0),
        ("2021-11-10", 68000.0), ("2022-06-18", 18000.0), ("2022-11-21", 15800.0),
        ("2023-12-31", 42000.0), ("2024-03-14", 71000.0), ("2024-08-05", 54000.0),
        ("2024-12-17", 106000.0), ("2025-04-07", 77000.0), ("2025-10-06", 124000.0),
    ),
)
ETH_USDT = Instrument(
    symbol="ETH-USDT",
    listed="2017-08-17T04:00",
    tick="0.01",
    lot="0.0001",
    trades_per_day=600_000,
    mean_trade_qty=0.4,
    volatility=0.75,
    anchors=(
        ("2017-08-17", 300.0), ("2018-01-13", 1400.0), ("2018-12-15", 85.0),
        ("2020-03-13", 110.0), ("2021-05-12", 4200.0), ("2021-11-10", 4800.0),
        ("2022-06-18", 900.0), ("2023-12-31", 2300.0), ("2024-03-12", 4000.0),
        ("2025-04-09", 1500.0), ("2025-08-23", 4800.0),
    ),
)
SOL_EUR = Instrument(
    symbol="SOL-EUR",
    listed="2021-06-01",
    tick="0.01",
    lot="0.001",
    trades_per_day=300,
    mean_trade_qty=6.0,
    volatility=0.9,
    burstiness=1.1,
    anchors=(
        ("2021-06-01", 30.0), ("2021-11-06", 220.0), ("2022-12-29", 8.5),
        ("2024-03-18", 180.0), ("2025-01-19", 250.0), ("2025-04-07", 95.0),
    ),
)
DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (BTC_USDT, ETH_USDT, SOL_EUR)
