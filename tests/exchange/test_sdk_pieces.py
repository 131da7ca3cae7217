"""The exchange SDK's declared pieces on their own: paths into replies, Envelope,
ErrorTable's rules, MarketFields and the generic market loader, rows and units."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from adapter_kit import make_adapter, replies

from dccd_cli.adapters.binance import BinanceAdapter
from dccd_cli.adapters.bitmex import BitmexAdapter
from dccd_cli.adapters.bitstamp import BitstampAdapter
from dccd_cli.adapters.bybit import BybitAdapter
from dccd_cli.adapters.okx import OkxAdapter
from dccd_cli.errors import (
    ExchangeError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    UnknownSymbolError,
)
from dccd_cli.exchange.adapter import Market
from dccd_cli.exchange.listing import MarketFields
from dccd_cli.exchange.replies import Envelope, ErrorTable, error_text, pick
from dccd_cli.exchange.rows import columns, ms_column, s_column
from dccd_cli.timeutil import MS, NS, ceil_ms, ms_to_ns, s_to_ns

SAMPLES = Path(__file__).parent.parent / "fixtures" / "samples"


# -- paths and envelopes -----------------------------------------------------------------


def test_pick_walks_mappings_lists_and_the_one_list_of_a_mapping() -> None:
    body = {"result": {"XXBTZUSD": [[1, "2"]], "last": "17"}, "error": ["E1"]}
    assert pick(body, "result.last") == "17"
    assert pick(body, "result.*") == [[1, "2"]]
    assert pick(body, "error.0") == "E1"
    assert pick(["error", 11010, "ratelimit: error"], "1") == 11010
    assert pick(body, "result.nothing.deeper") is None
    assert pick(body, "error.5") is None
    assert pick({"a": [1], "b": [2]}, "*") is None  # two lists: none is *the* list
    assert pick(body, "") is body


@pytest.mark.parametrize(("path", "rows"), [
    ("okx/history-candles.json", "data"),
    ("bybit/kline.json", "result.list"),
    ("kraken/OHLC.json", "result.*"),
    ("kraken/Trades.json", "result.*"),
    ("binance/klines.json", ""),
])
def test_envelopes_unwrap_the_real_samples(path: str, rows: str) -> None:
    body = json.loads((SAMPLES / path).read_text())
    got = Envelope(rows).unwrap(body, what=path, exchange="x")
    assert isinstance(got, list) and got and isinstance(got[0], list)


def test_an_envelope_without_its_list_is_a_protocol_error_naming_the_path() -> None:
    with pytest.raises(ProtocolError, match=r"/ohlc: no data\.ohlc list in the reply"):
        Envelope("data.ohlc").unwrap({"data": {}}, what="/ohlc", exchange="bitstamp")
    with pytest.raises(ProtocolError, match="a dict, not a list"):
        Envelope().unwrap({"error": "x"}, what="/list", exchange="bitmex")


# -- ErrorTable's rules --------------------------------------------------------------------


def test_error_text_shows_a_code_only_when_there_is_one() -> None:
    assert error_text("Invalid symbol.", -1121) == "Invalid symbol. (code -1121)"
    assert error_text("Not found", "0") == "Not found"
    assert error_text("", 5) == "code 5"
    assert error_text(None, None) == "no message"


def test_ok_codes_and_absent_codes_are_no_error() -> None:
    table = ErrorTable(code="code", message=("msg",), ok=ErrorTable.codes(0))
    assert table.check("x", 200, {}, {"code": "0", "msg": "", "data": []}) is None
    assert table.check("x", 200, {}, {"msg": "stray words, no code"}) is None
    assert type(table.check("x", 200, {}, {"code": "1", "msg": "no"})) is ExchangeError


def test_classes_follow_codes_then_words_then_statuses() -> None:
    table = ErrorTable(
        code="c", message=("m",), rate_limited=ErrorTable.codes(1), unknown_symbol=ErrorTable.codes(2),
        server=ErrorTable.codes(3), refused=ErrorTable.codes(4), unknown_symbol_words=("pair",),
        server_words=("maintenance",),
    )
    def kind(status: int, code: int, message: str = "m") -> type:
        return type(table.check("x", status, {}, {"c": code, "m": message}))
    assert kind(200, 1) is RateLimitedError
    assert kind(400, 2) is UnknownSymbolError
    assert kind(200, 3) is ServerError
    assert kind(500, 4) is ExchangeError  # a listed refusal, whatever the status
    assert kind(500, 9) is ServerError and kind(400, 9) is ExchangeError
    assert kind(200, 9) is ExchangeError  # in_ok_reply
    assert kind(400, 9, "unknown pair") is UnknownSymbolError
    assert kind(500, 9, "unknown pair") is ServerError  # only refusals name a market
    assert kind(400, 9, "Maintenance") is ServerError
    assert kind(429, 2) is RateLimitedError  # HTTP 429 comes first
    unlisted = ErrorTable(code="c", message=("m",), unlisted=ExchangeError)
    assert type(unlisted.check("x", 503, {}, {"c": 9, "m": "m"})) is ExchangeError


def test_an_unknown_symbol_is_named_with_the_exchange() -> None:
    verdict = OkxAdapter.check(200, {}, {"code": "51001", "msg": "Instrument ID does not exist"})
    assert str(verdict) == "okx: Instrument ID does not exist (code 51001)"


def test_retry_after_headers_win_over_the_tables_wait() -> None:
    table = ErrorTable(rate_limit_wait=5.0)
    verdict = table.check("x", 429, {"retry-after": "12"}, None)
    assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 12
    dated = {"retry-after": "Mon, 01 Jan 2024 00:00:30 GMT", "date": "Mon, 01 Jan 2024 00:00:00 GMT"}
    verdict = table.check("x", 429, dated, None)
    assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 30
    verdict = table.check("x", 429, {}, None)
    assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 5.0
    # Without a wait of its own, a bare 429 stays the client's (it reads Retry-After too).
    assert ErrorTable().check("x", 429, {}, None) is None


# -- MarketFields and the generic loader -------------------------------------------------------


def test_market_fields_read_an_item() -> None:
    fields = MarketFields(endpoint="/m", native="id", base="b", quote="q", listed="t",
                          extra=("state",), aliases={"XBT": "BTC"}, only={"kind": "spot"})
    got = fields.market({"id": "xbt_usdt", "b": "xbt", "q": "usdt", "t": "1548133413000",
                         "kind": "SPOT", "state": "live", "other": 1})
    assert got == Market(symbol="BTC-USDT", native="xbt_usdt", base="BTC", quote="USDT",
                         listed_ns=1548133413000 * MS, extra={"state": "live"})
    assert fields.market({"id": "x", "b": "a", "q": "b", "kind": "swap"}) is None
    assert fields.market({"id": "x", "b": "a", "q": "b"}) is None  # no kind: not ours
    unlisted = fields.market({"id": "x", "b": "a", "q": "b", "t": "0", "kind": "spot"})
    assert unlisted is not None and unlisted.listed_ns is None
    lenient = MarketFields(endpoint="/m", native="id", base="b", quote="q",
                           only={"kind": "spot"}, only_default=True)
    assert lenient.market({"id": "x", "b": "a", "q": "b"}) is not None
    iso = MarketFields(endpoint="/m", native="id", base="b", quote="q", listed="t",
                       listed_unit="iso")
    got = iso.market({"id": "x", "b": "a", "q": "b", "t": "2019-01-01T00:00:00.000Z"})
    assert got is not None and got.listed_ns == 1546300800 * NS


async def test_the_generic_loader_reads_each_declared_list() -> None:
    cases: list[tuple[Any, Any, list[tuple[str, str]]]] = [
        (BinanceAdapter, {"symbols": [{"symbol": "BTCUSDT", "baseAsset": "btc",
                                       "quoteAsset": "USDT", "status": "TRADING"}]},
         [("BTC-USDT", "BTCUSDT")]),
        (OkxAdapter, {"code": "0", "msg": "", "data": [
            {"instId": "ETH-USDT", "baseCcy": "ETH", "quoteCcy": "USDT", "listTime": "1", "state": "live"}]},
         [("ETH-USDT", "ETH-USDT")]),
        (BitmexAdapter, [
            {"symbol": "XBT_USDT", "typ": "IFXXXP", "underlying": "XBT", "quoteCurrency": "USDT"},
            {"symbol": "XBTUSD", "typ": "FFWCSX", "underlying": "XBT", "quoteCurrency": "USD"}],
         [("BTC-USDT", "XBT_USDT")]),
        (BitstampAdapter, [
            {"market_symbol": "btcusd", "base_currency": "BTC", "counter_currency": "USD"},
            {"market_symbol": "btcusd-perp", "base_currency": "BTC", "counter_currency": "USD",
             "market_type": "PERPETUAL"}],
         [("BTC-USD", "btcusd")]),
        (BybitAdapter, {"retCode": 0, "result": {"list": [
            {"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "status": "Trading"}]}},
         [("BTC-USDT", "BTCUSDT")]),
    ]
    for cls, body, want in cases:
        handler, seen = replies((200, body))
        ex, _ = make_adapter(cls, handler)
        markets = await ex.load_markets()
        assert [(m.symbol, m.native) for m in markets] == want, cls.name
        assert seen[0].url.path == cls.market_fields.endpoint
        await ex.http.aclose()


# -- rows and units ------------------------------------------------------------------------


def test_columns_and_unit_columns() -> None:
    assert columns([[1, 2, 3], [4, 5, 6, 7]], 3, "rows", exchange="x") == [(1, 4), (2, 5), (3, 6)]
    with pytest.raises(ProtocolError, match="rows of fewer than 3 fields"):
        columns([[1, 2]], 3, "rows", exchange="x")
    assert ms_column(["1670608800000", "1"]).to_pylist() == [1670608800000 * MS, MS]
    assert ms_column([1670608800000]).to_pylist() == [1670608800000 * MS]
    assert s_column(pa.array(["1710327600"])).to_pylist() == [1710327600 * NS]
    assert s_column([1415398768]).type == pa.int64()


@pytest.mark.parametrize(("ns", "ms"), [(0, 0), (1, 1), (MS, 1), (MS + 1, 2), (-1, 0), (-MS - 1, -1)])
def test_ceil_ms(ns: int, ms: int) -> None:
    assert ceil_ms(ns) == ms


def test_ms_and_s_to_ns() -> None:
    assert ms_to_ns("1548133413000") == ms_to_ns(1548133413000) == 1548133413000 * MS
    assert s_to_ns("1710327600") == 1710327600 * NS
