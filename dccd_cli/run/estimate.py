"""What a download would cost before it runs: requests, rows, bytes and time (``--dry-run``
of ``dccd ohlc``, ``dccd trades`` and ``dccd sync``).

Per series, for the ranges it would fetch (``SeriesTask.ranges``):

* **OHLC** is exact: the bars of each range, paged by windows of ``max_per_request`` bars.
* **Trades where ids are consecutive** (``Capability.dense_ids``, Binance) are exact too:
  the first trade at the range's start and the first at its end are two one-row pages, and
  their ids differ by the number of trades between (when nothing has traded since the end
  yet, the last trade before it is found with a page or two over the range's tail).
* **Other trades** are counted when the range's first page holds all of it (a short range,
  a quiet market, Bitstamp's one list); otherwise sampled: that page and ``SAMPLES - 1``
  more spread over the range (and over the hours of the day) each give the rate over the
  stretch they cover, and their mean the estimate. Where sampling fails, the rate of the
  newest stored days serves; with neither, only a floor of one request a range is known.

Requests follow the trades paginator's own windows (``TradeWindows``, sized by what each
costs) at the estimated rate; Parquet bytes are rows times the bytes a row takes in the
series' stored files, or in files dccd wrote from the emulator (``BAR_BYTES``,
``TRADE_BYTES``); time is the requests' weight at the exchange's rate limit. The requests
an estimate sends itself are counted (``Estimate.probes``): they spend the same budget.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dccd_cli.errors import BannedError, DccdError, FetchError
from dccd_cli.exchange.adapter import Adapter, Capability, Market
from dccd_cli.net.client import HTTPStats, series_stats
from dccd_cli.run.results import Estimate, SeriesResult
from dccd_cli.sources.rest.trades import BUFFER_PAGES, MIN_TRADE_WINDOW_NS, TradeWindows
from dccd_cli.storage import Ledger
from dccd_cli.storage.intervals import intersect, total
from dccd_cli.storage.layout import partition_files
from dccd_cli.timeutil import DAY_NS, MINUTE_NS, MS

if TYPE_CHECKING:
    from dccd_cli.run.download import SeriesTask

__all__ = [
    "BAR_BYTES", "SAMPLES", "TRADE_BYTES", "estimate_series", "exchange_total", "planned_series",
    "sample_points", "stored_trade_density", "trade_requests",
]

#: Parquet bytes a row takes, measured on files dccd wrote from the emulator: a month of
#: Binance 1-minute bars (43.7 B a bar; a year of hourly bars, 45.5) and two days of Binance
#: BTC-USDT trades (7.3 B a trade; Coinbase and Kraken 6.1). Stored files of the series,
#: when there are some, say better.
BAR_BYTES = 45.0
TRADE_BYTES = 7.3
#: Pages a sampled trades range costs (one at the start of each equal part).
SAMPLES = 3
#: Share of an exchange's budget the token bucket lets dccd use (ratelimit.TokenBucket).
BUDGET_SHARE = 0.95
#: One-row pages of the last trades before a range's end, when none has come after it.
_TAIL_PROBES = 8
#: Newest stored files read for a series' own rate and bytes per row.
_STORED_FILES = 7


async def estimate_series(adapter: Adapter, task: SeriesTask) -> Estimate:
    """The cost of fetching ``task.ranges``; sends the few requests trades need to know.

    A ban while sampling is raised (the exchange must be left alone); other failures
    fall back to what is stored, and say so in ``Estimate.how``.
    """
    cap = task.cap
    counted = HTTPStats()
    series_stats.set(counted)  # this task's own context: the probes of this series
    est = Estimate(how="bars")
    if task.span is not None:
        for s, e in task.ranges:
            bars = task.span.bars_between(s, e)
            est.rows += bars
            est.requests += math.ceil(bars / cap.max_per_request)
    elif task.ranges:
        await _trades(adapter, task, est)
    est.probes = counted.requests
    est.weight = est.requests * cap.weight
    est.seconds = est.weight / (adapter.rate_limit.per_second * BUDGET_SHARE)
    est.bytes = round(est.rows * _bytes_per_row(task))
    return est


async def planned_series(adapter: Adapter, task: SeriesTask) -> SeriesResult:
    """A dry run's result for one series: its ranges, and the cost of fetching them (or
    the error that kept it from being estimated: a ban met while sampling, ...)."""
    result = task.result()
    try:
        result.estimate = await estimate_series(adapter, task)
    except DccdError as exc:
        result.error = str(exc)
    return result


def exchange_total(estimates: Iterable[Estimate]) -> Estimate:
    """One exchange's series together: they share its budget, so their times add up."""
    out = Estimate(how="")
    hows = set()
    low = high = 0
    for e in estimates:
        hows.add(e.how)
        out.requests += e.requests
        out.weight += e.weight
        out.seconds += e.seconds
        out.rows += e.rows
        out.bytes += e.bytes
        out.probes += e.probes
        out.at_least = out.at_least or e.at_least
        low += e.rows if e.rows_low is None else e.rows_low
        high += e.rows if e.rows_high is None else e.rows_high
    if len(hows) == 1:
        out.how = hows.pop()
    else:  # series of several kinds: exact if each is
        out.how = "exact" if all(Estimate(how=h).exact for h in hows) else "mixed"
    if (low, high) != (out.rows, out.rows):
        out.rows_low, out.rows_high = low, high
    return out


# -- trades ------------------------------------------------------------------------------


async def _trades(adapter: Adapter, task: SeriesTask, est: Estimate) -> None:
    cap = task.cap
    counts: list[int] | None = None
    if cap.dense_ids:
        counts = await _exact_counts(adapter, task)
        if counts is not None:
            est.how = "ids"
            est.rows = sum(counts)
    if counts is None:
        counts = await _sampled_counts(adapter, task, est)
    if counts is None:
        density = stored_trade_density(task)
        if density is None:
            est.how, est.at_least = "unknown", True
            est.requests = len(task.ranges)  # a page a range at least; how many, the market says
            return
        est.how = "stored"
        counts = [round(density * (e - s)) for s, e in task.ranges]
        est.rows = sum(counts)
    for (s, e), n in zip(task.ranges, counts, strict=True):
        est.requests += trade_requests(n, s, e, cap)


def trade_requests(rows: int, start_ns: int, end_ns: int, cap: Capability) -> int:
    """Pages the trades paginator takes for ``rows`` trades spread evenly over the range:
    its own windows, sized as it sizes them, a page per ``max_per_request`` trades plus
    the last page of each window; dense ids add the range's two proving requests."""
    windows = TradeWindows(start_ns, end_ns, cap.concurrency, BUFFER_PAGES)
    rate = rows / max(1, end_ns - start_ns)
    pages = 2 if cap.dense_ids else 0
    # ``concurrency`` windows are drained at once, so a window is handed out before the
    # ones ahead of it have finished and told their cost: the sizing lags as in a run.
    running: deque[tuple[int, int]] = deque()
    while True:
        while len(running) < cap.concurrency and (window := windows.next()) is not None:
            running.append(window)
        if not running:
            return pages
        w0, w1 = running.popleft()
        n = int(rate * (w1 - w0) // cap.max_per_request) + 1
        windows.finished(n, w0, w1)
        pages += n


def _page(table: pa.Table, start_ns: int, end_ns: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The (ts, id) of a page's rows inside ``[start_ns, end_ns)`` (adapters may return more)."""
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    keep = (ts >= start_ns) & (ts < end_ns)
    return ts[keep], np.asarray(table.column("id").to_numpy(zero_copy_only=False))[keep]


async def _first_id(adapter: Adapter, market: Market, start_ns: int, end_ns: int) -> int | None:
    """The id of the first trade in ``[start_ns, end_ns)``: a one-row page."""
    table, _ = await adapter.fetch_trades_page(market, start_ns, end_ns, 1, None)
    _, ids = _page(table, start_ns, end_ns)
    return min(int(i) for i in ids) if len(ids) else None


async def _last_id(adapter: Adapter, market: Market, first_ns: int, end_ns: int, cap: int) -> int | None:
    """The id of the last trade before ``end_ns`` (one is known at ``first_ns``): pages of
    the range's tail, a minute first, narrowed while full and widened while empty, until
    one holds the tail whole. None if that takes more than ``_TAIL_PROBES`` pages."""
    width = MINUTE_NS
    for _ in range(_TAIL_PROBES):
        w0 = max(first_ns, end_ns - width)
        table, cursor = await adapter.fetch_trades_page(market, w0, end_ns, cap, None)
        ts, ids = _page(table, w0, end_ns)
        if cursor is None:  # drained: the page holds every trade of [w0, end_ns)
            if len(ids):
                return max(int(i) for i in ids)
            width *= 64  # nothing so late: look further back
            continue
        # More than a page in [w0, end_ns): about half a page's worth of time next.
        width = max(MS, (int(ts.max()) - w0) // 2) if len(ts) else width // 2
    return None


async def _exact_counts(adapter: Adapter, task: SeriesTask) -> list[int] | None:
    """Trades per range by their consecutive ids (None if the ends cannot be found)."""
    counts = []
    for s, e in task.ranges:
        first = await _first_id(adapter, task.market, s, e)
        if first is None:
            counts.append(0)
            continue
        after = await _first_id(adapter, task.market, e, e + DAY_NS)
        if after is not None:
            counts.append(after - first)
            continue
        last = await _last_id(adapter, task.market, s, e, task.cap.max_per_request)
        if last is None:
            return None
        counts.append(last - first + 1)
    return counts


def sample_points(start_ns: int, end_ns: int, k: int) -> list[int]:
    """Where the samples of ``[start_ns, end_ns)`` are taken, besides the range's own first
    page: one in each of the ``k - 1`` later parts of ``k`` equal parts, shifted by a
    ``k``-th of a day more each, so the samples of a range of whole days fall at different
    hours (trading is busier at some hours than at others)."""
    part = (end_ns - start_ns) // k
    return [start_ns + j * part + (j * DAY_NS // k) % max(1, part) for j in range(1, k)]


async def _sampled_counts(adapter: Adapter, task: SeriesTask, est: Estimate) -> list[int] | None:
    """Trades per range from a few pages: the range's own first page (it may hold the whole
    range: then the count is exact) and one more at each of ``sample_points``. Each page
    gives the rate over the stretch it covers; the low and high bounds in ``est`` take the
    lowest and highest rate seen. None if a page cannot be fetched."""
    cap, backward = task.cap, task.cap.page_direction == "backward"
    counts: list[int] = []
    low = high = 0.0
    drained_all = True
    try:
        for s, e in task.ranges:
            k = max(1, min(SAMPLES, (e - s) // MIN_TRADE_WINDOW_NS))
            rates: list[float] = []
            # A forward page holds the oldest trades of its window, a backward one the newest:
            # the window starts (forward) or ends (backward) where the sample is taken.
            for i, at in enumerate([s, *sample_points(s, e, k)]):
                a, b = (s, e) if i == 0 else (s, at) if backward else (at, e)
                table, cursor = await adapter.fetch_trades_page(task.market, a, b, cap.max_per_request, None)
                ts, _ = _page(table, a, b)
                if cursor is None:  # the page holds every trade of [a, b)
                    if i == 0:
                        break  # the whole range: counted, no sampling needed
                    rates.append(len(ts) / (b - a))
                    continue
                # A full page: the rate over the stretch it covers (trades at its edge
                # instant may go on in the next page, so that instant is left out).
                if backward:
                    edge = int(ts.min()) if len(ts) else a
                    seen, covered = int((ts > edge).sum()), b - edge
                else:
                    edge = int(ts.max()) if len(ts) else b
                    seen, covered = int((ts < edge).sum()), edge - a
                rates.append(max(seen, 1) / max(covered, 1))
            if not rates:
                counts.append(len(ts))
                low, high = low + len(ts), high + len(ts)
                continue
            drained_all = False
            counts.append(round(sum(rates) / len(rates) * (e - s)))
            low += min(rates) * (e - s)
            high += max(rates) * (e - s)
    except BannedError:
        raise
    except FetchError:
        return None
    est.how = "counted" if drained_all else "sampled"
    est.rows = sum(counts)
    if not drained_all:
        est.rows_low, est.rows_high = math.floor(low), math.ceil(high)
    return counts


# -- what is stored ----------------------------------------------------------------------


def _stored(task: SeriesTask) -> tuple[int, int, int] | None:
    """Rows, bytes and ns fetched in the newest stored files of the series, or None."""
    key = task.key
    directory = key.dir(task.out)
    files = partition_files(key.kind, directory)[-_STORED_FILES:]
    if not files:
        return None
    rows = size = 0
    for _, path in files:
        try:
            rows += pq.read_metadata(str(path)).num_rows
            size += path.stat().st_size
        except OSError:
            return None
    span = [(files[0][0].start_ns, files[-1][0].end_ns)]
    return rows, size, total(intersect(Ledger.load(directory).fetched, span))


def stored_trade_density(task: SeriesTask) -> float | None:
    """Trades per ns in the newest stored days of the series (at most a week), or None."""
    stored = _stored(task)
    if stored is None or stored[2] <= 0:
        return None
    return stored[0] / stored[2]


def _bytes_per_row(task: SeriesTask) -> float:
    stored = _stored(task)
    if stored is not None and stored[0] >= 10_000:  # in small files the overhead weighs
        return stored[1] / stored[0]
    return BAR_BYTES if task.span is not None else TRADE_BYTES
