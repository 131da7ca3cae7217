"""dccd_cli.run.estimate on a fake exchange whose trades are known exactly: one every second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.run.download import SeriesTask
from dccd_cli.run.estimate import (
    TRADE_BYTES,
    estimate_series,
    exchange_total,
    sample_points,
    trade_requests,
)
from dccd_cli.run.results import Estimate
from dccd_cli.schema import trades_table
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS, NS

T0 = 1_704_067_200 * NS  # 2024-01-01
MARKET = Market("BTC-USDT", "BTCUSDT", "BTC", "USDT")


class EverySecond(Adapter):
    """A trade every second from T0 until ``last``, id = seconds since T0; pages of at most
    ``limit`` trades, oldest (forward) or newest (backward) first; the cursor is not None
    while the window holds more than the page."""

    name = "fake"
    rate_limit = RateLimit(10, 1)

    def __init__(self, direction: str, last: int, *, dense: bool = False) -> None:
        self.direction, self.last, self.calls = direction, last, 0
        self.trades = Capability(kind="trades", max_per_request=1000, page_direction=direction,  # type: ignore[arg-type]
                                 dense_ids=dense)

    async def fetch_trades_page(self, market: Market, start_ns: int, end_ns: int, limit: int,
                                cursor: Any) -> tuple[pa.Table, Any]:
        self.calls += 1
        first = max(0, -(-(start_ns - T0) // NS))
        stop = min(self.last, -(-(end_ns - T0) // NS))  # seconds < stop are in the window
        ids = list(range(first, stop))
        page = ids[:limit] if self.direction == "forward" else ids[-limit:]
        table = trades_table(pa.array([T0 + i * NS for i in page], pa.int64()), [str(i) for i in page],
                             [1.0] * len(page), [1.0] * len(page), ["buy"] * len(page))
        return table, (None if len(ids) <= limit else "more")


def task(adapter: EverySecond, start: int, end: int, out: Path) -> SeriesTask:
    """A series of ``adapter`` with nothing stored under ``out`` (an empty directory)."""
    return SeriesTask("fake", MARKET, "trades", None, adapter.trades, out, start, end,
                      ranges=[(start, end)])


@pytest.mark.parametrize("direction", ["forward", "backward"])
async def test_a_range_one_page_holds_is_counted_exactly(direction: str, tmp_path: Path) -> None:
    fake = EverySecond(direction, last=10**9)
    est = await estimate_series(fake, task(fake, T0, T0 + 10 * MINUTE_NS, tmp_path))
    assert (est.how, est.rows, fake.calls) == ("counted", 600, 1)
    assert est.exact and est.bytes == round(600 * TRADE_BYTES)


@pytest.mark.parametrize("direction", ["forward", "backward"])
async def test_a_long_range_is_sampled_in_three_pages(direction: str, tmp_path: Path) -> None:
    fake = EverySecond(direction, last=10**9)
    est = await estimate_series(fake, task(fake, T0, T0 + 3 * DAY_NS, tmp_path))
    assert est.how == "sampled" and not est.exact and fake.calls == 3
    assert est.rows == pytest.approx(3 * 86_400, rel=0.01)
    assert est.rows_low is not None and est.rows_high is not None
    assert est.rows_low <= est.rows <= est.rows_high
    assert est.requests == pytest.approx(trade_requests(est.rows, T0, T0 + 3 * DAY_NS, fake.trades))


async def test_dense_ids_count_exactly_with_trades_after_the_end(tmp_path: Path) -> None:
    fake = EverySecond("forward", last=10**9, dense=True)
    est = await estimate_series(fake, task(fake, T0 + HOUR_NS, T0 + 5 * DAY_NS, tmp_path))
    assert (est.how, est.rows, fake.calls) == ("ids", 5 * 86_400 - 3600, 2)


async def test_dense_ids_find_the_last_trade_when_none_came_after_the_end(tmp_path: Path) -> None:
    # Trades stop an hour before the end: the tail is looked for, widening from a minute.
    fake = EverySecond("forward", last=2 * 86_400 - 3600, dense=True)
    est = await estimate_series(fake, task(fake, T0, T0 + 2 * DAY_NS, tmp_path))
    assert est.how == "ids" and est.rows == 2 * 86_400 - 3600
    assert fake.calls == 4  # first, nothing after the end, an empty minute, the last hour


def test_sample_points_fall_at_different_hours() -> None:
    points = sample_points(T0, T0 + 3 * DAY_NS, 3)
    assert [(p - T0) % DAY_NS // HOUR_NS for p in points] == [8, 16]
    assert all(T0 < p < T0 + 3 * DAY_NS for p in points)


def test_trade_requests_follow_the_paginators_windows() -> None:
    cap = Capability(kind="trades", max_per_request=1000, page_direction="forward")
    assert trade_requests(0, T0, T0 + HOUR_NS, cap) == 1  # one empty window, one page
    assert trade_requests(5500, T0, T0 + HOUR_NS, cap) == 6
    dense = Capability(kind="trades", max_per_request=1000, page_direction="forward", dense_ids=True)
    assert trade_requests(5500, T0, T0 + HOUR_NS, dense) == 8  # and the range's head and tail
    busy = trade_requests(10_000_000, T0, T0 + 30 * DAY_NS, cap)
    assert 10_000 < busy < 10_000 * 1.2  # a page per 1000 trades, a partial page per window


def test_an_exchanges_total_is_exact_only_if_each_series_is() -> None:
    exact = exchange_total([Estimate(how="bars", rows=10, requests=1), Estimate(how="ids", rows=5)])
    assert exact.how == "exact" and exact.exact and exact.rows == 15 and exact.rows_low is None
    mixed = exchange_total([Estimate(how="bars", rows=10), Estimate(how="sampled", rows=5, rows_low=4, rows_high=7)])
    assert mixed.how == "mixed" and not mixed.exact and (mixed.rows_low, mixed.rows_high) == (14, 17)
