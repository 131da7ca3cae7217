"""Bars of the synthetic market (numpy columns) and exact roll-ups of bars into longer bars.

A bar here is venue-neutral: prices in integer ticks, quantities in integer lots, quote
amounts in tick*lot units. Roll-ups are exact integer sums and maxima, so a 1-day bar is
*by construction* the aggregate of its 1-minute bars, which are the aggregates of their
trades.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from dccd_cli.emulator.rng import I64
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS, Span

_BIG = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Bars:
    """A run of bars, oldest first, one numpy int64 array per column.

    ``open_ns``/``end_ns``: the bar's interval ``[open_ns, end_ns)`` (for the still-forming
    bar ``end_ns`` is still the nominal end). ``open/high/low/close`` in ticks;
    ``volume``/``buy_volume`` (taker-buy) in lots; ``quote_volume``/``buy_quote_volume`` in
    tick*lot units; ``trades``: individual trades; ``agg_trades``: aggregate trades (one
    taker order at one price in one millisecond). ``live``: how many live (listed, not in
    maintenance) leaf intervals the bar covers — 0 never appears in public results.

    A bar with ``trades == 0`` is *empty*: in public results (``MarketModel.bars``) its
    OHLC are the previous close ("flat"); in raw roll-up inputs they are 0.
    """

    open_ns: I64
    end_ns: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64
    quote_volume: I64
    buy_volume: I64
    buy_quote_volume: I64
    trades: I64
    agg_trades: I64
    live: I64

    def __len__(self) -> int:
        return int(self.open_ns.shape[0])

    def take(self, index: I64 | npt.NDArray[np.bool_] | slice) -> Bars:
        """The rows at ``index`` (an index array, boolean mask or slice)."""
        return Bars(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Bars]) -> Bars:
        """The rows of ``parts`` one after the other."""
        if not parts:
            return empty_bars()
        return Bars(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                       for f in fields(Bars)})

    def rows(self) -> list[dict[str, int]]:
        """Plain Python rows (for debugging and tests)."""
        cols = {f.name: getattr(self, f.name).tolist() for f in fields(self)}
        return [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


def empty_bars() -> Bars:
    z = np.zeros(0, dtype=np.int64)
    return Bars(*(z for _ in fields(Bars)))


def rollup(leaves: Bars, opens: I64, ends: I64) -> Bars:
    """Aggregate consecutive ``leaves`` into bars ``[opens[i], ends[i])``.

    Leaves must be sorted by ``open_ns`` and each must lie inside one bar. Open is the
    first traded leaf's open, close the last traded leaf's close, high/low over traded
    leaves only (an empty minute says nothing about price). Bars covering no live leaf are
    dropped; bars with live leaves but no trades come back empty (OHLC 0).
    """
    first = np.searchsorted(leaves.open_ns, opens, side="left")
    last = np.searchsorted(leaves.open_ns, ends, side="left")
    keep = last > first
    opens, ends, first, last = opens[keep], ends[keep], first[keep], last[keep]
    if opens.shape[0] == 0:
        return empty_bars()
    n = len(leaves)
    # reduceat over interleaved [first_i, last_i) pairs, keeping the even results, so
    # that leaves lying between two bars (if any) are never counted in either. A sentinel
    # row makes ``last_i == n`` a valid index.
    bounds = np.empty(2 * opens.shape[0], dtype=np.int64)
    bounds[0::2] = first
    bounds[1::2] = last
    traded = np.append(leaves.trades > 0, False)
    idx = np.arange(n + 1, dtype=np.int64)

    def red(ufunc: np.ufunc, col: I64, pad: int) -> I64:
        out: I64 = ufunc.reduceat(np.append(col, pad), bounds)[0::2]
        return out

    first_traded = red(np.minimum, np.where(traded, idx, _BIG)[:-1], _BIG)
    last_traded = red(np.maximum, np.where(traded, idx, -1)[:-1], -1)
    any_traded = last_traded >= 0
    safe_first = np.where(any_traded, first_traded, 0)
    safe_last = np.where(any_traded, last_traded, 0)
    traded = traded[:-1]

    def total(col: I64) -> I64:
        return red(np.add, col, 0)

    high = red(np.maximum, np.where(traded, leaves.high, 0), 0)
    low = red(np.minimum, np.where(traded, leaves.low, _BIG), _BIG)
    zero = np.zeros_like(opens)
    return Bars(
        open_ns=opens,
        end_ns=ends,
        open=np.where(any_traded, leaves.open[safe_first], zero),
        high=np.where(any_traded, high, zero),
        low=np.where(any_traded, low, zero),
        close=np.where(any_traded, leaves.close[safe_last], zero),
        volume=total(leaves.volume),
        quote_volume=total(leaves.quote_volume),
        buy_volume=total(leaves.buy_volume),
        buy_quote_volume=total(leaves.buy_quote_volume),
        trades=total(leaves.trades),
        agg_trades=total(leaves.agg_trades),
        live=total(leaves.live),
    )


def fill_flat(bars: Bars, prev_close: int) -> Bars:
    """Give empty bars OHLC = the previous bar's close (``prev_close`` before the first)."""
    if len(bars) == 0:
        return bars
    traded = bars.trades > 0
    idx = np.where(traded, np.arange(len(bars)), -1)
    last_idx = np.maximum.accumulate(idx)
    carried = np.where(last_idx >= 0, bars.close[np.maximum(last_idx, 0)], prev_close)
    # For an empty bar, the carried value is the close of the last traded bar before it.
    flat = np.where(traded, 0, carried)
    return Bars(
        open_ns=bars.open_ns, end_ns=bars.end_ns,
        open=np.where(traded, bars.open, flat), high=np.where(traded, bars.high, flat),
        low=np.where(traded, bars.low, flat), close=np.where(traded, bars.close, flat),
        volume=bars.volume, quote_volume=bars.quote_volume, buy_volume=bars.buy_volume,
        buy_quote_volume=bars.buy_quote_volume, trades=bars.trades,
        agg_trades=bars.agg_trades, live=bars.live,
    )


class BarFrame:
    """Bar arithmetic of one span, optionally shifted ``offset_ns`` east of UTC, and the
    coarsest cached level whose boundaries all of its bars fall on."""

    def __init__(self, span: Span, offset_ns: int) -> None:
        if offset_ns % MINUTE_NS:
            raise ValueError("time-zone offsets must be whole minutes")
        self.span, self.off = span, offset_ns
        if span.unit in ("w", "M"):
            level = "day"
        else:
            step = span.fixed_ns
            assert step is not None
            if step % DAY_NS == 0:
                level = "day"
            elif step % HOUR_NS == 0:
                level = "hour"
            elif step % MINUTE_NS == 0:
                level = "minute"
            elif MINUTE_NS % step == 0:
                level = "second"
            else:
                raise ValueError(f"span {span} neither divides a minute nor is whole minutes")
        # An offset moves bar boundaries off UTC days/hours: fall back to finer leaves.
        if level == "day" and offset_ns % DAY_NS:
            level = "hour" if offset_ns % HOUR_NS == 0 else "minute"
        if level == "hour" and offset_ns % HOUR_NS:
            level = "minute"
        self.level = level

    def floor(self, ns: int) -> int:
        return self.span.floor(ns + self.off) - self.off

    def ceil(self, ns: int) -> int:
        return self.span.ceil(ns + self.off) - self.off

    def add(self, ns: int, bars: int) -> int:
        return self.span.add(ns + self.off, bars) - self.off

    def count(self, lo: int, hi: int) -> int:
        return self.span.bars_between(lo + self.off, hi + self.off)

    def opens(self, first: int, count: int, backward: bool) -> I64:
        """``count`` opens from ``first``, ascending (ending at ``first`` if ``backward``)."""
        step = self.span.fixed_ns
        if step is not None:
            k = np.arange(count, dtype=np.int64)
            return first - k[::-1] * step if backward else first + k * step
        got = [self.add(first, -i if backward else i) for i in range(count)]
        return np.asarray(sorted(got), dtype=np.int64)

    def ends(self, opens: I64) -> I64:
        step = self.span.fixed_ns
        if step is not None:
            out: I64 = opens + step
            return out
        return np.asarray([self.add(int(o), 1) for o in opens], dtype=np.int64)
