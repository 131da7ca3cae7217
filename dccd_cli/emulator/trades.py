"""Trades of the synthetic market, expanded from the per-minute slots of :mod:`.minutes`.

Expansion splits each slot's groups, trades and lots exactly (so a minute's trades always
aggregate to its bar), then places the groups in time:

* the minute's first group is an open-slot group and its last a close-slot group, so the
  first trade's price is the open and the last one's the close;
* timestamps are sorted uniform milliseconds inside the minute, then a few *bursts* snap a
  run of consecutive groups (3 to 62 of them, about 4 to 90 trades) onto one millisecond
  with prices in ascending order — a sweep through the book, the case that breaks clients
  paging by timestamp;
* individual trade ids and aggregate ids are the minute's first ids (cumulative counts,
  see :class:`.market.MarketModel`) plus the position inside the minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from dccd_cli.emulator import rng
from dccd_cli.emulator.bars import Bars
from dccd_cli.emulator.minutes import InstrumentModel, MinuteBlock
from dccd_cli.emulator.rng import I64
from dccd_cli.timeutil import MINUTE_NS, MS

_LOCAL = 1 << 22  # random-index stride per minute (max trades per minute)
_MAX_BURSTS = 3
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Trades:
    """Individual trades, in id order (which is time order).

    ``id``: trade id (0 = the instrument's first trade); ``agg_id``: id of the aggregate
    trade it belongs to; ``ts_ns``: time (whole milliseconds); ``price`` in ticks; ``qty``
    in lots; ``buyer_maker``: the taker sold (Binance's ``m``/``isBuyerMaker``).
    """

    id: I64
    agg_id: I64
    ts_ns: I64
    price: I64
    qty: I64
    buyer_maker: Bools

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def take(self, index: I64 | Bools | slice) -> Trades:
        return Trades(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Trades]) -> Trades:
        if not parts:
            return empty_trades()
        return Trades(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                         for f in fields(Trades)})

    def aggregate(self) -> AggTrades:
        """The aggregate trades these trades form (complete only for whole groups)."""
        if len(self) == 0:
            return empty_agg_trades()
        starts = np.flatnonzero(np.diff(self.agg_id, prepend=self.agg_id[0] - 1) != 0)
        ends = np.append(starts[1:], len(self)) - 1
        return AggTrades(
            id=self.agg_id[starts], first_id=self.id[starts], last_id=self.id[ends],
            ts_ns=self.ts_ns[starts], price=self.price[starts],
            qty=np.add.reduceat(self.qty, starts), buyer_maker=self.buyer_maker[starts],
        )

    def as_bars(self) -> Bars:
        """Each trade as a one-trade bar: leaves for :func:`.bars.rollup`."""
        pq = self.price * self.qty
        buy = ~self.buyer_maker
        new_group = np.diff(self.agg_id, prepend=-1) != 0 if len(self) else self.buyer_maker
        one = np.ones(len(self), dtype=np.int64)
        return Bars(
            open_ns=self.ts_ns, end_ns=self.ts_ns + 1, open=self.price, high=self.price,
            low=self.price, close=self.price, volume=self.qty, quote_volume=pq,
            buy_volume=np.where(buy, self.qty, 0), buy_quote_volume=np.where(buy, pq, 0),
            trades=one, agg_trades=new_group.astype(np.int64), live=one,
        )


@dataclass(frozen=True)
class AggTrades:
    """Aggregate trades (one taker order at one price in one millisecond), in id order.

    ``first_id``/``last_id``: the individual trade ids it spans (inclusive).
    """

    id: I64
    first_id: I64
    last_id: I64
    ts_ns: I64
    price: I64
    qty: I64
    buyer_maker: Bools

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def take(self, index: I64 | Bools | slice) -> AggTrades:
        return AggTrades(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def empty_trades() -> Trades:
    z = np.zeros(0, dtype=np.int64)
    return Trades(z, z, z, z, z, np.zeros(0, dtype=bool))


def empty_agg_trades() -> AggTrades:
    z = np.zeros(0, dtype=np.int64)
    return AggTrades(z, z, z, z, z, z, np.zeros(0, dtype=bool))


def _starts(counts: I64) -> I64:
    """Start offsets of consecutive segments of the given (positive) lengths."""
    out = np.zeros(counts.shape[0], dtype=np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def expand(im: InstrumentModel, block: MinuteBlock, first_trade_id: I64,
           first_group_id: I64) -> Trades:
    """All trades of the minutes in ``block``; ``first_*_id`` are per-minute id bases."""
    key = im.key
    rows_g = block.groups
    # 1. Cells: the used (minute, slot) pairs, minute-major then slot order.
    cell_row, cell_slot = np.nonzero(block.g > 0)
    if cell_row.shape[0] == 0:
        return empty_trades()
    cell_g = block.g[cell_row, cell_slot]
    cell_t = block.t[cell_row, cell_slot]
    cell_q = block.q[cell_row, cell_slot]
    # 2. Groups in cell order; their index inside the minute gives their random numbers.
    n_groups = int(cell_g.sum())
    cell_start = _starts(cell_g)
    grp_cell = np.repeat(np.arange(cell_g.shape[0]), cell_g)
    grp_row = cell_row[grp_cell]
    minute = block.m0 + grp_row
    row_start = _starts(rows_g)  # groups of row r start at row_start[r] (cell order too)
    local = np.arange(n_groups, dtype=np.int64) - row_start[grp_row]
    rid = minute * _LOCAL + local
    j_in_cell = np.arange(n_groups, dtype=np.int64) - cell_start[grp_cell]
    u_t, u_q, u_order = rng.uniforms3(key["tr_grp"], rid)
    grp_t = 1 + rng.split_segments(cell_t - cell_g, 0.05 + u_t, cell_start)
    grp_q = grp_t + rng.split_segments(cell_q - cell_t, (0.05 + u_q) * grp_t, cell_start)
    slot = cell_slot[grp_cell]
    # 3. Time order: an open group first, a close group last, the rest shuffled.
    order_key = np.where((slot == 0) & (j_in_cell == 0), -1.0, u_order)
    order_key = np.where((slot == 1) & (j_in_cell == 0), 2.0, order_key)
    order = np.lexsort((order_key, grp_row))
    rank = np.arange(n_groups, dtype=np.int64) - row_start[grp_row[order]]
    # 4. Millisecond offsets: sorted uniforms, drawn per rank so the minute is reproducible.
    row_o = grp_row[order]
    ms = np.floor(rng.uniform(key["tr_time"], (block.m0 + row_o) * _LOCAL + rank)
                  * 60_000).astype(np.int64)
    ms_sorted = ms[np.lexsort((ms, row_o))]
    # 5. Bursts: runs of groups on one millisecond (never the first or last group).
    run_start = rank.copy()
    n_row = rows_g[row_o]
    minute_o = block.m0 + row_o
    for b in range(_MAX_BURSTS):
        u_has, u_start, u_len = rng.uniforms3(key["tr_burst"], minute_o * 4 + b)
        room = n_row - 2
        has = (room >= 3) & (u_has < np.minimum(0.9, n_row / 60.0))
        start = 1 + np.floor(u_start * np.maximum(room, 1))
        length = 2 + np.rint(np.exp(u_len * math.log(60.0)))
        end = np.minimum(start + length, n_row - 1).astype(np.int64)
        start = start.astype(np.int64)
        inside = has & (rank >= start) & (rank < end)
        run_start = np.where(inside, np.minimum(run_start, start), run_start)
    price = block.price[grp_row[order], slot[order]]
    # Price breaks ties only inside a burst: elsewhere (row, run_start) is unique.
    final = np.lexsort((rank, price, run_start, row_o))
    g_idx = order[final]  # group (cell order) at each final position
    pos_row = row_o[final]
    g_ms = ms_sorted[row_start[pos_row] + run_start[final]]
    g_ts = (block.m0 + pos_row) * MINUTE_NS + g_ms * MS
    g_pos = np.arange(n_groups, dtype=np.int64) - row_start[pos_row]
    g_id = first_group_id[pos_row] + g_pos
    g_price = price[final]
    g_buy = block.buy[grp_row[g_idx], slot[g_idx]]
    # 6. Individual trades, each group split into its trades.
    g_t, g_q = grp_t[g_idx], grp_q[g_idx]
    n_trades = int(g_t.sum())
    t_grp = np.repeat(np.arange(n_groups), g_t)
    t_row = pos_row[t_grp]
    t_local = np.arange(n_trades, dtype=np.int64) - _starts(block.trades)[t_row]
    t_qty = 1 + rng.split_segments(g_q - g_t, 0.05 + rng.uniform(
        key["tr_q"], (block.m0 + t_row) * _LOCAL + t_local), _starts(g_t))
    return Trades(
        id=first_trade_id[t_row] + t_local, agg_id=g_id[t_grp], ts_ns=g_ts[t_grp],
        price=g_price[t_grp], qty=t_qty, buyer_maker=~g_buy[t_grp],
    )

