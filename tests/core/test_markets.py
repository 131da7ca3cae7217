"""Market names as users write them: the forms accepted, the one matching, the suggestions."""

from __future__ import annotations

import asyncio

import pytest

from dccd_cli.errors import UnknownSymbolError
from dccd_cli.exchange.adapter import Market
from dccd_cli.exchange.markets import (
    check_symbol,
    close_markets,
    match_symbol,
    resolve,
    unknown_symbol,
)


def _market(symbol: str, native: str, **extra: str) -> Market:
    base, quote = symbol.split("-")
    return Market(symbol=symbol, native=native, base=base, quote=quote, extra=extra)


MARKETS = {m.symbol: m for m in [
    _market("BTC-USD", "XBTUSD", key="XXBTZUSD"),
    _market("BTC-USDT", "XBTUSDT", key="XBTUSDT"),
    _market("ETH-USDT", "ETHUSDT", key="ETHUSDT"),
    _market("ETH-BTC", "ETHXBT", key="XETHXXBT"),
    _market("SOL-EUR", "SOLEUR", key="SOLEUR"),
]}


@pytest.mark.parametrize("written,checked", [
    ("BTC-USDT", "BTC-USDT"), ("btc-usdt", "BTC-USDT"), ("BTC/USDT", "BTC-USDT"),
    ("btc/usdt", "BTC-USDT"), (" ETH/BTC ", "ETH-BTC"), ("BTCUSDT", "BTCUSDT"),
    ("tBTCUSD", "tBTCUSD"), ("XBT_USDT", "XBT_USDT"), ("*-usdt", "*-USDT"), ("BTC-[UE]*", "BTC-[UE]*"),
])
def test_the_forms_a_user_may_write(written: str, checked: str) -> None:
    assert check_symbol(written) == checked


@pytest.mark.parametrize("written", ["../BTC-USDT", "BTC USDT", "BTC/USDT/ETH", "БТЦ-USDT", "*-US DT",
                                     "*/x", "", "A" * 41])
def test_what_is_no_market_name_is_refused_before_any_lookup(written: str) -> None:
    with pytest.raises(UnknownSymbolError):
        check_symbol(written)


@pytest.mark.parametrize("name,found", [
    ("BTC-USDT", ["BTC-USDT"]), ("XBTUSD", ["BTC-USD"]), ("xbtusd", ["BTC-USD"]),
    ("XXBTZUSD", ["BTC-USD"]), ("*-USDT", ["BTC-USDT", "ETH-USDT"]), ("*-usd?", ["BTC-USDT", "ETH-USDT"]),
    ("ETH-*", ["ETH-BTC", "ETH-USDT"]), ("BTC-EUR", []), ("*-GBP", []),
])
def test_one_matching_of_unified_names_own_names_and_patterns(name: str, found: list[str]) -> None:
    assert [m.symbol for m in match_symbol(name, MARKETS)] == found


def test_suggestions_are_close_names_then_the_same_base_then_the_same_quote() -> None:
    assert close_markets("BTC-USDX", MARKETS)[:2] == ["BTC-USD", "BTC-USDT"]
    assert set(close_markets("XBTUSDC", MARKETS)[:2]) == {"BTC-USDT", "BTC-USD"}  # own names are close too
    assert set(close_markets("DOGE-USDT", MARKETS)) == {"BTC-USDT", "ETH-USDT"}  # same quote
    assert set(close_markets("SOL-GBP", MARKETS)) == {"SOL-EUR"}  # same base
    assert close_markets("ETH", MARKETS)[:2] == ["ETH-BTC", "ETH-USDT"]


def test_an_unknown_name_is_refused_with_close_ones_never_only_a_count() -> None:
    text = unknown_symbol("BTC-USDX", "kraken", MARKETS)
    assert text.startswith("unknown symbol 'BTC-USDX' on kraken; did you mean BTC-USD, BTC-USDT")
    assert "markets listed" not in text
    far = unknown_symbol("ZZZ-QQQ", "kraken", MARKETS)
    assert "none is close" in far and "`dccd markets kraken` lists its 5 markets" in far
    assert unknown_symbol("*-GBP", "kraken", MARKETS).startswith("pattern '*-GBP' matches no market on kraken")


class _Lister:
    """An adapter that only lists markets, counting how often it is asked."""

    name = "fake"

    def __init__(self) -> None:
        self.asked = 0

    async def load_markets(self) -> list[Market]:
        self.asked += 1
        return list(MARKETS.values())


def test_a_market_named_twice_in_any_spelling_is_resolved_once_in_first_order() -> None:
    lister = _Lister()
    found = asyncio.run(resolve(lister, "http://fake", [  # type: ignore[arg-type]
        "eth/usdt", "XBTUSDT", "BTC-USDT", "btc/usdt", "*-USDT", "XXBTZUSD"]))
    assert [m.symbol for m in found] == ["ETH-USDT", "BTC-USDT", "BTC-USD"]
    assert lister.asked == 1


def test_an_unknown_name_refreshes_the_cached_list_once_then_suggests() -> None:
    lister = _Lister()
    asyncio.run(resolve(lister, "http://fake", ["BTC-USDT"]))  # type: ignore[arg-type]
    with pytest.raises(UnknownSymbolError, match="did you mean BTC-USD, BTC-USDT"):
        asyncio.run(resolve(lister, "http://fake", ["BTC-USDX"]))  # type: ignore[arg-type]
    assert lister.asked == 2  # the cache, then once more from the exchange
