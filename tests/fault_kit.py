"""Helpers of the reliability tests (tests/faults/): the commands, golden datasets, and the
invariants every dataset must keep whatever went wrong while it was written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dccd_testing import FROZEN_NOW, run_cli

from dccd_cli.emulator import EmulatorServer, EmulatorSettings
from dccd_cli.storage import Ledger, SeriesKey, list_series, read_series, verify_series
from dccd_cli.storage.intervals import Interval, normalize
from dccd_cli.storage.layout import is_temp_name
from dccd_cli.storage.reader import LAGGING
from dccd_cli.timeutil import parse_time

# Trades at a tenth of the realistic rate: six hours of BTC-USDT are ~20k aggregate trades,
# six one-hour windows of about four pages each, so cursors really page.
SCALE = 0.1
# Six days of 1-minute bars of two symbols: nine 1000-bar windows each, more than the eight
# a series has in flight, in two concurrent series.
OHLC = ("ohlc", "binance", "BTC-USDT", "ETH-USDT", "--span", "1m",
        "--start", "2024-01-01", "--end", "2024-01-07")
TRADES = ("trades", "binance", "BTC-USDT", "--start", "2024-01-01T00:00", "--end", "2024-01-01T06:00")
COMMANDS: dict[str, tuple[str, ...]] = {"ohlc": OHLC, "trades": TRADES}
# Failures quick: a 1 s timeout per attempt, one retry, 10 ms backoff.
FAST_FAILURE = {"DCCD_HTTP_TIMEOUT": "1", "DCCD_HTTP_RETRIES": "1", "DCCD_HTTP_BACKOFF": "0.01"}


def settings(**kw: Any) -> EmulatorSettings:
    """The emulator every reliability test uses (faults and latency vary)."""
    return EmulatorSettings(now=FROZEN_NOW, trades_scale=SCALE, **kw)


def keys(root: Path, kind: str) -> list[SeriesKey]:
    return [k for k in list_series(root) if k.kind == kind]


def snapshot(root: Path, kind: str) -> dict[SeriesKey, pa.Table]:
    """Every series of ``kind`` stored under ``root``, read back whole."""
    return {k: read_series(root, k) for k in keys(root, kind)}


def run(server: EmulatorServer, kind: str, out: Path, *extra: str,
        env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, dict[str, Any] | None, str]:
    """Run one command against ``server`` with ``--json``: (exit code, summary, stderr)."""
    r = run_cli(*COMMANDS[kind], *extra, "--base-url", server.venue_url("binance"),
                "--out", str(out), "--json", env=env, timeout=timeout)
    summary = json.loads(r.stdout) if r.stdout.strip() else None
    return r.code, summary, r.stderr


def run_both(server: EmulatorServer, out: Path, *, env: dict[str, str] | None = None,
             env_of: dict[str, dict[str, str]] | None = None,
             timeout: float = 120) -> dict[str, tuple[int, dict[str, Any] | None, str]]:
    """Both commands at once (two processes, one emulator): kind -> (code, summary, stderr).
    ``env_of`` adds variables for one command (kind -> variables)."""
    procs = {
        kind: subprocess.Popen(
            [sys.executable, "-m", "dccd_cli", *args, "--base-url", server.venue_url("binance"),
             "--out", str(out), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, **(env or {}), **(env_of or {}).get(kind, {})})
        for kind, args in COMMANDS.items()
    }
    results: dict[str, tuple[int, dict[str, Any] | None, str]] = {}
    for kind, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=timeout)
        results[kind] = (proc.returncode, json.loads(stdout) if stdout.strip() else None, stderr)
    return results


def expire_bans(*caches: Path) -> None:
    """End now every ban remembered in these cache directories (``dccd_cli.net.bans``): what
    waiting it out would do, without the wait. The next run finds it expired."""
    for cache in caches:
        for path in (cache / "bans").glob("*.json"):
            record = json.loads(path.read_text())
            record["until_s"] = time.time() - 1
            path.write_text(json.dumps(record))


def golden_dataset(root: Path, cache: Path) -> Path:
    """The fault-free datasets of both commands, for comparison."""
    with EmulatorServer(settings()) as server:
        for kind in COMMANDS:
            code, _, err = run(server, kind, root, env={"DCCD_CACHE_DIR": str(cache)})
            assert code == 0, err
    return root


def assert_sound(root: Path, *, killed: bool = False, ledger_may_lag: bool = False) -> None:
    """The invariants no fault or crash may break: every Parquet file readable, every series
    meeting its contract (schema, sorted, unique keys, rows only where the ledger says it
    fetched), ledgers that parse, no temporary file left behind.

    A ``killed`` process may leave temporary files (the next run removes them), and one
    stopped between writing rows and recording them (killed, or its ledger write failed)
    leaves rows the ledger does not claim yet (``ledger_may_lag``; the next run records
    them) — never the other way round, which ``assert_ledger_truthful`` checks.
    """
    if not root.exists():
        return
    temps = [p for p in root.rglob("*") if is_temp_name(p.name)]
    assert killed or not temps, f"temporary files left: {temps}"
    for path in root.rglob("*.parquet"):
        pq.read_table(path)  # raises on a partial or corrupt file
    for key in list_series(root):
        problems = verify_series(root, key)
        if killed or ledger_may_lag:
            problems = [p for p in problems if "outside the ledger's fetched ranges" not in p
                        and LAGGING not in p]
        assert not problems, f"{key}: {problems}"
        table = read_series(root, key)
        column = table.column(key.key_column)
        assert len(pc.unique(column)) == table.num_rows, f"{key}: duplicate {key.key_column}"


def ns(text: str) -> int:
    return parse_time(text, now=0)


def summary_ranges(series: dict[str, Any], field_name: str = "failed") -> list[Interval]:
    return normalize([(ns(f["start"]), ns(f["end"])) for f in series[field_name]])


def ledger_failed(root: Path, key: SeriesKey) -> list[Interval]:
    return normalize([(f.start_ns, f.end_ns) for f in Ledger.load(key.dir(root)).failed])


def outside(table: pa.Table, ranges: list[Interval]) -> pa.Table:
    """The rows of ``table`` whose ts lies in none of ``ranges``."""
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    keep = np.ones(len(ts), dtype=bool)
    for a, b in ranges:
        keep &= ~((ts >= a) & (ts < b))
    return table.filter(pa.array(keep))


def without_ids(table: pa.Table) -> pa.Table:
    """Trades compared by what happened (time, price, amount, side), not by exchange ids."""
    return table.drop_columns(["id"]).sort_by([(c, "ascending") for c in ("ts", "price", "amount", "side")])


@dataclass
class Named:
    """What an exit-1 run named as missing, per series, in its summary and its ledger."""

    failed: dict[str, list[Interval]] = field(default_factory=dict)


def assert_missing_is_named(root: Path, kind: str, summary: dict[str, Any],
                            golden: dict[SeriesKey, pa.Table]) -> Named:
    """The run's promise when it exits 1: its summary names exactly the ranges that are
    missing, the ledger records them as failed (so the next run fetches them), and every
    other row of the range is stored exactly as in the golden run."""
    named = Named()
    by_symbol = {s["symbol"]: s for s in summary["series"]}
    for key, gold in golden.items():
        series = by_symbol[key.symbol]
        failed = summary_ranges(series)
        assert failed == ledger_failed(root, key), (key, failed, ledger_failed(root, key))
        start, end = ns(series["start"]), ns(series["end"])
        ledger = Ledger.load(key.dir(root))
        assert normalize(ledger.missing(start, end)) == failed, (key, ledger.missing(start, end))
        assert summary_ranges(series, "gaps") == failed
        assert all(f["error"] for f in series["failed"]), "every failed range says why"
        stored = read_series(root, key)
        assert stored.equals(outside(gold, failed)), f"{key}: rows outside the failed ranges differ"
        named.failed[key.symbol] = failed
    return named


def assert_equal_to_golden(root: Path, kind: str, golden: dict[SeriesKey, pa.Table]) -> None:
    """Identical datasets, and ledgers that hold the whole range with nothing failed."""
    got = snapshot(root, kind)
    assert set(got) == set(golden), (sorted(map(str, got)), sorted(map(str, golden)))
    for key, table in golden.items():
        assert got[key].equals(table), f"{key}: {got[key].num_rows} rows, golden {table.num_rows}"
        assert not Ledger.load(key.dir(root)).failed, f"{key}: the ledger still has failed ranges"


def inside(table: pa.Table, ranges: list[Interval]) -> pa.Table:
    """The rows of ``table`` whose ts lies in one of ``ranges``."""
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    keep = np.zeros(len(ts), dtype=bool)
    for a, b in ranges:
        keep |= (ts >= a) & (ts < b)
    return table.filter(pa.array(keep))


def assert_ledger_truthful(root: Path, golden: dict[SeriesKey, pa.Table]) -> None:
    """Whatever the ledger says was fetched is on disk, row for row as in the golden run:
    the ledger never claims rows that a crash or a full disk kept from the files."""
    for key in list_series(root):
        if key not in golden:
            continue
        fetched = Ledger.load(key.dir(root)).fetched
        stored = inside(read_series(root, key), fetched)
        expected = inside(golden[key], fetched)
        assert stored.equals(expected), (
            f"{key}: the ledger claims {fetched} but holds {stored.num_rows} of "
            f"{expected.num_rows} rows there")
