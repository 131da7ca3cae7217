"""The emulator's Binance pages, formatted a column at a time in Arrow, equal the same
pages formatted one Python call per cell — exactly, byte for byte."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dccd_cli.emulator.instruments import (
    DEFAULT_INSTRUMENTS,
    E8,
    format_e8,
    format_e8_column,
    quote_e8,
    quote_e8_column,
)
from dccd_cli.emulator.market import MarketModel
from dccd_cli.emulator.venues.binance_format import agg_trade_items, kline_rows
from dccd_cli.timeutil import DAY_NS, MS, parse_time

NOW = 1_735_691_400 * 10**9  # 2025-01-01T00:30Z

VALUES = st.lists(st.integers(min_value=-(2**62) + 1, max_value=2**62 - 1), max_size=50)


@given(VALUES)
def test_format_e8_column_equals_format_e8(values: list[int]) -> None:
    column = np.array(values, dtype=np.int64)
    assert format_e8_column(column) == [format_e8(v) for v in values]


def test_format_e8_column_edge_values() -> None:
    values = [0, 1, -1, E8 - 1, E8, -E8, 123_456_789_012, 2**62 + 5]
    column = np.array(values, dtype=np.int64)  # the last one takes the exact Python path
    assert format_e8_column(column) == [format_e8(v) for v in values]
    assert format_e8_column(np.array([], dtype=np.int64)) == []


@given(st.lists(st.integers(min_value=0, max_value=2**55), max_size=30),
       st.sampled_from([(1_000_000, 1_000), (1, 1_000), (1_000_000, 100_000), (3, 7)]))
def test_quote_e8_column_equals_quote_e8(ticklots: list[int], increments: tuple[int, int]) -> None:
    tick, lot = increments  # (3, 7): finer than 1e-8, rounded half-even cell by cell
    column = np.array(ticklots, dtype=np.int64)
    assert quote_e8_column(column, tick, lot) == [format_e8(quote_e8(q, tick, lot)) for q in ticklots]


def _reference_klines(bars, inst) -> list[list[object]]:  # type: ignore[no-untyped-def]
    t, lot = inst.tick_e8, inst.lot_e8
    return [[o // MS, format_e8(op * t), format_e8(hi * t), format_e8(lo * t),
             format_e8(cl * t), format_e8(v * lot), e // MS - 1,
             format_e8(quote_e8(qv, t, lot)), n, format_e8(bv * lot),
             format_e8(quote_e8(bqv, t, lot)), "0"]
            for o, e, op, hi, lo, cl, v, qv, n, bv, bqv in zip(
                bars.open_ns.tolist(), bars.end_ns.tolist(), bars.open.tolist(),
                bars.high.tolist(), bars.low.tolist(), bars.close.tolist(),
                bars.volume.tolist(), bars.quote_volume.tolist(), bars.trades.tolist(),
                bars.buy_volume.tolist(), bars.buy_quote_volume.tolist(), strict=True)]


def _reference_agg_trades(agg, inst) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    t, lot = inst.tick_e8, inst.lot_e8
    return [{"a": a, "p": format_e8(p * t), "q": format_e8(q * lot), "f": f, "l": last,
             "T": ts // MS, "m": m, "M": True}
            for a, p, q, f, last, ts, m in zip(
                agg.id.tolist(), agg.price.tolist(), agg.qty.tolist(), agg.first_id.tolist(),
                agg.last_id.tolist(), agg.ts_ns.tolist(), agg.buyer_maker.tolist(), strict=True)]


@pytest.mark.parametrize("symbol", ["BTC-USDT", "SOL-EUR"])
@pytest.mark.parametrize("limit", [0, 1, 1000])
def test_binance_pages_equal_the_per_cell_encoding(symbol: str, limit: int) -> None:
    model = MarketModel(seed=0, trades_scale=0.05)
    inst = next(i for i in DEFAULT_INSTRUMENTS if i.symbol == symbol)
    start = parse_time("2024-01-01", now=NOW)
    bars = model.bars(symbol, "1m", start, start + 2 * DAY_NS, NOW, limit=limit)
    assert orjson.dumps(kline_rows(bars, inst)) == orjson.dumps(_reference_klines(bars, inst))
    agg = model.agg_trades(symbol, start, start + DAY_NS, limit, False)
    assert orjson.dumps(agg_trade_items(agg, inst)) == orjson.dumps(_reference_agg_trades(agg, inst))
