"""A ban outlives the run that met it: later runs ask the exchange nothing until it ends.

The emulator's Binance venue bans (HTTP 418 with ``Retry-After``) at a chosen request; its
fault layer counts every request that reaches the venue, so "nothing was requested" is
counted where the requests would arrive.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dccd_testing import FROZEN_NOW, TEST_TRADES_SCALE, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.net.bans import ban_file

OHLC = ("ohlc", "binance", "BTC-USDT", "--span", "1m", "--start", "2024-02-20", "--end", "2024-02-28")


def emulator(faults: str) -> EmulatorServer:
    return EmulatorServer(EmulatorSettings(now=FROZEN_NOW, trades_scale=TEST_TRADES_SCALE,
                                           faults={"binance": faults}))


def requests_seen(server: EmulatorServer, venue: str = "binance") -> int:
    return int(server.faults.summary()["requests"].get(venue, 0))


def ohlc(server: EmulatorServer, out: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    r = run_cli(*OHLC, *extra, "--base-url", server.venue_url("binance"), "--out", str(out), "--json")
    return r.code, json.loads(r.stdout), r.stderr


def test_a_ban_is_remembered_and_the_next_run_asks_nothing(tmp_path: Path) -> None:
    out = tmp_path / "data"
    with emulator("418(600)@5/klines") as server:
        code, first, stderr = ohlc(server, out)
        assert code == 1, stderr
        assert "banned" in (first["series"][0]["error"] or "")
        record = json.loads(ban_file("binance", server.venue_url("binance")).read_text())
        until = datetime.fromisoformat(record["until"].replace("Z", "+00:00"))
        assert abs((until - datetime.now(UTC)).total_seconds() - 600) < 30
        assert record["base_url"] == server.venue_url("binance") and record["known"]

        seen = requests_seen(server)
        code, second, stderr = ohlc(server, out)
        assert requests_seen(server) == seen, "the banned exchange was asked again"
        assert code == 1, stderr
        [series] = second["series"]
        assert series["error"] == (f"binance has banned this IP until {record['until']} "
                                   "(remembered from an earlier run); nothing was requested")
        assert series["requests"] == 0 and series["rows_added"] == 0

        # A dry run asks nothing either (trades would take a few requests to count).
        r = run_cli("trades", "binance", "BTC-USDT", "--start", "2024-02-27", "--dry-run", "--json",
                    "--base-url", server.venue_url("binance"), "--out", str(out))
        assert r.code == 1 and requests_seen(server) == seen
        plan = json.loads(r.stdout)
        assert plan["dry_run"] and plan["series"][0]["error"] == series["error"]

        # Text output: one line for the series, saying until when.
        r = run_cli(*OHLC, "--base-url", server.venue_url("binance"), "--out", str(out))
        assert r.code == 1 and requests_seen(server) == seen
        assert f"binance BTC-USDT ohlc 1m: FAILED: binance has banned this IP until {record['until']}" in r.stdout

        # dccd sync: the banned exchange's job fails unasked; the other exchange's job runs.
        config = tmp_path / "sync.toml"
        config.write_text(f"""
[[job]]
name = "banned"
exchange = "binance"
symbols = ["BTC-USDT"]
ohlc = ["1h"]
start = "2024-02-27"
base_url = "{server.venue_url('binance')}"

[[job]]
name = "other"
exchange = "coinbase"
symbols = ["BTC-USDT"]
ohlc = ["1h"]
start = "2024-02-27"
base_url = "{server.venue_url('coinbase')}"
""")
        r = run_cli("sync", str(config), "--out", str(out), "--json")
        assert r.code == 1, r.stderr
        summary = json.loads(r.stdout)
        assert requests_seen(server) == seen
        assert [(f["job"], f["error"]) for f in summary["failures"]] == [("banned", series["error"])]
        assert [(s["job"], s["error"], s["rows_added"]) for s in summary["series"]] == [("other", None, 72)]  # 3 days of hours

    # The ban belongs to that exchange at that base URL: another endpoint is asked as usual.
    with emulator("") as other:
        code, elsewhere, stderr = ohlc(other, tmp_path / "elsewhere")
    assert code == 0, stderr
    assert elsewhere["series"][0]["rows_added"] == 8 * 1440


def test_after_the_ban_ends_the_next_run_fetches_again(tmp_path: Path) -> None:
    out = tmp_path / "data"
    with emulator("418(2)@5/klines") as server:
        code, first, stderr = ohlc(server, out)
        assert code == 1, stderr
        record = ban_file("binance", server.venue_url("binance"))
        until = json.loads(record.read_text())["until_s"]
        time.sleep(max(0.0, until - time.time()) + 0.1)
        seen = requests_seen(server)
        code, second, stderr = ohlc(server, out)
        assert code == 0, stderr
        assert requests_seen(server) > seen
        assert not record.exists(), "an expired ban is forgotten"
        # The first run's bars plus the second's: the whole range, once.
        assert first["series"][0]["rows_added"] + second["series"][0]["rows_added"] == 8 * 1440
