"""`dccd ohlc|trades --dry-run`: the plan and its cost, checked against the real run.

Each test runs the dry run, then the real download of the same range, and compares:
OHLC and Binance trades (consecutive ids) are exact, sampled trades within a tolerance.
A dry run writes nothing: the output directory does not even exist afterwards.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dccd_testing import FROZEN_NOW, run_cli

from dccd_cli.emulator import EmulatorServer
from dccd_cli.timeutil import parse_time

ESTIMATE_KEYS = {"requests", "weight", "seconds", "rows", "bytes", "how", "exact", "rows_low",
                 "rows_high", "probes", "at_least"}


def both(emulator: EmulatorServer, exchange: str, args: tuple[str, ...], out: Path
         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dry run's summary (the output directory still absent after it), then the real run's."""
    base = ("--base-url", emulator.venue_url(exchange), "--out", str(out), "--json")
    dry = run_cli(*args, *base, "--dry-run")
    assert dry.code == 0, dry.stderr
    assert not out.exists(), "a dry run created the output directory"
    real = run_cli(*args, *base)
    assert real.code == 0, real.stderr
    return json.loads(dry.stdout), json.loads(real.stdout)


def test_ohlc_dry_run_is_exact_and_writes_nothing(emulator: EmulatorServer, tmp_path: Path) -> None:
    args = ("ohlc", "binance", "BTC-USDT", "ETH-USDT", "--span", "1m", "--start", "2024-02-20",
            "--end", "2024-02-22T12:00")
    plan, done = both(emulator, "binance", args, tmp_path / "data")
    assert plan["dry_run"] is True and plan["ok"] and plan["exit_code"] == 0
    bars = 2 * 1440 + 720
    for est_series, real in zip(plan["series"], done["series"], strict=True):
        est = est_series["estimate"]
        assert set(est) == ESTIMATE_KEYS
        assert est["how"] == "bars" and est["exact"] and est["probes"] == 0
        assert est["rows"] == bars == real["rows_added"]
        assert est["requests"] == math.ceil(bars / 1000) == real["requests"]
        assert est["weight"] == 2 * est["requests"]  # klines weigh 2
        assert est_series["rows_added"] == 0 and est_series["files"] == []
    total = plan["estimate"]
    assert total["requests"] == 2 * math.ceil(bars / 1000) and total["rows"] == 2 * bars
    assert total["probes"] >= 1  # the exchange's clock at least: the plan says what it sent
    # Bytes: about what the real files take (the estimate is per row; small files weigh more).
    stored = sum(Path(f).stat().st_size for s in done["series"] for f in s["files"])
    assert 0.7 < total["bytes"] / stored < 1.3, (total["bytes"], stored)


def test_ohlc_dry_run_text_and_bad_input(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    base = ("--base-url", emulator.venue_url("binance"), "--out", str(out))
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-01-01", "--end", "2024-02-01",
                *base, "--dry-run")
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines()[0] == "plan (dry run: nothing is fetched or written)"
    assert ("  binance BTC-USDT ohlc 1h: 2024-01-01..2024-02-01; 744 bars, 1 request (weight 2), "
            "33.5 kB, about < 0.1 s") in r.stdout
    assert f"data would go to {out}" in r.stdout
    # Validated like the real run: exit 2, one line, nothing written.
    bad = run_cli("ohlc", "binance", "BTC-USDT", "--span", "7m", "--start", "2024-01-01", *base, "--dry-run")
    assert bad.code == 2 and bad.stderr.startswith("dccd: error: span '7m' is not offered by binance")
    assert not out.exists()


def test_binance_trades_dry_run_counts_exactly_by_ids(emulator: EmulatorServer, tmp_path: Path) -> None:
    # To the exchange's now: no trade after the end yet, so the tail is looked for as well.
    args = ("trades", "binance", "BTC-USDT", "--start", "2024-02-28T06:00")
    plan, done = both(emulator, "binance", args, tmp_path / "data")
    [est_series], [real] = plan["series"], done["series"]
    est = est_series["estimate"]
    assert est["how"] == "ids" and est["exact"]
    assert est["rows"] == real["rows_added"] > 10_000
    assert est["probes"] == 3  # the first trade, nothing after the end, the last minute's trades
    assert est["weight"] == 4 * est["requests"]
    assert abs(est["requests"] - real["requests"]) <= 0.3 * real["requests"], (est, real["requests"])

    # A range that ends in the past: the first trade at each end, two one-row pages.
    args = ("trades", "binance", "BTC-USDT", "--start", "2024-02-26T00:00", "--end", "2024-02-26T07:30")
    plan, done = both(emulator, "binance", args, tmp_path / "past")
    est = plan["series"][0]["estimate"]
    assert est["probes"] == 2 and est["rows"] == done["series"][0]["rows_added"] > 1000


def dry(emulator: EmulatorServer, exchange: str, *args: str, out: Path, json_mode: bool = True) -> Any:
    r = run_cli("trades", exchange, "BTC-USDT", *args, "--base-url", emulator.venue_url(exchange),
                "--out", str(out), "--dry-run", *(("--json",) if json_mode else ()))
    assert r.code == 0, r.stderr
    assert not out.exists()
    return json.loads(r.stdout) if json_mode else r.stdout


def venue_count(emulator: EmulatorServer, start: str, end: str) -> int:
    """The trades the venues hold in ``[start, end)``, by the emulator's market (every
    venue but Binance's aggregates serves each of them)."""
    market, now = emulator.market, FROZEN_NOW
    return (market.trade_id_at("BTC-USDT", parse_time(end, now=now))
            - market.trade_id_at("BTC-USDT", parse_time(start, now=now)))


def test_sampled_trades_dry_run_is_close_and_says_it_is_an_estimate(emulator: EmulatorServer,
                                                                      tmp_path: Path) -> None:
    # Three days of OKX: no consecutive ids, pages of 100 trades, newest first.
    start, end = "2024-02-26", "2024-02-29"
    held = venue_count(emulator, start, end)
    plan = dry(emulator, "okx", "--start", start, "--end", end, out=tmp_path / "json")
    est = plan["series"][0]["estimate"]
    assert est["how"] == "sampled" and not est["exact"] and est["probes"] == 3, est
    assert abs(est["rows"] - held) <= 0.15 * held, (est["rows"], held)
    assert est["rows_low"] <= est["rows"] <= est["rows_high"]
    assert est["requests"] >= est["rows"] / 100  # a page holds 100 trades
    text = dry(emulator, "okx", "--start", start, "--end", end, out=tmp_path / "text", json_mode=False)
    assert "okx BTC-USDT trades: 2024-02-26..2024-02-29; ~" in text
    assert "(sampled; " in text and "at the lowest and highest rate seen" in text
    assert "counting them took 3 requests" in text


def test_sampled_trades_dry_run_against_a_real_download(emulator: EmulatorServer, tmp_path: Path) -> None:
    # Five hours of OKX: some thirty pages, quick to download in a test.
    start, end = "2024-02-29T10:00", "2024-02-29T15:00"
    args = ("trades", "okx", "BTC-USDT", "--start", start, "--end", end)
    plan, done = both(emulator, "okx", args, tmp_path / "data")
    est, real = plan["series"][0]["estimate"], done["series"][0]
    assert real["rows_added"] == venue_count(emulator, start, end) > 1000
    assert est["how"] == "sampled"
    assert abs(est["rows"] - real["rows_added"]) <= 0.15 * real["rows_added"], (est, real["rows_added"])
    assert abs(est["requests"] - real["requests"]) <= 0.3 * real["requests"], (est, real["requests"])
