"""The per-minute decisions of one instrument: activity, price path, and price *slots*.

Each minute is decided by O(K) numbers, vectorised over any range of minutes, with no
dependence on earlier minutes (counter-based randomness, :mod:`.rng`):

* how many aggregate trades (``groups``: one taker order at one price in one millisecond)
  and individual trades happen in it (:meth:`InstrumentModel.counts`, cheap: trade ids
  are cumulative sums of these counts);
* up to ``K`` price *slots*: a price (ticks), a taker side, and how many groups, trades
  and lots trade there. Slot 0 holds the open price and the minute's first trade, slot 1
  the close and its last trade, slots 2 and 3 the high and the low when they differ from
  open and close, slots 4+ interior prices.

The bar of the minute follows from the slots alone — volume is the sum of lots, quote
volume the sum of price*lots, taker-buy volumes the same over buy slots — and the trades
generated later (:mod:`.trades`) split each slot's groups, trades and lots exactly, so the
bar is the aggregate of its trades *by construction*, without generating them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dccd_cli.emulator import rng
from dccd_cli.emulator.bars import Bars
from dccd_cli.emulator.instruments import Instrument
from dccd_cli.emulator.rng import F64, I64
from dccd_cli.timeutil import MINUTE_NS

K = 8  # price slots per minute
MINUTES_PER_YEAR = 525_960.0
TRADES_PER_GROUP = 1.4  # individual trades per aggregate trade, on average
# Octaves of the price noise, in minutes. Short ones are evaluated per minute; long ones on
# an hourly grid and interpolated (a definition, not an approximation: it is random access).
_FINE = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
_COARSE = (256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0)
# Calibrated so that 1-minute and 1-day log returns show about the instrument's annualised
# volatility (see tests/emulator/test_market.py::test_volatility_is_realistic).
_NOISE_GAIN = 0.47


@dataclass(frozen=True)
class MinuteBlock:
    """Slot decisions for the minutes ``m0 .. m0+n-1`` (minute index = ns // 60e9).

    Arrays of shape ``(n,)``: ``groups``, ``trades`` (totals), ``live``. Arrays of shape
    ``(n, K)``: ``price`` (ticks), ``buy`` (taker side is buy), ``g``, ``t``, ``q`` (groups,
    trades, lots in the slot; all zero for an unused slot).
    """

    m0: int
    groups: I64
    trades: I64
    live: npt.NDArray[np.bool_]
    price: I64
    buy: npt.NDArray[np.bool_]
    g: I64
    t: I64
    q: I64

    def bars(self) -> Bars:
        """One bar per live minute, exact aggregates of the slots (empty minutes: OHLC 0)."""
        used = self.g > 0
        traded = self.groups > 0
        big = np.iinfo(np.int64).max
        opens = (self.m0 + np.arange(self.groups.shape[0], dtype=np.int64)) * MINUTE_NS
        pq = self.price * self.q
        buyq = np.where(self.buy, self.q, 0)
        # Slot 1 (close) is unused when the minute has a single group: close = open.
        close = np.where(self.g[:, 1] > 0, self.price[:, 1], self.price[:, 0])
        live = self.live
        return Bars(
            open_ns=opens[live],
            end_ns=opens[live] + MINUTE_NS,
            open=np.where(traded, self.price[:, 0], 0)[live],
            high=np.where(traded, np.where(used, self.price, 0).max(axis=1), 0)[live],
            low=np.where(traded, np.where(used, self.price, big).min(axis=1), 0)[live],
            close=np.where(traded, close, 0)[live],
            volume=self.q.sum(axis=1)[live],
            quote_volume=pq.sum(axis=1)[live],
            buy_volume=buyq.sum(axis=1)[live],
            buy_quote_volume=(self.price * buyq).sum(axis=1)[live],
            trades=self.trades[live],
            agg_trades=self.groups[live],
            live=np.ones(int(live.sum()), dtype=np.int64),
        )


class InstrumentModel:
    """Random-access generator of one instrument's minutes (see the module docstring)."""

    def __init__(self, inst: Instrument, seed: int, trades_scale: float,
                 maintenance: list[tuple[int, int]]) -> None:
        self.inst = inst
        self.listed_m = inst.listed_ns // MINUTE_NS
        self.sigma_m = inst.volatility / math.sqrt(MINUTES_PER_YEAR)
        self.lam_groups = inst.trades_per_day * trades_scale / 1440.0 / TRADES_PER_GROUP
        self.mean_lots = max(1.0, inst.mean_trade_qty * 1e8 / inst.lot_e8)
        self.tick_units = inst.tick_e8 / 1e8
        # Maintenance as minute ranges: a minute is down when its open lies in a window.
        self.down = sorted(((a + MINUTE_NS - 1) // MINUTE_NS, (b + MINUTE_NS - 1) // MINUTE_NS)
                           for a, b in maintenance)
        xs, ys = inst.anchor_points()
        self.anchor_x = np.asarray(xs, dtype=np.float64)
        self.anchor_y = np.asarray(ys, dtype=np.float64)
        self.key = {name: rng.derive_key(seed, inst.symbol, name) for name in _STREAMS}

    # -- activity ---------------------------------------------------------------------

    def live(self, m: I64) -> npt.NDArray[np.bool_]:
        """Listed and not in maintenance."""
        ok = m >= self.listed_m
        for a, b in self.down:
            ok &= (m < a) | (m >= b)
        return ok

    def counts(self, m: I64) -> tuple[I64, I64]:
        """(aggregate trades, individual trades) per minute; zero where not live."""
        tf = m.astype(np.float64)
        hour = (m % 1440) / 60.0
        weekday = (m // 1440 + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        season = 1.0 + 0.35 * np.cos(2.0 * np.pi * (hour - 15.0) / 24.0)
        # Weekends are quieter; 1/0.9286 keeps the weekly mean at ``trades_per_day``.
        season = season * np.where(weekday >= 5, 0.75, 1.0) / 0.9286
        b = self.inst.burstiness
        regime = np.exp((0.35 + 0.6 * b) * rng.value_noise(self.key["regime"], tf, 4320.0)
                        - 0.5 * (0.35 + 0.6 * b) ** 2 * 0.55)
        lam = self.lam_groups * season * regime
        z, z2 = rng.normals2(self.key["count"], m)
        u, u2, _ = rng.uniforms3(self.key["count_u"], m)
        groups = np.floor(lam * np.exp(b * z - 0.5 * b * b) + u).astype(np.int64)
        groups = np.minimum(groups, 1 << 20)
        extra = np.floor((TRADES_PER_GROUP - 1.0) * groups * np.exp(0.3 * z2 - 0.045) + u2)
        extra = np.where(groups > 0, extra, 0).astype(np.int64)
        live = self.live(m)
        return np.where(live, groups, 0), np.where(live, groups + extra, 0)

    # -- price path ---------------------------------------------------------------------

    def log_price(self, m: I64) -> F64:
        """Natural-log price at the start of minute ``m``: anchors plus multi-octave noise
        whose amplitude grows like sqrt(period), as a random walk's would."""
        tf = m.astype(np.float64)
        base = np.interp(tf, self.anchor_x, self.anchor_y)
        amp = _NOISE_GAIN * self.sigma_m
        fine = np.zeros_like(tf)
        for i, period in enumerate(_FINE):
            fine += amp * math.sqrt(period) * rng.value_noise(self.key["fine"] + i, tf, period)
        hours = np.floor_divide(m, 60)
        h0 = int(hours.min()) if hours.size else 0
        grid_h = np.arange(h0, int(hours.max()) + 2 if hours.size else 1, dtype=np.int64)
        grid_t = (grid_h * 60).astype(np.float64)
        coarse_grid = np.zeros_like(grid_t)
        for i, period in enumerate(_COARSE):
            coarse_grid += amp * math.sqrt(period) * rng.value_noise(
                self.key["coarse"] + i, grid_t, period)
        j = hours - h0
        w = (m - hours * 60) / 60.0
        coarse = coarse_grid[j] + (coarse_grid[j + 1] - coarse_grid[j]) * w
        out: F64 = base + fine + coarse
        return out

    def ref_ticks(self, m: I64) -> I64:
        """The reference price at the start of minute ``m``, in ticks (at least 1)."""
        return np.maximum(np.rint(np.exp(self.log_price(m)) / self.tick_units), 1).astype(np.int64)

    # -- slots --------------------------------------------------------------------------

    def block(self, m0: int, m1: int) -> MinuteBlock:
        """Slot decisions for minutes ``[m0, m1)``."""
        m = np.arange(m0, m1, dtype=np.int64)
        n_min = m.shape[0]
        groups, trades = self.counts(m)
        key = self.key
        lp = self.log_price(np.arange(m0, m1 + 1, dtype=np.int64))
        ref = np.exp(lp) / self.tick_units  # reference prices in ticks, float
        sig_ticks = self.sigma_m * ref[:-1]
        z_o, z_c = rng.normals2(key["jit"], m)
        z_h, z_l = rng.normals2(key["wick"], m)
        z_v, _ = rng.normals2(key["vol"], m)
        o = np.maximum(np.rint(ref[:-1] + 0.25 * sig_ticks * z_o), 1)
        c = np.maximum(np.rint(ref[1:] + 0.25 * sig_ticks * z_c), 1)
        o = o.astype(np.int64)
        c = np.where(groups >= 2, c.astype(np.int64), o)
        hi_oc, lo_oc = np.maximum(o, c), np.minimum(o, c)
        h0 = hi_oc + np.rint(np.abs(z_h) * 0.5 * sig_ticks).astype(np.int64)
        l0 = lo_oc - np.rint(np.abs(z_l) * 0.5 * sig_ticks).astype(np.int64)
        l0 = np.maximum(l0, 1)

        valid = np.zeros((n_min, K), dtype=bool)
        valid[:, 0] = groups >= 1
        valid[:, 1] = groups >= 2
        valid[:, 2] = (groups >= 3) & (h0 > hi_oc)
        valid[:, 3] = (groups >= 3 + valid[:, 2]) & (l0 < lo_oc)
        high = np.where(valid[:, 2], h0, hi_oc)
        low = np.where(valid[:, 3], l0, lo_oc)
        n_fixed = valid[:, :4].sum(axis=1)
        n_int = np.minimum(groups - n_fixed,
                           np.floor(rng.uniform(key["n_int"], m) * (K - 3)).astype(np.int64))
        n_int = np.maximum(n_int, 0)
        valid[:, 4:] = np.arange(K - 4)[None, :] < n_int[:, None]

        cell = m[:, None] * K + np.arange(K)[None, :]  # one random index per (minute, slot)
        u_price, u_side, _ = rng.uniforms3(key["cell_a"], cell)
        w_g, w_t, w_q = rng.uniforms3(key["cell_b"], cell)
        interior = low[:, None] + np.floor(u_price * (high - low + 1)[:, None]).astype(np.int64)
        price = np.empty((n_min, K), dtype=np.int64)
        price[:, 0], price[:, 1], price[:, 2], price[:, 3] = o, c, high, low
        price[:, 4:] = interior[:, 4:]
        price = np.where(valid, price, 0)

        p_buy = 0.5 + 0.15 * np.sign(c - o)
        buy = (u_side < p_buy[:, None]) & valid

        def weights(u: F64) -> F64:
            w: F64 = np.where(valid, 0.05 + u, 0.0)
            return w

        vi = valid.astype(np.int64)
        g = vi + rng.split_int(groups - vi.sum(axis=1), weights(w_g))
        t = g + rng.split_int(trades - groups, weights(w_t) * g)
        vol = np.rint(trades * self.mean_lots * np.exp(0.6 * z_v - 0.18)).astype(np.int64)
        vol = np.maximum(vol, trades)
        q = t + rng.split_int(vol - trades, weights(w_q) * t)
        return MinuteBlock(m0=m0, groups=groups, trades=trades, live=self.live(m),
                           price=price, buy=buy, g=g, t=t, q=q)


_STREAMS = ("regime", "count", "count_u", "fine", "coarse", "jit", "wick", "vol", "n_int",
            "cell_a", "cell_b", "tr_grp", "tr_time", "tr_burst", "tr_q")
