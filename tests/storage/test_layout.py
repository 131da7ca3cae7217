"""Series keys, directory names, and the day/month/year partitions of a series."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dccd_cli.errors import OutputPathError
from dccd_cli.storage import SeriesKey, partition_for
from dccd_cli.storage.layout import parse_series_dir, partition_from_name
from dccd_cli.timeutil import DAY_NS, Span, datetime_to_ns

H1 = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
TRADES = SeriesKey("trades", "binance", "BTC-USDT")


def ns(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    return datetime_to_ns(datetime(y, m, d, hh, mm, ss, tzinfo=UTC))


def test_series_dirs_are_hive_paths(tmp_path: Path) -> None:
    ohlc = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
    trades = SeriesKey("trades", "binance", "BTC-USDT")
    assert ohlc.dir(tmp_path) == tmp_path / "ohlc/exchange=binance/symbol=BTC-USDT/span=1h"
    assert trades.dir(tmp_path) == tmp_path / "trades/exchange=binance/symbol=BTC-USDT"
    assert parse_series_dir(tmp_path, ohlc.dir(tmp_path)) == ohlc
    assert parse_series_dir(tmp_path, trades.dir(tmp_path)) == trades
    assert parse_series_dir(tmp_path, tmp_path / "ohlc/exchange=binance/symbol=x/span=1h") is None


@pytest.mark.parametrize(
    "symbol",
    [
        "../../etc",
        "..",
        "BTC/USDT",
        "BTC-USDT/../../x",
        "btc-usdt",
        "BTC-",
        "-USDT",
        "BTCUSDT",
        "BTC-USDT\x00",
        "BTC-USDT\n",
        "BTC-US DT",
        "A" * 21 + "-USDT",
        "",
        "BTC-USDT-PERP",
    ],
)
def test_symbols_that_could_escape_or_are_not_unified_are_rejected(symbol: str) -> None:
    with pytest.raises(OutputPathError):
        SeriesKey("ohlc", "binance", symbol, "1h")
    with pytest.raises(OutputPathError):
        SeriesKey("trades", "binance", symbol)


@pytest.mark.parametrize("exchange", ["..", "Binance", "bin/ance", "", "a-b", "x\n"])
def test_bad_exchange_names_are_rejected(exchange: str) -> None:
    with pytest.raises(OutputPathError):
        SeriesKey("trades", exchange, "BTC-USDT")


@pytest.mark.parametrize("span", [None, "", "0m", "1y", "01h", "12345m", "1h/..", "../1h", "1H"])
def test_bad_spans_are_rejected(span: str | None) -> None:
    with pytest.raises(OutputPathError):
        SeriesKey("ohlc", "binance", "BTC-USDT", span)


def test_kind_and_span_must_agree() -> None:
    with pytest.raises(OutputPathError):
        SeriesKey("trades", "binance", "BTC-USDT", "1h")
    with pytest.raises(OutputPathError):
        SeriesKey("quotes", "binance", "BTC-USDT")  # type: ignore[arg-type]
    # Month and minute spans are distinct series (see the case-insensitivity note in layout).
    assert SeriesKey("ohlc", "binance", "BTC-USDT", "1M") != SeriesKey(
        "ohlc", "binance", "BTC-USDT", "1m"
    )


def test_month_spans_have_a_directory_value_that_no_case_folding_confuses(tmp_path: Path) -> None:
    month = SeriesKey("ohlc", "binance", "BTC-USDT", "1M")
    minute = SeriesKey("ohlc", "binance", "BTC-USDT", "1m")
    assert month.dir(tmp_path).name == "span=1mo"
    assert minute.dir(tmp_path).name == "span=1m"
    assert month.dir(tmp_path).name.lower() != minute.dir(tmp_path).name.lower()
    assert SeriesKey("ohlc", "bitfinex", "BTC-USD", "3M").dir(tmp_path).name == "span=3mo"
    # The key keeps the span as users write it; both directory values read back to it.
    assert parse_series_dir(tmp_path, month.dir(tmp_path)) == month
    assert parse_series_dir(tmp_path, month.dir(tmp_path).with_name("span=1M")) == month
    assert Span.parse("1mo") == Span.parse("1M")  # the CLI takes the directory value too


def test_month_partitions() -> None:
    jan = partition_for(H1, ns(2024, 1, 31, 23, 59))
    assert (jan.start_ns, jan.end_ns, jan.name) == (
        ns(2024, 1, 1),
        ns(2024, 2, 1),
        "2024-01.parquet",
    )
    assert partition_for(H1, ns(2024, 2, 1)).name == "2024-02.parquet"
    dec = partition_for(H1, ns(2023, 12, 5))
    assert dec.end_ns == ns(2024, 1, 1)
    feb = partition_for(H1, ns(2024, 2, 29, 12))  # leap day
    assert feb.end_ns - feb.start_ns == 29 * DAY_NS
    assert partition_for(H1, ns(2024, 1, 1) - 1).name == "2023-12.parquet"
    assert partition_for(SeriesKey("ohlc", "binance", "BTC-USDT", "12h"), ns(2024, 3, 5)).name == (
        "2024-03.parquet"
    )


@pytest.mark.parametrize("span", ["1d", "3d", "1w", "1M", "3M"])
def test_spans_of_a_day_and_longer_are_stored_a_file_per_year(span: str) -> None:
    key = SeriesKey("ohlc", "binance", "BTC-USDT", span)
    part = partition_for(key, ns(2024, 12, 31, 12))
    assert (part.start_ns, part.end_ns, part.name) == (ns(2024, 1, 1), ns(2025, 1, 1), "2024.parquet")
    assert partition_for(key, ns(2025, 1, 1)).name == "2025.parquet"
    # A week opening on Monday 2024-12-30 is in 2024's file: files go by the bar's open.
    assert partition_for(key, ns(2024, 12, 30)).name == "2024.parquet"


def test_day_partitions() -> None:
    day = partition_for(TRADES, ns(2024, 1, 15, 23, 59, 59) + 999_999_999)
    assert (day.start_ns, day.end_ns, day.name) == (
        ns(2024, 1, 15),
        ns(2024, 1, 16),
        "2024-01-15.parquet",
    )
    assert partition_for(TRADES, ns(2024, 1, 16)).name == "2024-01-16.parquet"


def test_partition_names_round_trip() -> None:
    daily = SeriesKey("ohlc", "binance", "BTC-USDT", "1d")
    for key, ts in [(H1, ns(2024, 12, 9)), (daily, ns(2024, 12, 9)), (TRADES, ns(2024, 2, 29, 3))]:
        part = partition_for(key, ts)
        assert partition_from_name(key.kind, part.name) == part
    # An older dccd's monthly file of a day+ span is still read as its month.
    assert partition_from_name("ohlc", "2024-02.parquet") == partition_for(H1, ns(2024, 2, 9))
    for bad in [
        "2024-13.parquet",
        "2024-1.parquet",
        "_coverage.json",
        ".2024-01.parquet",
        "2024-01.parquet.tmp",
    ]:
        assert partition_from_name("ohlc", bad) is None
    for bad in ["2024-02-30.parquet", "2024-01.parquet", "2024-01-15.parquet.x"]:
        assert partition_from_name("trades", bad) is None
