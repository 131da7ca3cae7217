"""One deterministic, realistic synthetic market shared by every emulated venue.

``MarketModel(seed=..., instruments=..., trades_scale=..., maintenance=...)`` answers, for
each instrument, "which trades happened" and "what were the bars" for any time range, in
venue-neutral units: ns times, integer price ticks, integer quantity lots. Venues format.

Guarantees, all by construction (see :mod:`.minutes` and :mod:`.trades`):

* Random access. Nothing depends on history: a page of 2019 costs the same whatever was
  asked before. Trade ids are cumulative counts, found through per-day totals cached once.
* Exactness. A minute's trades aggregate exactly to its 1-minute bar (open = first price,
  close = last, high/low = max/min, volume = sum of lots, quote volume = sum of
  price*lots, taker-buy sums, trade and aggregate counts); every longer bar is the exact
  roll-up of its minutes.
* Time. Trades exist for ``listed_ns <= ts < now`` outside maintenance windows (applied at
  minute granularity: a minute whose open lies in a window has no trades and no bar). A
  bar exists when its open is ``<= now`` and it covers at least one live minute; the bar
  holding ``now`` is the still-forming one, computed from the trades before ``now``.
* Empty bars (live, no trades) come back with OHLC = the previous close and zero volume;
  venues may drop them.

Caches (hourly/daily bars, per-day id offsets) are filled lazily and shared by every
``MarketModel`` of the same configuration in the process. Cold costs at scale 1: a 1000-bar
1m or 1s page ~10 ms; the first 1h page of a month ~0.1 s; the first 1d page since 2017
~1.3 s (then ~8 ms); the first trade-id lookup in 2025 ~0.4 s (then O(1)).

Aggregate trades ("groups"): the consecutive trades of one taker order at one price in one
millisecond — Binance's aggTrades; venues without the notion ignore ``agg_id``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

from dccd_cli.emulator.bars import BarFrame, Bars, empty_bars, fill_flat, rollup
from dccd_cli.emulator.cache import MIN_PER_DAY, InstrumentCache
from dccd_cli.emulator.instruments import DEFAULT_INSTRUMENTS, Instrument
from dccd_cli.emulator.minutes import TRADES_PER_GROUP, InstrumentModel
from dccd_cli.emulator.rng import I64
from dccd_cli.emulator.trades import AggTrades, Trades, empty_agg_trades, empty_trades, expand
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS, NS, Span

_SHARED: dict[tuple[object, ...], tuple[InstrumentModel, InstrumentCache]] = {}
_SHARED_LOCK = threading.Lock()
_SHARED_MAX = 64  # configurations whose caches are kept (tests start many servers)
_MAX_BARS = 200_000  # refuse unbounded bar requests beyond this many opens


class UnknownInstrumentError(KeyError):
    """The symbol is not one of the market's instruments."""


class MarketModel:
    """The synthetic market. All methods are thread-safe and deterministic.

    ``instruments``: defaults to BTC-USDT, ETH-USDT (2017-08-17) and the illiquid SOL-EUR
    (2021-06-01). ``trades_scale`` multiplies every instrument's trade counts (tests use
    small scales). ``maintenance``: ``(start_ns, end_ns)`` windows with no trading.
    """

    def __init__(self, seed: int = 0, instruments: Iterable[Instrument] | None = None,
                 trades_scale: float = 1.0,
                 maintenance: Iterable[tuple[int, int]] = ()) -> None:
        self.seed = seed
        self.trades_scale = trades_scale
        self.maintenance = tuple(sorted((int(a), int(b)) for a, b in maintenance))
        insts = tuple(instruments) if instruments is not None else DEFAULT_INSTRUMENTS
        self._inst = {i.symbol: i for i in insts}
        self._models: dict[str, tuple[InstrumentModel, InstrumentCache]] = {}
        for inst in insts:
            fp = (seed, inst, trades_scale, self.maintenance)
            with _SHARED_LOCK:
                if fp not in _SHARED and len(_SHARED) >= _SHARED_MAX:
                    del _SHARED[next(iter(_SHARED))]  # the oldest configuration
                if fp not in _SHARED:
                    im = InstrumentModel(inst, seed, trades_scale, list(self.maintenance))
                    _SHARED[fp] = (im, InstrumentCache(im))
                self._models[inst.symbol] = _SHARED[fp]

    # -- instruments ----------------------------------------------------------------------

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        return tuple(self._inst.values())

    def instrument(self, symbol: str) -> Instrument:
        """The instrument named ``BASE-QUOTE``; raises :class:`UnknownInstrumentError`."""
        try:
            return self._inst[symbol]
        except KeyError:
            raise UnknownInstrumentError(symbol) from None

    def is_listed(self, symbol: str, ns: int) -> bool:
        """Whether the instrument exists at ``ns`` (its listing is not in the future)."""
        return ns >= self._get(symbol)[0].listed_m * MINUTE_NS

    def is_live(self, symbol: str, ns: int) -> bool:
        """Whether the instrument trades at ``ns`` (listed and not in maintenance)."""
        return bool(self._get(symbol)[0].live(np.asarray([ns // MINUTE_NS]))[0])

    def warm(self, symbol: str, start_ns: int, end_ns: int) -> None:
        """Fill the daily/hourly bar cache and id offsets for ``[start_ns, end_ns)`` ahead
        of time (about 1.5 ms per instrument-day at scale 1 on one core; batches run on
        several), e.g. before a benchmark. Caches are process-wide: see the module doc."""
        _, cache = self._get(symbol)
        cache.day_bars(start_ns // DAY_NS, -(-end_ns // DAY_NS))
        cache.before_day(-(-end_ns // DAY_NS), groups=False)

    def cache_stats(self, symbol: str) -> dict[str, int]:
        """Work counters of the instrument's caches (tests use them to prove random access)."""
        return dict(self._get(symbol)[1].calls)

    def _get(self, symbol: str) -> tuple[InstrumentModel, InstrumentCache]:
        self.instrument(symbol)
        return self._models[symbol]

    # -- trades ---------------------------------------------------------------------------

    def _first_ids(self, symbol: str, m0: int, m1: int) -> tuple[I64, I64, I64, I64]:
        """Per minute of ``[m0, m1)``: first trade id, first aggregate id, and the counts."""
        im, cache = self._get(symbol)
        day = m0 // MIN_PER_DAY
        g, t = im.counts(np.arange(day * MIN_PER_DAY, m1, dtype=np.int64))
        k = m0 - day * MIN_PER_DAY
        base_t = cache.before_day(day, groups=False) + int(t[:k].sum())
        base_g = cache.before_day(day, groups=True) + int(g[:k].sum())
        t, g = t[k:], g[k:]
        ft = base_t + np.concatenate([[0], np.cumsum(t)[:-1]]).astype(np.int64)
        fg = base_g + np.concatenate([[0], np.cumsum(g)[:-1]]).astype(np.int64)
        return ft, fg, t, g

    def _minute_trades(self, symbol: str, m0: int, m1: int, ids: bool = True) -> Trades:
        """Every trade of the minutes ``[m0, m1)`` (ignoring 'now'). ``ids=False`` numbers
        them from 0 instead, skipping the one-time pass over the history that real ids
        need (bars only need to tell aggregates apart)."""
        im, _ = self._get(symbol)
        m0 = max(m0, im.listed_m)
        if m1 <= m0:
            return empty_trades()
        block = im.block(m0, m1)
        if ids:
            ft, fg, _, _ = self._first_ids(symbol, m0, m1)
        else:
            ft = np.concatenate([[0], np.cumsum(block.trades)[:-1]]).astype(np.int64)
            fg = np.concatenate([[0], np.cumsum(block.groups)[:-1]]).astype(np.int64)
        return expand(im, block, ft, fg)

    def _next_range(self, im: InstrumentModel, m: int, stop: int, need: int,
                    groups: bool, backward: bool) -> tuple[int, int]:
        """A minute range next to ``m`` (after it, or before it when ``backward``), not
        past ``stop``, holding at least ``need`` trades/aggregates if they exist there."""
        rate = max(im.lam_groups * (1.0 if groups else TRADES_PER_GROUP), 1e-3)
        width = int(min(max(need / rate * 1.5 + 2, 16), 7 * MIN_PER_DAY))
        if backward:
            a = max(m - width, stop)
            g, t = im.counts(np.arange(a, m, dtype=np.int64))
            c = np.cumsum((g if groups else t)[::-1])
            if c.size and c[-1] >= need:
                return m - int(np.searchsorted(c, need)) - 1, m
            return a, m
        b = min(m + width, stop)
        g, t = im.counts(np.arange(m, b, dtype=np.int64))
        c = np.cumsum(g if groups else t)
        if c.size and c[-1] >= need:
            return m, m + int(np.searchsorted(c, need)) + 1
        return m, b

    def _walk(self, symbol: str, start_ns: int, end_ns: int, limit: int, groups: bool,
              backward: bool, from_id: int = 0, below_id: int | None = None) -> Trades:
        """Trades of the first (or last) ``limit`` items with ``start <= ts < end`` and
        ``from_id <= id < below_id``, counting aggregates when ``groups`` (whole aggregates
        are returned). At least ``limit`` items come back when that many exist."""
        im, _ = self._get(symbol)
        lo = max(start_ns // MINUTE_NS, im.listed_m)
        hi = -(-end_ns // MINUTE_NS)
        parts: list[Trades] = []
        got = 0
        m = hi if backward else lo
        while got < limit and (m > lo if backward else m < hi):
            a, b = self._next_range(im, m, lo if backward else hi, limit - got, groups, backward)
            tr = self._minute_trades(symbol, a, b)
            ids = tr.agg_id if groups else tr.id
            keep = (tr.ts_ns >= start_ns) & (tr.ts_ns < end_ns) & (ids >= from_id)
            if below_id is not None:
                keep &= ids < below_id
            tr = tr.take(keep)
            got += len(np.unique(tr.agg_id)) if groups else len(tr)
            parts.append(tr)
            m = a if backward else b
        if backward:
            parts.reverse()
        return Trades.concat(parts)

    def trades(self, symbol: str, start_ns: int, end_ns: int, *, ids: bool = True) -> Trades:
        """Every trade with ``start_ns <= ts < end_ns`` (mind the size of the range).
        ``ids=False``: ids relative to ``start_ns``'s minute (cheaper, see above)."""
        tr = self._minute_trades(symbol, start_ns // MINUTE_NS, -(-end_ns // MINUTE_NS), ids)
        return tr.take((tr.ts_ns >= start_ns) & (tr.ts_ns < end_ns))

    def trades_window(self, symbol: str, start_ns: int, end_ns: int, limit: int,
                      newest: bool = False) -> Trades:
        """The oldest (or, with ``newest``, the most recent) ``limit`` trades in
        ``[start_ns, end_ns)``, oldest first."""
        tr = self._walk(symbol, start_ns, end_ns, limit, groups=False, backward=newest)
        return tr.take(slice(-limit, None) if newest else slice(0, limit))

    def agg_trades(self, symbol: str, start_ns: int, end_ns: int, limit: int,
                   newest: bool = False) -> AggTrades:
        """The oldest (or most recent) ``limit`` aggregate trades in ``[start_ns, end_ns)``."""
        agg = self._walk(symbol, start_ns, end_ns, limit, groups=True, backward=newest).aggregate()
        return agg.take(slice(-limit, None) if newest else slice(0, limit))

    def _minute_of_id(self, symbol: str, ident: int, groups: bool, until_ns: int) -> int | None:
        im, cache = self._get(symbol)
        day = cache.day_of_id(ident, groups, max_day=until_ns // DAY_NS + 1)
        if day is None:
            return None
        g, t = im.counts(np.arange(day * MIN_PER_DAY, (day + 1) * MIN_PER_DAY, dtype=np.int64))
        cum = cache.before_day(day, groups) + np.cumsum(g if groups else t)
        return day * MIN_PER_DAY + int(np.searchsorted(cum, ident, side="right"))

    def _from_id(self, symbol: str, from_id: int, limit: int, until_ns: int,
                 groups: bool) -> Trades:
        from_id = max(from_id, 0)
        m = self._minute_of_id(symbol, from_id, groups, until_ns)
        if m is None or limit <= 0:
            return empty_trades()
        return self._walk(symbol, m * MINUTE_NS, until_ns, limit, groups, backward=False,
                          from_id=from_id)

    def trades_from_id(self, symbol: str, from_id: int, limit: int, until_ns: int) -> Trades:
        """Up to ``limit`` trades with ``id >= from_id`` and ``ts < until_ns``, id order."""
        return self._from_id(symbol, from_id, limit, until_ns, groups=False).take(slice(0, limit))

    def trades_before_id(self, symbol: str, before_id: int, limit: int,
                         until_ns: int) -> Trades:
        """The newest ``limit`` trades with ``id < before_id`` and ``ts < until_ns``, in id
        order (cursor paging towards the past, as newest-first venues do)."""
        if before_id <= 0 or limit <= 0:
            return empty_trades()
        m = self._minute_of_id(symbol, before_id - 1, False, until_ns)
        end = until_ns if m is None else min((m + 1) * MINUTE_NS, until_ns)
        tr = self._walk(symbol, 0, end, limit, groups=False, backward=True, below_id=before_id)
        return tr.take(slice(-limit, None))

    def agg_trades_from_id(self, symbol: str, from_id: int, limit: int,
                           until_ns: int) -> AggTrades:
        """Up to ``limit`` aggregate trades with ``id >= from_id`` and ``ts < until_ns``."""
        agg = self._from_id(symbol, from_id, limit, until_ns, groups=True).aggregate()
        return agg.take(slice(0, limit)) if len(agg) else empty_agg_trades()

    def trade_id_at(self, symbol: str, ts_ns: int, groups: bool = False) -> int:
        """Id of the first trade (or aggregate) at or after ``ts_ns``: the number of trades
        (aggregates) before it."""
        im, _ = self._get(symbol)
        m = ts_ns // MINUTE_NS
        if m < im.listed_m:
            return 0
        ft, fg, _, _ = self._first_ids(symbol, m, m + 1)
        tr = self._minute_trades(symbol, m, m + 1)
        before = tr.take(tr.ts_ns < ts_ns)
        if groups:
            return int(fg[0]) + len(np.unique(before.agg_id))
        return int(ft[0]) + len(before)

    def last_price_before(self, symbol: str, ns: int) -> int:
        """Price (ticks) of the last trade before ``ns``; the reference price at listing
        when there is none."""
        im, _ = self._get(symbol)
        m = ns // MINUTE_NS
        if ns % MINUTE_NS:
            tr = self.trades(symbol, m * MINUTE_NS, ns, ids=False)
            if len(tr):
                return int(tr.price[-1])
        while m > im.listed_m:
            a = max(m - MIN_PER_DAY, im.listed_m)
            g, _ = im.counts(np.arange(a, m, dtype=np.int64))
            hit = np.flatnonzero(g)
            if hit.size:
                last = a + int(hit[-1])
                blk = im.block(last, last + 1)
                return int(blk.bars().close[0])
            m = a
        return int(im.ref_ticks(np.asarray([im.listed_m]))[0])

    # -- bars -----------------------------------------------------------------------------

    def _leaves(self, symbol: str, a: int, b: int, now_ns: int, level: str) -> Bars:
        """Live leaves covering ``[a, min(b, now))``, coarsest first where aligned."""
        im, cache = self._get(symbol)
        end = min(b, now_ns)
        parts: list[Bars] = []
        t = a
        if level == "day" and end // DAY_NS * DAY_NS > t:
            parts.append(cache.day_bars(t // DAY_NS, end // DAY_NS))
            t = end // DAY_NS * DAY_NS
        if level in ("day", "hour") and end // HOUR_NS * HOUR_NS > t:
            d0, h_end = t // DAY_NS, end // HOUR_NS * HOUR_NS
            hours = cache.hour_bars(d0, -(-h_end // DAY_NS))
            parts.append(hours.take((hours.open_ns >= t) & (hours.open_ns < h_end)))
            t = h_end
        if level != "second" and end // MINUTE_NS * MINUTE_NS > t:
            m0, m1 = max(t // MINUTE_NS, im.listed_m), end // MINUTE_NS
            if m1 > m0:
                parts.append(cache.minute_bars(m0, m1))
            t = m1 * MINUTE_NS
        markers: list[int] = []
        if t < end:
            parts.append(self.trades(symbol, t, end, ids=False).as_bars())
            step = NS if level == "second" else MINUTE_NS
            markers.extend(range(t, end, step))
        if end == now_ns < b:
            markers.append(now_ns)  # the forming bar exists even before its first trade
        if markers:
            mk = np.asarray(markers, dtype=np.int64)
            mk = mk[im.live(mk // MINUTE_NS)]
            z = np.zeros_like(mk)
            parts.append(Bars(mk, mk, z, z, z, z, z, z, z, z, z, z, np.ones_like(mk)))
        leaves = Bars.concat(parts)
        order = np.argsort(leaves.open_ns, kind="stable")
        return leaves.take(order)

    def bars(self, symbol: str, span: Span | str, start_ns: int, end_ns: int, now_ns: int,
             *, limit: int | None = None, newest: bool = False, empty: bool = True,
             offset_ns: int = 0) -> Bars:
        """Bars of ``span`` (``1s``…``1M``; weeks open on Monday) whose open time is in
        ``[start_ns, end_ns)`` and ``<= now_ns``, oldest first, flat-filled.

        With ``limit``: only the first ``limit`` such bars (the last ones with ``newest``).
        ``empty=False`` drops bars without trades. The bar holding ``now_ns`` is computed
        from the trades before ``now_ns`` (it is still forming); ``end_ns`` of every bar is
        the nominal end. ``offset_ns`` (whole minutes) lays bar boundaries in a time zone
        that far east of UTC (a ``+08:00`` day opens at 16:00 UTC the day before).
        """
        im, _ = self._get(symbol)
        fr = BarFrame(Span.parse(span) if isinstance(span, str) else span, offset_ns)
        lo = fr.ceil(max(start_ns, fr.floor(im.inst.listed_ns)))
        hi = min(end_ns, now_ns + 1)  # opens < hi
        if hi <= lo:
            return empty_bars()
        total = fr.count(lo, hi)
        if total > _MAX_BARS and limit is None:
            raise ValueError(f"{total} bars asked; pass a limit")
        want = min(limit, total) if limit is not None else total
        parts: list[Bars] = []
        got = 0
        cursor = fr.floor(hi - 1) if newest else lo
        while got < want and (cursor >= lo if newest else cursor < hi):
            opens = fr.opens(cursor, want, newest)
            opens = opens[(opens >= lo) & (opens < hi)]
            if opens.size == 0:
                break
            ends = fr.ends(opens)
            raw = rollup(self._leaves(symbol, int(opens[0]), int(ends[-1]), now_ns, fr.level),
                         opens, ends)
            if not empty:
                raw = raw.take(raw.trades > 0)
            parts.append(raw)
            got += len(raw)
            cursor = fr.add(int(opens[0]), -1) if newest else int(ends[-1])
        if newest:
            parts.reverse()
        out = Bars.concat(parts)
        out = out.take(slice(-want, None) if newest else slice(0, want))
        if len(out) and out.trades[0] == 0:
            return fill_flat(out, self.last_price_before(symbol, int(out.open_ns[0])))
        return fill_flat(out, 0)

    def minute_bars(self, symbol: str, start_ns: int, end_ns: int) -> Bars:
        """Complete 1-minute bars with open in ``[start_ns, end_ns)`` (flat when empty)."""
        return self.bars(symbol, "1m", start_ns, end_ns, now_ns=max(end_ns, start_ns))
