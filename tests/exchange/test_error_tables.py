"""Every adapter's declared ErrorTable maps its exchange's error replies — the real ones in
tests/fixtures/samples/ and the ones its module documents — onto the right error class,
and leaves successes and bodies it cannot read to the generic HTTP rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dccd_cli.adapters.binance import BinanceAdapter
from dccd_cli.adapters.bitfinex import BitfinexAdapter
from dccd_cli.adapters.bitmex import BitmexAdapter
from dccd_cli.adapters.bitstamp import BitstampAdapter, _pair_check
from dccd_cli.adapters.bybit import BybitAdapter
from dccd_cli.adapters.coinbase import CoinbaseAdapter
from dccd_cli.adapters.kraken import KrakenAdapter
from dccd_cli.adapters.okx import OkxAdapter
from dccd_cli.errors import (
    BannedError,
    DccdError,
    ExchangeError,
    RateLimitedError,
    ServerError,
    UnknownSymbolError,
)
from dccd_cli.exchange.adapter import Adapter
from dccd_cli.exchange.registry import adapters

SAMPLES = Path(__file__).parent.parent / "fixtures" / "samples"


def sample(path: str) -> Any:
    return json.loads((SAMPLES / path).read_text())


# (adapter, HTTP status, body, expected class, words the message must carry)
REAL = [
    (BinanceAdapter, 400, "binance/error_bad_symbol.json", ExchangeError, "Invalid symbol. (code -1121)"),
    (BinanceAdapter, 200, "binance/error_bad_symbol.json", ServerError, "Invalid symbol."),
    (BitfinexAdapter, 429, "bitfinex/error_ratelimit.json", RateLimitedError, "ratelimit: error"),
    (BitfinexAdapter, 500, "bitfinex/error_ratelimit.json", RateLimitedError, "code 11010"),
    (BybitAdapter, 200, "bybit/error_bad_symbol.json", UnknownSymbolError, "Not supported symbols"),
    (BybitAdapter, 200, "bybit/error_bad_interval.json", ExchangeError, "Invalid period!"),
    (CoinbaseAdapter, 400, "coinbase/error_too_many_candles.json", ExchangeError, "exceeds 300"),
    (KrakenAdapter, 200, "kraken/error_rate_limit.json", RateLimitedError, "EAPI:Rate limit exceeded"),
    (KrakenAdapter, 200, "kraken/error_unknown_pair.json", UnknownSymbolError, "Unknown asset pair"),
    (OkxAdapter, 429, "okx/error_ratelimit.json", RateLimitedError, "Too Many Requests"),
    (OkxAdapter, 200, "okx/error_ratelimit.json", RateLimitedError, "code 50011"),
    (OkxAdapter, 200, "okx/error_bad_instrument.json", UnknownSymbolError, "Instrument ID does not exist"),
]


@pytest.mark.parametrize(("cls", "status", "path", "kind", "words"), REAL,
                         ids=[f"{c.name}-{s}-{p.split('/')[1]}" for c, s, p, _, _ in REAL])
def test_real_error_replies_map_to_their_class(cls: type[Adapter], status: int, path: str,
                                               kind: type[DccdError], words: str) -> None:
    verdict = cls.check(status, {}, sample(path))
    assert type(verdict) is kind, verdict
    assert words in str(verdict)


# Error bodies each adapter's module documents, beyond the recorded samples.
DOCUMENTED: list[tuple[type[Adapter], int, Any, type[DccdError]]] = [
    (BinanceAdapter, 429, {"code": -1003, "msg": "Too much request weight used"}, RateLimitedError),
    (BinanceAdapter, 503, {"code": -1001, "msg": "Internal error"}, ServerError),
    (BitfinexAdapter, 500, ["error", 10020, "symbol: invalid"], ExchangeError),
    (BitfinexAdapter, 500, ["error", 20060, "maintenance"], ServerError),
    (BitfinexAdapter, 500, ["error", 10000, "unknown error"], ServerError),
    (BitfinexAdapter, 200, {"error": "ERR_RATE_LIMIT"}, RateLimitedError),
    (BitmexAdapter, 400, {"error": {"message": "Invalid symbol FOO_USDT", "name": "HTTPError"}},
     UnknownSymbolError),
    (BitmexAdapter, 400, {"error": {"message": "binSize is invalid", "name": "HTTPError"}},
     ExchangeError),
    (BitmexAdapter, 503, None, ServerError),
    (BitmexAdapter, 429, {"error": {"message": "Rate limit exceeded", "name": "RateLimitError"}},
     RateLimitedError),
    (BitstampAdapter, 400, {"status": "error", "reason": {"step": ["Not a valid choice."]},
                            "code": "400.000"}, ExchangeError),
    (BitstampAdapter, 400, {"status": "error", "reason": "Rate limit exceeded", "code": "400.002"},
     RateLimitedError),
    (BitstampAdapter, 200, {"status": "error", "reason": "Maintenance in progress"}, ServerError),
    (BybitAdapter, 200, {"retCode": 10006, "retMsg": "Too many visits!", "result": {},
                         "time": 1704067200000}, RateLimitedError),
    (BybitAdapter, 200, {"retCode": 10016, "retMsg": "System error. Please try again later"},
     ServerError),
    (BybitAdapter, 403, None, BannedError),
    (CoinbaseAdapter, 404, {"message": "NotFound"}, UnknownSymbolError),
    (CoinbaseAdapter, 429, {"message": "Public rate limit exceeded"}, RateLimitedError),
    (KrakenAdapter, 200, {"error": ["EService:Unavailable"]}, ServerError),
    (KrakenAdapter, 200, {"error": ["EGeneral:Invalid arguments"]}, ExchangeError),
    (OkxAdapter, 200, {"code": "50013", "msg": "Systems are busy", "data": []}, ServerError),
    (OkxAdapter, 200, {"code": "51000", "msg": "Parameter bar error", "data": []}, ExchangeError),
    (OkxAdapter, 500, {"code": "51000", "msg": "Parameter bar error", "data": []}, ExchangeError),
]


@pytest.mark.parametrize(("cls", "status", "body", "kind"), DOCUMENTED,
                         ids=[f"{c.name}-{s}-{k.__name__}" for c, s, _, k in DOCUMENTED])
def test_documented_error_replies_map_to_their_class(cls: type[Adapter], status: int, body: Any,
                                                     kind: type[DccdError]) -> None:
    assert type(cls.check(status, {}, body)) is kind


SUCCESSES: list[tuple[type[Adapter], Any]] = [
    (BinanceAdapter, [[1499040000000, "0.1"]]),
    (BinanceAdapter, {"serverTime": 1499827319559}),
    (BitfinexAdapter, [[1, 1574694475039, 1.0, 2.0]]),
    (BitmexAdapter, [{"timestamp": "2019-01-05T21:45:31.597Z"}]),
    (BitstampAdapter, {"data": {"ohlc": []}}),
    (BybitAdapter, sample("bybit/kline.json")),
    (CoinbaseAdapter, sample("coinbase/trades_docs_example.json")),
    (KrakenAdapter, sample("kraken/OHLC.json")),
    (KrakenAdapter, {"error": ["WGeneral:Something"], "result": {}}),
    (OkxAdapter, sample("okx/history-candles.json")),
]


@pytest.mark.parametrize(("cls", "body"), SUCCESSES,
                         ids=[f"{c.name}-{i}" for i, (c, _) in enumerate(SUCCESSES)])
def test_successes_are_not_errors(cls: type[Adapter], body: Any) -> None:
    assert cls.check(200, {}, body) is None


@pytest.mark.parametrize("name", sorted(adapters()))
def test_every_adapter_declares_a_table_and_leaves_bare_pages_and_bans_to_the_client(
        name: str) -> None:
    cls = adapters()[name]
    assert cls.errors is not None
    # An HTML 502 page (parsed as nothing) keeps its raw text: the client words it.
    assert cls.check(502, {}, None) is None
    # 418 is a ban, always the client's.
    assert cls.check(418, {}, {"code": -1003, "msg": "banned"}) is None


def test_rate_limit_waits_come_from_the_reply_or_the_table() -> None:
    headers = {"retry-after": "7"}
    verdict = OkxAdapter.check(429, headers, sample("okx/error_ratelimit.json"))
    assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 7
    verdict = OkxAdapter.check(429, {}, None)  # a 429 without OKX's body
    assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 2.0
    verdict = BitfinexAdapter.check(500, {}, sample("bitfinex/error_ratelimit.json"))
    assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 60
    verdict = BitfinexAdapter.check(500, {}, ["error", 20060, "maintenance"])
    assert isinstance(verdict, ServerError) and verdict.retry_after == 30
    verdict = BitmexAdapter.check(503, {}, None)
    assert isinstance(verdict, ServerError) and verdict.retry_after == 0.5
    verdict = CoinbaseAdapter.check(429, {}, {"message": "Public rate limit exceeded"})
    assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 1.0
    # Bybit: until X-Bapi-Limit-Reset-Timestamp, on the clock of the reply's own ``time``.
    body = {"retCode": 10006, "retMsg": "Too many visits!", "time": 1704067200000}
    verdict = BybitAdapter.check(200, {"x-bapi-limit-reset-timestamp": "1704067203500"}, body)
    assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 3.5
    # Kraken: until the instant Throttled names, on the reply's Date.
    verdict = KrakenAdapter.check(200, {"date": "Mon, 01 Jan 2024 00:00:00 GMT"},
                                  {"error": ["EService:Throttled: 1704067230"]})
    assert isinstance(verdict, RateLimitedError) and verdict.retry_after == 30


def test_bitstamp_pair_paths_read_404_and_pair_refusals_as_unknown_markets() -> None:
    assert type(_pair_check(404, {}, None)) is UnknownSymbolError
    refusal = {"status": "error", "reason": "Invalid currency pair.", "code": "404.002"}
    assert type(_pair_check(400, {}, refusal)) is UnknownSymbolError
    assert type(BitstampAdapter.check(400, {}, refusal)) is ExchangeError
    bad_step = {"status": "error", "reason": {"step": ["Not a valid choice."]}}
    assert type(_pair_check(400, {}, bad_step)) is ExchangeError
