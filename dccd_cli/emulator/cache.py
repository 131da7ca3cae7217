"""Lazily filled, process-wide caches of one instrument: hourly/daily bars and id offsets.

The market is a pure function of its configuration, so two emulators with the same seed,
instruments, scale and maintenance share one cache (tests start many servers). Filling is
vectorised over runs of missing days; reads after that are O(days asked).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields

import numpy as np

from dccd_cli.emulator.bars import Bars, empty_bars, rollup
from dccd_cli.emulator.minutes import InstrumentModel
from dccd_cli.emulator.rng import I64
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS

MIN_PER_DAY = 1440
_BATCH_DAYS = 32  # days generated per vectorised pass when filling the bar cache
_COUNT_DAYS = 128  # days counted per pass when extending cumulative id offsets
# Days of 1-minute bars kept (150 KB each, so at most 60 MB an instrument): pages of 1m
# klines cut days in slices, and a year of them asked again (a benchmark's second client)
# is served without generating it again.
_MINUTE_DAYS = 400
_COLS = [f.name for f in fields(Bars)]
# numpy releases the GIL in its array loops, so batches of days fill in parallel (1.7x on
# two cores); a cold 1-day page since 2017 is the case this is for.
_POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1),
                           thread_name_prefix="dccd-emulator-fill")


def _to_matrix(b: Bars) -> I64:
    return np.stack([getattr(b, c) for c in _COLS], axis=1) if len(b) else np.zeros(
        (0, len(_COLS)), dtype=np.int64)


def _from_matrix(m: I64) -> Bars:
    return Bars(**{c: np.ascontiguousarray(m[:, i]) for i, c in enumerate(_COLS)})


class InstrumentCache:
    """Per-day aggregates (one day row, then up to 24 hour rows, live rows only) and
    cumulative trade/aggregate counts per day since the listing day."""

    def __init__(self, im: InstrumentModel) -> None:
        self.im = im
        self.lock = threading.Lock()
        self.days: dict[int, I64] = {}
        self.day0 = im.listed_m // MIN_PER_DAY
        # cum[i] = count in days [day0, day0 + i); grown on demand.
        self.cum_trades = np.zeros(1, dtype=np.int64)
        self.cum_groups = np.zeros(1, dtype=np.int64)
        self.calls = {"minutes_generated": 0}  # for tests: proof of random access
        self._minute_days: OrderedDict[int, Bars] = OrderedDict()  # least recently used first
        self._minute_lock = threading.Lock()

    # -- bars ---------------------------------------------------------------------------

    def _fill(self, d0: int, d1: int) -> None:
        block = self.im.block(d0 * MIN_PER_DAY, d1 * MIN_PER_DAY)
        self.calls["minutes_generated"] += (d1 - d0) * MIN_PER_DAY
        minutes = block.bars()
        hour_opens = np.arange(d0 * 24, d1 * 24, dtype=np.int64) * HOUR_NS
        hours = rollup(minutes, hour_opens, hour_opens + HOUR_NS)
        day_opens = np.arange(d0, d1, dtype=np.int64) * DAY_NS
        days = rollup(minutes, day_opens, day_opens + DAY_NS)
        hm, dm = _to_matrix(hours), _to_matrix(days)
        h_day = hours.open_ns // DAY_NS
        d_day = days.open_ns // DAY_NS
        for d in range(d0, d1):
            rows = [dm[d_day == d], hm[h_day == d]]
            self.days[d] = np.concatenate(rows) if len(rows[0]) else np.zeros(
                (0, len(_COLS)), dtype=np.int64)

    def _ensure(self, d0: int, d1: int) -> None:
        missing = [d for d in range(d0, d1) if d not in self.days]
        batches: list[tuple[int, int]] = []
        i = 0
        while i < len(missing):
            j = i
            while (j + 1 < len(missing) and missing[j + 1] == missing[j] + 1
                   and j + 1 - i < _BATCH_DAYS):
                j += 1
            batches.append((missing[i], missing[j] + 1))
            i = j + 1
        if len(batches) == 1:
            self._fill(*batches[0])
        elif batches:
            for future in [_POOL.submit(self._fill, a, b) for a, b in batches]:
                future.result()

    def day_bars(self, d0: int, d1: int) -> Bars:
        """Daily bars of days ``[d0, d1)`` (live days only; empty days have OHLC 0)."""
        d0 = max(d0, self.day0)
        if d1 <= d0:
            return empty_bars()
        self._ensure(d0, d1)
        rows = [self.days[d][:1] for d in range(d0, d1)]
        return _from_matrix(np.concatenate(rows))

    def hour_bars(self, d0: int, d1: int) -> Bars:
        """Hourly bars of days ``[d0, d1)`` (live hours only)."""
        d0 = max(d0, self.day0)
        if d1 <= d0:
            return empty_bars()
        self._ensure(d0, d1)
        rows = [self.days[d][1:] for d in range(d0, d1)]
        return _from_matrix(np.concatenate(rows))

    def minute_bars(self, m0: int, m1: int) -> Bars:
        """The model's 1-minute bars of minutes ``[m0, m1)`` (``m0`` at or after the
        listing), each day generated once while it is among the last days asked: the
        model is a function of the minute, so a day's bars sliced equal the slice's own."""
        parts: list[Bars] = []
        m = m0
        while m < m1:
            day = m // MIN_PER_DAY
            stop = min(m1, (day + 1) * MIN_PER_DAY)
            with self._minute_lock:
                bars = self._minute_days.get(day)
                if bars is not None:
                    self._minute_days.move_to_end(day)
            if bars is None:
                first = max(day * MIN_PER_DAY, self.im.listed_m)
                bars = self.im.block(first, (day + 1) * MIN_PER_DAY).bars()
                with self._minute_lock:
                    self._minute_days[day] = bars
                    while len(self._minute_days) > _MINUTE_DAYS:
                        self._minute_days.popitem(last=False)
            # By open time, not by position: minutes the model has no bar for (maintenance)
            # are not rows.
            lo, hi = np.searchsorted(bars.open_ns, [m * MINUTE_NS, stop * MINUTE_NS])
            parts.append(bars.take(slice(int(lo), int(hi))))
            m = stop
        return Bars.concat(parts) if len(parts) != 1 else parts[0]

    # -- ids ----------------------------------------------------------------------------

    def _extend_counts(self, upto_day: int) -> None:
        """Make ``cum_*`` cover days up to ``upto_day`` (exclusive)."""
        while self.day0 + len(self.cum_trades) - 1 < upto_day:
            have = self.day0 + len(self.cum_trades) - 1
            n = _COUNT_DAYS
            m = np.arange(have * MIN_PER_DAY, (have + n) * MIN_PER_DAY, dtype=np.int64)
            g, t = self.im.counts(m)
            per_day_t = t.reshape(n, MIN_PER_DAY).sum(axis=1)
            per_day_g = g.reshape(n, MIN_PER_DAY).sum(axis=1)
            self.cum_trades = np.concatenate([self.cum_trades,
                                              self.cum_trades[-1] + np.cumsum(per_day_t)])
            self.cum_groups = np.concatenate([self.cum_groups,
                                              self.cum_groups[-1] + np.cumsum(per_day_g)])

    def before_day(self, day: int, groups: bool) -> int:
        """How many trades (or aggregate trades) happened before day ``day``."""
        if day <= self.day0:
            return 0
        with self.lock:
            self._extend_counts(day)
            cum = self.cum_groups if groups else self.cum_trades
            return int(cum[day - self.day0])

    def day_of_id(self, ident: int, groups: bool, max_day: int) -> int | None:
        """The day holding trade (or aggregate) ``ident``; None if not before ``max_day``."""
        with self.lock:
            while True:
                cum = self.cum_groups if groups else self.cum_trades
                last_day = self.day0 + len(cum) - 1
                if cum[-1] > ident:
                    i = int(np.searchsorted(cum, ident, side="right")) - 1
                    day = self.day0 + i
                    return day if day < max_day else None
                if last_day >= max_day:
                    return None
                self._extend_counts(last_day + 1)
