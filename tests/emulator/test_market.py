"""The synthetic market itself: exactness, ids, random access, realism."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from dccd_cli.emulator import MarketModel
from dccd_cli.emulator.bars import Bars, rollup
from dccd_cli.emulator.instruments import BTC_USDT
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS, MS, NS, Span, parse_time

T0 = parse_time("2024-01-02", now=0)
FAR = parse_time("2030-01-01", now=0)
COLS = ("open", "high", "low", "close", "volume", "quote_volume", "buy_volume",
        "buy_quote_volume", "trades", "agg_trades")


def assert_same(a: Bars, b: Bars) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.open_ns, b.open_ns)
    for col in COLS:
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col), err_msg=col)


@pytest.fixture(scope="module")
def mk() -> MarketModel:
    return MarketModel(seed=5, trades_scale=0.02)


def test_minute_bars_are_exact_aggregates_of_their_trades(mk: MarketModel) -> None:
    start = T0 + 13 * HOUR_NS
    for sym in ("BTC-USDT", "SOL-EUR"):
        bars = mk.minute_bars(sym, start, start + 120 * MINUTE_NS)
        trades = mk.trades(sym, start, start + 120 * MINUTE_NS)
        traded = bars.take(bars.trades > 0)
        assert_same(rollup(trades.as_bars(), traded.open_ns, traded.end_ns), traded)
        assert len(trades) == int(bars.trades.sum())


def test_longer_bars_are_exact_rollups_of_minutes(mk: MarketModel) -> None:
    minutes = mk.minute_bars("BTC-USDT", T0 - 40 * DAY_NS, T0 + 40 * DAY_NS)
    minutes = minutes.take(minutes.trades > 0)
    for code in ("5m", "1h", "4h", "1d", "3d", "1w", "1M"):
        span = Span.parse(code)
        bars = mk.bars("BTC-USDT", span, T0 - 20 * DAY_NS, T0 + 10 * DAY_NS, now_ns=FAR)
        assert len(bars) > 0
        assert_same(rollup(minutes, bars.open_ns, bars.end_ns), bars)
        if code == "1w":
            assert all(((o // DAY_NS) + 3) % 7 == 0 for o in bars.open_ns.tolist())  # Mondays
        if code == "1M":
            assert [o % DAY_NS for o in bars.open_ns.tolist()] == [0] * len(bars)


def test_trade_ids_are_contiguous_across_days_and_chunks(mk: MarketModel) -> None:
    start_id = mk.trade_id_at("BTC-USDT", T0 - 5 * MINUTE_NS)
    page = mk.trades_from_id("BTC-USDT", start_id, 5000, FAR)
    assert page.id[0] == start_id
    assert (np.diff(page.id) == 1).all()
    assert (np.diff(page.ts_ns) >= 0).all()
    assert page.ts_ns[0] < T0 < page.ts_ns[-1]  # crosses midnight
    # The same trades, asked by time, carry the same ids.
    again = mk.trades("BTC-USDT", int(page.ts_ns[0]), int(page.ts_ns[-1]))
    assert set(again.id.tolist()) <= set(range(int(again.id[0]), int(again.id[-1]) + 1))
    np.testing.assert_array_equal(again.id[: 100], page.id[: 100])
    # Aggregates cover the individual trades exactly.
    agg = mk.agg_trades_from_id("BTC-USDT", int(page.agg_id[0]), 1000, FAR)
    assert (agg.first_id[1:] == agg.last_id[:-1] + 1).all()
    assert (np.diff(agg.id) == 1).all()


def test_paging_back_by_id(mk: MarketModel) -> None:
    cursor = mk.trade_id_at("BTC-USDT", T0 + 30 * MINUTE_NS)
    pages = []
    for _ in range(4):
        page = mk.trades_before_id("BTC-USDT", cursor, 250, FAR)
        assert len(page) == 250 and page.id[-1] == cursor - 1
        pages.append(page)
        cursor = int(page.id[0])
    ids = np.concatenate([p.id for p in reversed(pages)])
    assert (np.diff(ids) == 1).all()
    newest = mk.trades_before_id("BTC-USDT", 10**15, 5, T0)  # past the end: the latest
    assert newest.ts_ns[-1] < T0 and len(newest) == 5


def test_id_lookup_matches_counts(mk: MarketModel) -> None:
    before = mk.trade_id_at("ETH-USDT", T0)
    day = mk.minute_bars("ETH-USDT", T0, T0 + DAY_NS)
    after = mk.trade_id_at("ETH-USDT", T0 + DAY_NS)
    assert after - before == int(day.trades.sum())
    first = mk.trades_from_id("ETH-USDT", 0, 3, FAR)
    assert first.id.tolist() == [0, 1, 2]
    assert first.ts_ns[0] >= BTC_USDT.listed_ns


def test_bursts_put_many_trades_on_one_millisecond() -> None:
    mk = MarketModel(seed=5, trades_scale=1.0)
    tr = mk.trades("BTC-USDT", T0 + 15 * HOUR_NS, T0 + 15 * HOUR_NS + 5 * MINUTE_NS)
    ts, counts = np.unique(tr.ts_ns, return_counts=True)
    busiest = ts[np.argmax(counts)]
    assert counts.max() >= 10
    prices = tr.price[tr.ts_ns == busiest]
    assert len(set(prices.tolist())) > 1  # a sweep: several price levels in one ms
    assert (tr.ts_ns % MS == 0).all()


def test_random_access_generates_no_history() -> None:
    mk = MarketModel(seed=987654, trades_scale=0.02)  # a fresh cache
    t = parse_time("2019-06-03", now=0)
    mk.bars("BTC-USDT", "1m", t, t + 1000 * MINUTE_NS, now_ns=FAR)
    mk.bars("BTC-USDT", "1d", t, t + 5 * DAY_NS, now_ns=FAR)
    stats = mk.cache_stats("BTC-USDT")
    # Only the asked days were generated (in one batch of at most 32 days), not 2017-2019.
    assert 0 < stats["minutes_generated"] <= 32 * 1440
    # The same page from a model that generated other things first is identical.
    other = MarketModel(seed=987654, trades_scale=0.02)
    other.bars("BTC-USDT", "1h", t - 90 * DAY_NS, t, now_ns=FAR)
    assert_same(other.bars("BTC-USDT", "1m", t, t + 1000 * MINUTE_NS, now_ns=FAR),
                mk.bars("BTC-USDT", "1m", t, t + 1000 * MINUTE_NS, now_ns=FAR))


def test_determinism_and_seeds() -> None:
    a = MarketModel(seed=1, trades_scale=0.02).minute_bars("BTC-USDT", T0, T0 + HOUR_NS)
    b = MarketModel(seed=1, trades_scale=0.02).minute_bars("BTC-USDT", T0, T0 + HOUR_NS)
    c = MarketModel(seed=2, trades_scale=0.02).minute_bars("BTC-USDT", T0, T0 + HOUR_NS)
    assert_same(a, b)
    assert not np.array_equal(a.close, c.close)


def test_forming_bar_uses_trades_before_now(mk: MarketModel) -> None:
    now = T0 + 10 * HOUR_NS + 17 * MINUTE_NS + 30_123 * MS
    bars = mk.bars("BTC-USDT", "1h", T0, T0 + DAY_NS, now_ns=now)
    assert bars.open_ns[-1] == T0 + 10 * HOUR_NS  # nothing opens after now
    done = mk.trades("BTC-USDT", T0 + 10 * HOUR_NS, now)
    assert bars.trades[-1] == len(done)
    assert bars.close[-1] == done.price[-1]
    # A bar opening exactly at now exists, empty, at the last price.
    edge = mk.bars("BTC-USDT", "1m", T0, T0 + DAY_NS, now_ns=T0 + HOUR_NS)
    assert edge.open_ns[-1] == T0 + HOUR_NS and edge.trades[-1] == 0
    assert edge.close[-1] == edge.close[-2]


def test_listing_and_illiquid_empty_minutes(mk: MarketModel) -> None:
    first = mk.bars("BTC-USDT", "1m", 0, FAR, now_ns=FAR, limit=1)
    assert first.open_ns[0] == parse_time("2017-08-17T04:00Z", now=0)
    assert mk.bars("BTC-USDT", "1d", 0, FAR, now_ns=FAR, limit=1).open_ns[0] == \
        parse_time("2017-08-17", now=0)
    sol = MarketModel(seed=5, trades_scale=1.0).minute_bars("SOL-EUR", T0, T0 + DAY_NS)
    empty = sol.trades == 0
    assert 0.5 < empty.mean() < 0.98
    # Flat: an empty minute sits at the previous close.
    prev_close = np.concatenate([[sol.close[0]], sol.close[:-1]])
    assert (sol.open[empty][1:] == prev_close[empty][1:]).all()
    assert (sol.volume[empty] == 0).all()
    assert len(mk.bars("SOL-EUR", "1m", 0, FAR, now_ns=parse_time("2021-05-01", now=0))) == 0


def test_maintenance_window_has_no_trades_and_no_bars() -> None:
    a, b = T0 + 2 * HOUR_NS, T0 + 3 * HOUR_NS
    mk = MarketModel(seed=5, trades_scale=0.02, maintenance=[(a, b)])
    bars = mk.minute_bars("BTC-USDT", T0, T0 + 5 * HOUR_NS)
    assert len(bars) == 4 * 60
    assert not ((bars.open_ns >= a) & (bars.open_ns < b)).any()
    assert len(mk.trades("BTC-USDT", a, b)) == 0
    hours = mk.bars("BTC-USDT", "1h", T0, T0 + 5 * HOUR_NS, now_ns=FAR)
    assert (hours.open_ns != a).all() and len(hours) == 4
    free = MarketModel(seed=5, trades_scale=0.02)
    # Ids after the window are lower by exactly the trades that did not happen.
    missing = len(free.trades("BTC-USDT", a, b))
    assert free.trade_id_at("BTC-USDT", b) - mk.trade_id_at("BTC-USDT", b) == missing


def test_volatility_and_prices_are_realistic() -> None:
    mk = MarketModel(seed=3, trades_scale=0.02)
    days = mk.bars("BTC-USDT", "1d", parse_time("2023-01-01", now=0),
                   parse_time("2024-01-01", now=0), now_ns=FAR)
    closes = days.close.astype(float) * 0.01
    vol = np.diff(np.log(closes)).std() * math.sqrt(365)
    assert 0.3 < vol < 1.0
    assert 10_000 < closes.min() and closes.max() < 70_000
    assert (days.low > 0).all()
    # Quote volumes stay far from int64 overflow even for a full-scale month.
    full = MarketModel(seed=3, trades_scale=1.0)
    month = full.bars("BTC-USDT", "1M", parse_time("2024-03-01", now=0),
                      parse_time("2024-03-02", now=0), now_ns=FAR)
    assert 0 < int(month.quote_volume[0]) < 2**62


def test_cached_minute_bars_equal_the_models_own_for_any_slice() -> None:
    """Days of 1-minute bars are generated once and sliced: any slice, across days and at
    the listing, equals the model's bars of exactly that slice."""
    from dataclasses import fields

    from dccd_cli.emulator.bars import Bars

    day = 19_723 * DAY_NS  # 2024-01-01
    paused = [(day + 2 * HOUR_NS, day + 3 * HOUR_NS), (day + 2 * DAY_NS, day + 3 * DAY_NS + 7 * 60 * NS)]
    rng = random.Random(1)
    for model, symbol in [(MarketModel(seed=0), "BTC-USDT"), (MarketModel(seed=0), "SOL-EUR"),
                          (MarketModel(seed=0, maintenance=paused), "BTC-USDT")]:
        im, cache = model._get(symbol)
        for _ in range(25):
            if model.maintenance:  # minutes around the pauses, which have no bars
                a = day // (60 * NS) + rng.randrange(5 * 1440)
            else:
                a = im.listed_m + (rng.randrange(3) if rng.random() < 0.2 else rng.randrange(3000 * 1440))
            b = a + rng.randrange(1, 4000)
            direct, cached = im.block(a, b).bars(), cache.minute_bars(a, b)
            for f in fields(Bars):
                assert np.array_equal(getattr(direct, f.name), getattr(cached, f.name)), (symbol, a, b)
