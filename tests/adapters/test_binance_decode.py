"""Binance pages on ``httpx.MockTransport``: compact pages are read by dccd_cli.exchange.pagescan,
anything else by the JSON path, with the same tables and cursors; an error object inside
HTTP 200 is still caught by the adapter's check and retried."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pyarrow as pa
import pytest
from adapter_kit import make_adapter, replies
from dccd_testing import SAMPLES as samples_dir

from dccd_cli.adapters import binance
from dccd_cli.adapters.binance import BinanceAdapter
from dccd_cli.exchange.adapter import Market

SAMPLES = samples_dir / "binance"
MS = 1_000_000
T0 = 1_704_067_200_000  # 2024-01-01 in ms
MARKET = Market(symbol="BTC-USDT", native="BTCUSDT", base="BTC", quote="USDT")


def trades(n: int, first_id: int = 100) -> list[dict[str, Any]]:
    return [
        {"a": first_id + i, "p": f"{40000 + i * 0.01:.8f}", "q": "0.00100000", "f": 7 * i,
         "l": 7 * i + 1, "T": T0 + 10 * i, "m": i % 3 == 0, "M": True}
        for i in range(n)
    ]


def klines(n: int) -> list[list[Any]]:
    return [
        [T0 + 60_000 * i, "1.5", "2.5", "0.5", "1.0", f"{i}.25", T0 + 60_000 * i + 59_999,
         "10.0", i, "0.1", "0.2", "0"]
        for i in range(n)
    ]


async def fetch_trades(body: str, cursor: int | None = 100, limit: int = 3) -> tuple[pa.Table, Any]:
    handler, _ = replies((200, body))
    adapter, _ = make_adapter(BinanceAdapter, handler)
    return await adapter.fetch_trades_page(MARKET, T0 * MS, (T0 + 86_400_000) * MS, limit, cursor)


async def fetch_klines(body: str) -> pa.Table:
    handler, _ = replies((200, body))
    adapter, _ = make_adapter(BinanceAdapter, handler)
    return await adapter.fetch_ohlc_page(MARKET, "1m", T0 * MS, (T0 + 86_400_000) * MS, 1000)


@pytest.mark.parametrize("cursor,limit", [(None, 3), (100, 3), (100, 10)])
async def test_scanned_and_parsed_trade_pages_are_the_same(cursor: int | None, limit: int) -> None:
    rows = trades(3)
    compact = orjson.dumps(rows).decode()
    assert binance._scan_trades(compact.encode()) is not None  # this one is scanned
    scanned = await fetch_trades(compact, cursor, limit)
    parsed = await fetch_trades(json.dumps(rows, indent=1), cursor, limit)  # the JSON path
    assert scanned[0].equals(parsed[0]) and scanned[1] == parsed[1]
    assert scanned[0].column("side").to_pylist() == ["sell", "buy", "buy"]
    assert scanned[0].column("id").to_pylist() == ["100", "101", "102"]


async def test_a_parsed_trade_without_its_maker_flag_has_no_side() -> None:
    """The side is the taker's, by ``m``; a page read as JSON with ``m`` null (never
    scanned: the scanner takes only true/false) stores the side as unknown, not a guess."""
    rows = trades(3)
    rows[1]["m"] = None
    table, _ = await fetch_trades(json.dumps(rows), 100, 3)
    assert table.column("side").to_pylist() == ["sell", None, "buy"]


async def test_scanned_and_parsed_kline_pages_are_the_same() -> None:
    rows = klines(5)
    compact = orjson.dumps(rows).decode()
    assert binance._scan_klines(compact.encode()) is not None
    scanned = await fetch_klines(compact)
    parsed = await fetch_klines(json.dumps(rows, indent=1))
    assert scanned.equals(parsed)
    assert scanned.column("trades").to_pylist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", ["aggTrades.json", "klines.json"])
async def test_real_samples_as_sent_and_pretty_printed_give_the_same_table(name: str) -> None:
    text = (SAMPLES / name).read_text()
    compact = orjson.dumps(json.loads(text)).decode()
    if name == "klines.json":
        assert (await fetch_klines(compact)).equals(await fetch_klines(text))
    else:
        a, b = await fetch_trades(compact, None, 1000), await fetch_trades(text, None, 1000)
        assert a[0].equals(b[0]) and a[1] == b[1]


async def test_an_error_object_inside_http_200_is_still_retried() -> None:
    page = orjson.dumps(trades(2)).decode()
    handler, seen = replies(
        (200, '{"code":-1003,"msg":"Too much request weight used."}'), (200, page)
    )
    adapter, clock = make_adapter(BinanceAdapter, handler)
    table, _ = await adapter.fetch_trades_page(MARKET, T0 * MS, (T0 + 86_400_000) * MS, 1000, 100)
    assert table.num_rows == 2 and len(seen) == 2 and len(clock.sleeps) == 1


async def test_an_empty_page_is_empty() -> None:
    table, cursor = await fetch_trades("[]")
    assert table.num_rows == 0 and cursor is None
    assert (await fetch_klines("[]")).num_rows == 0
