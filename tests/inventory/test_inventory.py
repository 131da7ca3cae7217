"""`dccd inventory`: coverage, gaps told apart, the strip, --json and --verify.

Most datasets here are written with the storage writer directly, so every gap is placed
exactly; the end-to-end tests go through the real CLI.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dccd_testing import FROZEN_NOW, run_cli, run_cli_process

from dccd_cli.emulator import EmulatorServer
from dccd_cli.pieces import Chunk, FailedRange
from dccd_cli.schema import OHLC_SCHEMA, TRADES_SCHEMA
from dccd_cli.storage import SeriesKey, SeriesWriter
from dccd_cli.storage.inventory import _Grid, take_inventory
from dccd_cli.storage.lock import DatasetLock
from dccd_cli.timeutil import DAY_NS, MINUTE_NS, NS, Span, datetime_to_ns

T0 = 1_709_251_200 * NS  # 2024-03-01
M = MINUTE_NS


def bars(ts: list[int]) -> pa.Table:
    n = len(ts)
    cols = {"ts": pa.array(ts, pa.int64()).cast(OHLC_SCHEMA.field("ts").type)}
    for f in OHLC_SCHEMA:
        if f.name != "ts":
            cols[f.name] = pa.array([1.0] * n if f.name != "trades" else [1] * n, f.type)
    return pa.table(cols, schema=OHLC_SCHEMA)


def trades(ts: list[int]) -> pa.Table:
    n = len(ts)
    return pa.table({
        "ts": pa.array(ts, pa.int64()).cast(TRADES_SCHEMA.field("ts").type),
        "id": pa.array([str(i) for i in range(n)], pa.string()),
        "price": pa.array([1.0] * n), "amount": pa.array([1.0] * n), "side": pa.array(["buy"] * n),
    }, schema=TRADES_SCHEMA)


def write(root: Path, key: SeriesKey, *pieces: Chunk | FailedRange) -> None:
    with SeriesWriter(root, key, native_symbol="X", version="test") as writer:
        for piece in pieces:
            writer.add(piece)


def test_gaps_are_told_apart_and_drawn(tmp_path: Path) -> None:
    # 0-60 min fetched (minutes 10-19 had no trade: no bar), 60-90 failed, 90-120 never
    # fetched, 120-180 fetched and full.
    key = SeriesKey("ohlc", "binance", "SOL-EUR", "1m")
    first = [T0 + i * M for i in range(60) if not 10 <= i < 20]
    write(tmp_path, key,
          Chunk(T0, T0 + 60 * M, bars(first)),
          FailedRange(T0 + 60 * M, T0 + 90 * M, "HTTP 503"))
    write(tmp_path, key, Chunk(T0 + 120 * M, T0 + 180 * M, bars([T0 + i * M for i in range(120, 180)])))
    (s,) = take_inventory(tmp_path, width=18).series
    assert (s.rows, s.files, s.first_ns, s.last_ns) == (110, 1, T0, T0 + 179 * M)
    assert (s.start_ns, s.end_ns) == (T0, T0 + 180 * M)
    assert s.coverage == pytest.approx(100 * 120 / 180)
    assert [(g.start_ns, g.end_ns, g.reason, g.error) for g in s.gaps] == [
        (T0 + 60 * M, T0 + 90 * M, "failed", "HTTP 503"),
        (T0 + 90 * M, T0 + 120 * M, "not fetched", None),
    ]
    assert (s.no_data_units, s.no_data_stretches) == (10, 1)
    assert [(g.start_ns, g.end_ns) for g in s.no_data] == [(T0 + 10 * M, T0 + 20 * M)]
    assert s.cells == "SESSSSXXXNNNSSSSSS"
    assert s.drawn() == "█░████✗✗✗···██████"
    assert s.drawn("ascii") == "#-####xxx...######"


def test_a_partly_quiet_cell_is_drawn_apart_from_an_empty_one(tmp_path: Path) -> None:
    key = SeriesKey("ohlc", "coinbase", "SOL-EUR", "1m")
    write(tmp_path, key, Chunk(T0, T0 + 40 * M, bars([T0 + 3 * M, T0 + 25 * M])))
    (s,) = take_inventory(tmp_path, width=8).series  # cells of 5 minutes
    assert s.cells == "PEEEEPEE" and s.no_data_stretches == 3 and s.no_data_units == 38


def test_trades_count_quiet_minutes_wholly_inside_fetched_ranges(tmp_path: Path) -> None:
    key = SeriesKey("trades", "binance", "SOL-EUR")
    start = T0 + 30 * NS  # a fetch starting mid-minute: that minute is not counted either way
    ts = [T0 + 2 * M + 5 * NS, T0 + 2 * M + 9 * NS, T0 + 7 * M]
    write(tmp_path, key, Chunk(start, T0 + 10 * M, trades(ts)))
    (s,) = take_inventory(tmp_path).series
    assert s.unit == "minute" and s.rows == 3 and s.coverage == 100.0 and s.gaps == []
    # whole minutes 1..9 inside the range; 2 and 7 hold trades
    assert (s.no_data_units, s.no_data_stretches) == (7, 3)


def test_grid_numbers_weeks_and_months_consecutively() -> None:
    week = _Grid(Span.parse("1w"))
    monday = datetime_to_ns(datetime(2024, 2, 26, tzinfo=UTC))
    i = week.floor(monday + 3 * DAY_NS)
    assert week.open(i) == monday and week.open(i + 1) == monday + 7 * DAY_NS
    month = _Grid(Span.parse("1M"))
    j = month.floor(datetime_to_ns(datetime(2024, 2, 15, tzinfo=UTC)))
    assert month.open(j) == datetime_to_ns(datetime(2024, 2, 1, tzinfo=UTC))
    assert month.open(j + 11) == datetime_to_ns(datetime(2025, 1, 1, tzinfo=UTC))
    assert month.ceil(datetime_to_ns(datetime(2024, 2, 1, tzinfo=UTC))) == j


def test_a_missing_month_of_monthly_bars_is_one_bar_without_data(tmp_path: Path) -> None:
    key = SeriesKey("ohlc", "binance", "BTC-USDT", "1M")
    opens = [datetime_to_ns(datetime(2023, m, 1, tzinfo=UTC)) for m in (1, 2, 4, 5)]
    write(tmp_path, key, Chunk(opens[0], datetime_to_ns(datetime(2023, 6, 1, tzinfo=UTC)), bars(opens)))
    (s,) = take_inventory(tmp_path).series
    assert (s.no_data_units, s.no_data_stretches) == (1, 1)
    assert s.no_data[0].start_ns == datetime_to_ns(datetime(2023, 3, 1, tzinfo=UTC))


def test_cli_json_lists_every_field_the_issue_names(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-02-20", "--end", "2024-02-22",
                "--base-url", emulator.venue_url("binance"), "--out", str(out), "--quiet")
    assert r.code == 0, r.stderr
    r = run_cli("inventory", str(out), "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    (s,) = doc["series"]
    assert {k: s[k] for k in ("exchange", "symbol", "kind", "span", "first", "last", "rows", "files")} == {
        "exchange": "binance", "symbol": "BTC-USDT", "kind": "ohlc", "span": "1h",
        "first": "2024-02-20T00:00:00Z", "last": "2024-02-21T23:00:00Z", "rows": 48, "files": 1}
    assert s["bytes"] > 0 and s["coverage_pct"] == 100 and s["gaps"] == []
    assert s["range"] == {"start": "2024-02-20T00:00:00Z", "end": "2024-02-22T00:00:00Z"}
    assert s["strip"] == "█" * 60 and doc["legend"]["E"] == "no data at the exchange"
    r = run_cli("inventory", str(out), "--width", "20", "--ascii")
    assert r.code == 0 and "#" * 20 in r.stdout and r.stdout.isascii()


def test_verify_reports_a_corrupted_dataset(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    r = run_cli("ohlc", "binance", "ETH-USDT", "--span", "1h", "--start", "2024-02-20", "--end", "2024-02-22",
                "--base-url", emulator.venue_url("binance"), "--out", str(out), "--quiet")
    assert r.code == 0, r.stderr
    assert run_cli("inventory", str(out), "--verify").code == 0
    path = next(out.rglob("2024-02.parquet"))
    table = pq.read_table(path)
    meta = table.schema.metadata
    broken = pa.concat_tables([table, table.slice(5, 3)]).replace_schema_metadata(meta)
    pq.write_table(broken, path)  # three bars twice, the last ones out of order
    r = run_cli("inventory", str(out), "--verify")
    assert r.code == 1
    assert "2024-02.parquet: rows are not sorted by ts" in r.stdout
    assert "2024-02.parquet: 3 rows repeat a ts of another row" in r.stdout
    # ... and it no longer holds what the ledger's manifest recorded of it.
    assert "2024-02.parquet: holds 51 rows where the ledger recorded 48 rows" in r.stdout
    assert "verify: 3 problems in 1 of 1 series" in r.stdout
    doc = json.loads(run_cli("inventory", str(out), "--verify", "--json").stdout)
    assert not doc["ok"] and len(doc["series"][0]["problems"]) == 3


def test_verify_finds_an_unfinished_bar(emulator: EmulatorServer, tmp_path: Path) -> None:
    # The emulator's clock is frozen at 00:30: --include-partial stores the forming 00:00 bar.
    out = tmp_path / "data"
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-02-29T20:00",
                "--include-partial", "--base-url", emulator.venue_url("binance"), "--out", str(out), "--quiet")
    assert r.code == 0, r.stderr
    r = run_cli("inventory", str(out), "--verify", "--json")
    assert r.code == 1
    (problem,) = json.loads(r.stdout)["series"][0]["problems"]
    assert "1 unfinished bar(s)" in problem and "2024-03-01" in problem and "still forming" in problem
    assert FROZEN_NOW  # the instant that made it unfinished


def test_inventory_notes_a_sync_writing_the_dataset(tmp_path: Path) -> None:
    key = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
    write(tmp_path, key, Chunk(T0, T0 + 3600 * NS, bars([T0])))

    async def hold() -> str:
        async with DatasetLock(tmp_path, wait=False, command="dccd sync test.toml"):
            r = await asyncio.to_thread(run_cli_process, "inventory", str(tmp_path))
            return r.stdout

    text = asyncio.run(hold())
    assert "is writing this dataset now" in text and "dccd sync test.toml" in text


def test_no_dataset_is_a_usage_error_and_an_empty_one_says_so(tmp_path: Path) -> None:
    r = run_cli("inventory", str(tmp_path / "nope"))
    assert r.code == 2 and "no dataset at" in r.stderr
    r = run_cli("inventory", str(tmp_path))
    assert r.code == 0 and "nothing stored yet" in r.stdout
