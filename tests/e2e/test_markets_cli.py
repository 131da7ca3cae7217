"""`dccd markets`, and market names on `dccd ohlc`: ccxt's and the exchange's own
spellings, duplicates fetched once, patterns, and suggestions for an unknown name."""

from __future__ import annotations

import json
from pathlib import Path

from dccd_testing import run_cli

from dccd_cli.emulator import EmulatorServer


def test_markets_lists_one_line_per_market_sorted_with_its_own_name(emulator: EmulatorServer) -> None:
    r = run_cli("markets", "okx", "--base-url", emulator.venue_url("okx"))
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == [
        "BTC-USDT  BTC-USDT  listed 2017-08-17",
        "ETH-USDT  ETH-USDT  listed 2017-08-17",
        "SOL-EUR   SOL-EUR   listed 2021-06-01",
    ]
    r = run_cli("markets", "binance", "*-usdt", "--base-url", emulator.venue_url("binance"))
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines() == ["BTC-USDT  BTCUSDT", "ETH-USDT  ETHUSDT"]


def test_markets_json_and_its_errors(emulator: EmulatorServer) -> None:
    r = run_cli("markets", "kraken", "BTC/USDT", "--json", "--base-url", emulator.venue_url("kraken"))
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["command"] == "markets" and doc["exchange"] == "kraken"
    assert [(m["symbol"], m["native_symbol"]) for m in doc["markets"]] == [("BTC-USDT", "XBTUSDT")]
    r = run_cli("markets", "nopex")
    assert r.code == 2 and r.stderr.startswith("dccd: error: unknown exchange 'nopex'")
    r = run_cli("markets", "kraken", "*-GBP", "--base-url", emulator.venue_url("kraken"))
    assert r.code == 2 and "pattern '*-GBP' matches no market on kraken" in r.stderr, r.stderr


def test_a_market_named_in_three_spellings_is_one_series(emulator: EmulatorServer, tmp_path: Path) -> None:
    r = run_cli("ohlc", "binance", "BTC/USDT", "BTCUSDT", "btc-usdt", "--span", "1h", "--start",
                "2024-01-01", "--end", "2024-01-02", "--json", "--out", str(tmp_path),
                "--base-url", emulator.venue_url("binance"))
    assert r.code == 0, r.stderr
    series = json.loads(r.stdout)["series"]
    assert [(s["symbol"], s["native_symbol"], s["rows_added"]) for s in series] == [("BTC-USDT", "BTCUSDT", 24)]


def test_own_names_and_patterns_on_the_command_line(emulator: EmulatorServer, tmp_path: Path) -> None:
    r = run_cli("ohlc", "bitfinex", "tETHUST", "*-eur", "--span", "1h", "--start", "2024-02-29",
                "--end", "2024-03-01", "--json", "--out", str(tmp_path),
                "--base-url", emulator.venue_url("bitfinex"))
    assert r.code == 0, r.stderr
    assert [s["symbol"] for s in json.loads(r.stdout)["series"]] == ["ETH-USDT", "SOL-EUR"]


def test_an_unknown_symbol_suggests_close_ones_and_writes_nothing(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli("trades", "binance", "BTC-USDX", "--start", "2024-01-01", "--out", str(out),
                "--base-url", emulator.venue_url("binance"))
    assert r.code == 2
    assert r.stderr == "dccd: error: unknown symbol 'BTC-USDX' on binance; did you mean BTC-USDT, ETH-USDT?\n"
    r = run_cli("trades", "binance", "*-GBP", "--start", "2024-01-01", "--out", str(out),
                "--base-url", emulator.venue_url("binance"))
    assert r.code == 2 and "pattern '*-GBP' matches no market on binance" in r.stderr
    assert not out.exists()


def test_sync_files_read_market_names_the_same_way(emulator: EmulatorServer, tmp_path: Path) -> None:
    config = tmp_path / "sync.toml"
    job = (f'[[job]]\nexchange = "binance"\nohlc = ["1h"]\nstart = "-1d"\nout = "{tmp_path / "data"}"\n'
           f'base_url = "{emulator.venue_url("binance")}"\n')
    config.write_text(job + 'symbols = ["btc/usdt", "ETHUSDT", "BTC-USDT"]\n')
    r = run_cli("sync", str(config), "--dry-run", "--json")
    assert r.code == 0, r.stderr
    assert [s["symbol"] for s in json.loads(r.stdout)["series"]] == ["BTC-USDT", "ETH-USDT"]
    config.write_text(job + 'symbols = ["BTC-USDX"]\n')
    r = run_cli("sync", str(config), "--dry-run")
    assert r.code == 2
    assert "sync.toml:7: [[job]] 'binance#1': unknown symbol 'BTC-USDX' on binance; did you mean BTC-USDT" in r.stderr
