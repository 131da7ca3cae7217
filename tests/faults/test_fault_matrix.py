"""The fault matrix: every fault the emulator can inject, against the real CLI.

Each case runs ``dccd ohlc`` and ``dccd trades`` (subprocesses, as a user would) against an
emulator whose Binance venue misbehaves as the case says, and compares the dataset with
the golden, fault-free one. The promise is one of two outcomes, never a third:

* **identical** — the fault was absorbed (retried, waited out, re-asked, sorted,
  de-duplicated): exit 0 and exactly the golden dataset;
* **named** — the fault outlasted the retries: exit 1, the summary names exactly the
  ranges that are missing, the ledger records exactly those as failed, every other row is
  stored as in the golden run — and the next, fault-free run completes the dataset.

Whatever happens, no temporary file is left, every Parquet file reads, no key repeats.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from dccd_testing import FROZEN_NOW, run_cli
from fault_kit import (
    COMMANDS,
    FAST_FAILURE,
    assert_equal_to_golden,
    assert_missing_is_named,
    assert_sound,
    expire_bans,
    keys,
    ns,
    outside,
    run,
    run_both,
    settings,
    snapshot,
    without_ids,
)

from dccd_cli.emulator import (
    EmulatorServer,
    FaultInjector,
    FaultPlan,
    FaultRule,
    FaultSpecError,
    parse_faults,
    venues,
)
from dccd_cli.exchange.registry import adapters
from dccd_cli.storage import Ledger, SeriesKey, read_series
from dccd_cli.timeutil import Span

Golden = dict[str, dict[SeriesKey, pa.Table]]


@dataclass(frozen=True)
class Case:
    """One row of the matrix: a fault spec per command and the outcome it must have."""

    name: str
    ohlc: str  # fault spec for the Binance venue during `dccd ohlc` ("" = none)
    trades: str  # ... during `dccd trades`
    expect: str = "identical"  # or "named"
    # Short backoff: the retries are the same, the test just does not sleep through them.
    env: dict[str, str] = field(default_factory=lambda: {"DCCD_HTTP_BACKOFF": "0.05"})


MIXED = ("5xx:0.05,reset:0.05,truncated:0.04,malformed:0.03,error200:0.05,429(1):0.03,"
         "dup:0.2,shuffle:0.2")

ABSORBED = [
    # The preamble (market list, clock) too: every request of a run is retried alike.
    Case("5xx-burst", "5xx@1/exchangeInfo,5xx@1/time,5xx@2-5/klines", "5xx@2-5/aggTrades"),
    Case("5xx-random", "5xx@2,5xx:0.2", "5xx@2,5xx:0.2"),
    Case("429-storm-retry-after", "429(1)@3-5/klines", "429(1)@3-5/aggTrades"),
    Case("reset-mid-body", "reset@2,reset:0.2", "reset@2,reset:0.2"),
    Case("stall-past-timeout", "stall@3/klines,stall@9/klines", "stall@3/aggTrades,stall@9/aggTrades",
         env={"DCCD_HTTP_TIMEOUT": "1", "DCCD_HTTP_BACKOFF": "0.05"}),
    Case("truncated-json", "truncated@2,truncated:0.2", "truncated@2,truncated:0.2"),
    Case("malformed-json", "malformed@2,malformed:0.2", "malformed@2,malformed:0.2"),
    Case("error-inside-200", "error200@2,error200:0.2", "error200@2,error200:0.2"),
    # The first candle page of each symbol comes back empty (asked again: believed only when
    # empty twice); trade pages come back empty at random (their ids jump: fetched by id).
    Case("empty-pages-in-data", "empty@1/klines?symbol=BTCUSDT,empty@1/klines?symbol=ETHUSDT",
         "empty@3/aggTrades,empty:0.3/aggTrades"),
    Case("rows-duplicated-across-pages", "dup@2,dup:0.5", "dup@2,dup:0.5"),
    Case("rows-out-of-order", "shuffle@2,shuffle:0.5", "shuffle@2,shuffle:0.5"),
    Case("everything-at-once", MIXED, MIXED + ",empty:0.1/aggTrades"),
]

# From the 6th klines / 10th aggTrades request on, every one fails: some windows are
# stored, the rest must be named.
NAMED = [
    Case("ban-418", "418(900)@6/klines", "418(900)@8/aggTrades", "named"),
    Case("5xx-persistent", "5xx@6-/klines", "5xx@10-/aggTrades", "named", FAST_FAILURE),
    Case("reset-persistent", "reset@6-/klines", "reset@10-/aggTrades", "named", FAST_FAILURE),
    Case("stall-persistent", "stall@6-/klines", "stall@10-/aggTrades", "named",
         {**FAST_FAILURE, "DCCD_HTTP_TIMEOUT": "0.5"}),
    Case("truncated-persistent", "truncated@6-/klines", "truncated@10-/aggTrades", "named",
         FAST_FAILURE),
    Case("malformed-persistent", "malformed@6-/klines", "malformed@10-/aggTrades", "named",
         FAST_FAILURE),
    Case("error200-persistent", "error200@6-/klines", "error200@10-/aggTrades", "named",
         FAST_FAILURE),
]

CASES = ABSORBED + NAMED


def plan(spec: str) -> dict[str, FaultPlan]:
    return {"binance": FaultPlan.parse(spec, seed=7)} if spec else {}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(case: Case, golden: Golden, tmp_path: Path) -> None:
    # Both commands run at once against one emulator; each case's rules either are the same
    # for both or are limited to one command's endpoint (/klines, /aggTrades).
    spec = case.ohlc if case.ohlc == case.trades else ",".join(filter(None, (case.ohlc, case.trades)))
    out = tmp_path / "data"
    # Each command remembers its bans in a cache of its own: they start together, and the
    # ban one meets must not refuse the other before it has met its own.
    caches = {kind: tmp_path / f"cache-{kind}" for kind in COMMANDS}
    env_of = {kind: {"DCCD_CACHE_DIR": str(cache)} for kind, cache in caches.items()}
    with EmulatorServer(settings()) as server:
        server.faults.configure(plan(spec))
        results = run_both(server, out, env=case.env, env_of=env_of)
        hit = {f.path for f in server.faults.injected}
        assert any("klines" in p for p in hit) and any("aggTrades" in p for p in hit), hit
        assert_sound(out)
        for kind, (code, summary, stderr) in results.items():
            assert summary is not None, stderr
            if case.expect == "identical":
                assert code == 0, (kind, summary, stderr)
                assert_equal_to_golden(out, kind, golden[kind])
                continue
            assert code == 1, (kind, code, stderr)
            named = assert_missing_is_named(out, kind, summary, golden[kind])
            assert any(named.failed.values()), "an exit 1 names at least one range"
            if case.name == "ban-418":
                # Every series the ban cut short says so, with when it lifts; a series whose
                # windows were all in flight before the ban may have finished complete.
                cut = [s["error"] for s in summary["series"] if s["failed"]]
                assert cut and all(e and "banned" in e and "until" in e for e in cut), summary
        if case.expect == "identical":
            return
        # The failed ranges are in the ledger: a fault-free run fetches them, and only them
        # (once a ban has ended).
        server.faults.configure({})
        expire_bans(*caches.values())
        for kind, (code, _, stderr) in run_both(server, out, env_of=env_of).items():
            assert code == 0, (kind, stderr)
            assert_equal_to_golden(out, kind, golden[kind])
        assert_sound(out)


def test_429_storm_is_waited_out_not_retried(golden: Golden, tmp_path: Path) -> None:
    with EmulatorServer(settings(faults={"binance": "429(1)@2-4"})) as server:
        code, summary, stderr = run(server, "ohlc", tmp_path)
    assert code == 0, stderr
    assert summary is not None
    assert summary["rate_limited"] >= 3 and summary["retries"] == 0
    assert_equal_to_golden(tmp_path, "ohlc", golden["ohlc"])


def test_a_ban_before_any_data_is_one_line_and_writes_nothing(golden: Golden, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with EmulatorServer(settings(faults={"binance": "418(900)@1"})) as server:
        code, summary, stderr = run(server, "ohlc", out)
        assert code == 1
        line = stderr.strip().splitlines()[-1]
        assert line.startswith("dccd: error: binance has banned this IP until "), line
        # --json: the run's one object says so too, with nothing done
        assert summary is not None and (summary["ok"], summary["exit_code"], summary["series"]) == (False, 1, [])
        assert summary["error"] == line.removeprefix("dccd: error: ")
        assert not list(out.rglob("*.parquet")) if out.exists() else True
        server.faults.configure({})
        expire_bans(Path(os.environ["DCCD_CACHE_DIR"]))  # the ban has ended
        code, _, stderr = run(server, "ohlc", out)
    assert code == 0, stderr
    assert_equal_to_golden(out, "ohlc", golden["ohlc"])


def test_a_failing_run_keeps_every_row_stored_before(golden: Golden, tmp_path: Path) -> None:
    # A first, fault-free run stores part of the range; then every data request fails.
    out = tmp_path / "data"
    with EmulatorServer(settings()) as server:
        for kind, end in (("ohlc", "2024-01-03"), ("trades", "2024-01-01T02:00")):
            code, _, stderr = run(server, kind, out, "--end", end)
            assert code == 0, stderr
        before = {kind: snapshot(out, kind) for kind in COMMANDS}
        server.faults.configure(plan("5xx@1-/klines,5xx@1-/aggTrades"))
        for kind in COMMANDS:
            code, summary, stderr = run(server, kind, out, env=FAST_FAILURE)
            assert code == 1, stderr
            assert_sound(out)
            assert summary is not None
            for key, table in before[kind].items():
                assert read_series(out, key).equals(table), f"{key}: a stored row was lost"
            # What is missing is exactly what the first run did not store.
            for series in summary["series"]:
                key = next(k for k in keys(out, kind) if k.symbol == series["symbol"])
                stored = Ledger.load(key.dir(out)).fetched
                assert [(ns(f["start"]), ns(f["end"])) for f in series["failed"]]
                assert not any(s < ns(f["end"]) and ns(f["start"]) < e
                               for f in series["failed"] for s, e in stored)
        server.faults.configure({})
        for kind in COMMANDS:
            code, _, stderr = run(server, kind, out)
            assert code == 0, stderr
            assert_equal_to_golden(out, kind, golden[kind])


def test_a_maintenance_window_is_stored_as_fetched_and_empty(golden: Golden, tmp_path: Path) -> None:
    # The exchange had no trading at all in these windows: no rows, no failure, exit 0, and
    # the ledger holds the windows as fetched, so no later run asks for them again.
    windows = {"ohlc": (ns("2024-01-03T00:00"), ns("2024-01-04T00:00")),
               "trades": (ns("2024-01-01T02:00"), ns("2024-01-01T03:00"))}
    out = tmp_path / "data"
    with EmulatorServer(settings(maintenance=list(windows.values()))) as server:
        for kind, window in windows.items():
            every = list(windows.values())
            code, summary, stderr = run(server, kind, out)
            assert code == 0, stderr
            assert summary is not None
            assert_sound(out)
            for key, gold in golden[kind].items():
                stored = read_series(out, key)
                ts = stored.column("ts").cast(pa.int64()).to_numpy()
                assert not ((ts >= window[0]) & (ts < window[1])).any()
                expected = outside(gold, every)
                if kind == "ohlc":  # bars outside the window are the same bars
                    assert stored.equals(expected)
                else:  # the same trades; ids after the window are numbered on without a gap
                    assert without_ids(stored).equals(without_ids(expected))
                ledger = Ledger.load(key.dir(out))
                assert not ledger.failed
                series = next(s for s in summary["series"] if s["symbol"] == key.symbol)
                assert not ledger.missing(ns(series["start"]), ns(series["end"]))


def test_trade_pages_that_never_come_back_are_named(golden: Golden, golden_root: Path,
                                                     tmp_path: Path) -> None:
    # One page inside the range (the second of the 02:00 window) comes back empty every
    # time it is asked: the trades after it jump in id, so dccd knows some are missing,
    # tries to fetch them by id, cannot, and names the stretch instead of storing a gap.
    (key,) = golden["trades"]
    trades = golden["trades"][key]
    ts = trades.column("ts").cast(pa.int64()).to_numpy()
    first = int(trades.column("id")[int((ts >= ns("2024-01-01T02:00")).argmax())].as_py())
    spec = f"empty@1-/aggTrades?symbol=BTCUSDT&limit=1000&fromId={first + 1000}"
    out = tmp_path / "data"
    with EmulatorServer(settings(faults={"binance": spec})) as server:
        code, summary, stderr = run(server, "trades", out, env=FAST_FAILURE)
        assert code == 1, stderr
        assert summary is not None
        assert_sound(out)
        named = assert_missing_is_named(out, "trades", summary, golden["trades"])
        ((start, end),) = named.failed[key.symbol]
        assert ns("2024-01-01T02:00") < start < end <= ns("2024-01-01T03:00") + 10**9
        assert str(first + 1000) in summary["series"][0]["failed"][0]["error"]
        server.faults.configure({})
        code, _, stderr = run(server, "trades", out)
    assert code == 0, stderr
    assert_equal_to_golden(out, "trades", golden["trades"])


# -- the fault layer itself ------------------------------------------------------------------


@pytest.mark.parametrize("text,rule", [
    ("5xx:0.05", FaultRule("5xx", probability=0.05)),
    ("429@3-7/aggTrades", FaultRule("429", first=3, last=7, path="/aggTrades")),
    ("ban(900)@10", FaultRule("418", first=10, last=10, arg=900)),
    ("slow(40):0.5@2-", FaultRule("stall", probability=0.5, first=2, arg=40)),
    ("empty@1/klines?symbol=ETHUSDT", FaultRule("empty", first=1, last=1, path="/klines?symbol=ETHUSDT")),
])
def test_fault_rules_parse_and_print(text: str, rule: FaultRule) -> None:
    assert FaultRule.parse(text) == rule
    assert FaultRule.parse(str(rule)) == rule


@pytest.mark.parametrize("spec", ["nope", "5xx:2", "5xx:0", "429@7-3", "5xx(404)", "reset@0",
                                  "kraken=5xx;nosuchvenue=5xx", "5xx 0.1", "@3"])
def test_bad_fault_specs_are_refused_with_what_is_accepted(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_faults(spec, ["binance", "kraken"])


def test_spec_groups_per_venue_add_up() -> None:
    plans = parse_faults(["5xx:0.1", "binance=429@3;kraken=empty"], ["binance", "kraken"], seed=3)
    assert str(plans["binance"]) == "5xx:0.1,429@3" and str(plans["kraken"]) == "5xx:0.1,empty"
    assert plans["binance"].seed == 3


def test_faults_do_not_depend_on_arrival_order() -> None:
    # The same requests in another order meet the same (probabilistic) faults.
    def fates(order: list[int]) -> dict[int, str | None]:
        injector = FaultInjector({"binance": FaultPlan.parse("5xx:0.3,reset:0.3", seed=5)})
        out: dict[int, str | None] = {}
        for i in order:
            fault = injector.pick("binance", "GET", "/api/v3/klines", f"startTime={i}")
            out[i] = fault.kind if fault else None
        return out

    forward = fates(list(range(40)))
    assert fates(list(reversed(range(40)))) == forward
    assert set(forward.values()) == {None, "5xx", "reset"}


def test_the_emulator_command_takes_faults(tmp_path: Path) -> None:
    bad = run_cli("emulator", "--faults", "binance=5xx:7")
    assert bad.code == 2
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("dccd: error: --faults: fault probability 7")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dccd_cli", "emulator", "--port", str(port),
                             "--now", "2024-03-01T00:30Z", "--faults", "binance=5xx(503)@1-2/time",
                             "--maintenance", "2024-02-01T00:00/2024-02-02T00:00"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/_emulator/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        codes = [httpx.get(base + "/binance/api/v3/time").status_code for _ in range(3)]
        assert codes == [503, 503, 200]
        faults = httpx.get(base + "/_emulator/faults").json()
        assert faults["plans"]["binance"] == "5xx(503)@1-2/time"
        assert faults["injected"]["binance"] == {"5xx": 2}
        klines = httpx.get(base + "/binance/api/v3/klines", params={
            "symbol": "BTCUSDT", "interval": "1h", "startTime": 1706745600000, "limit": 30}).json()
        assert klines and all(row[0] >= 1706832000000 for row in klines)  # none in maintenance
        off = httpx.post(base + "/_emulator/faults", json={"faults": ""}).json()
        assert off["plans"] == {}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- every venue ---------------------------------------------------------------------------

TRANSPORT = "5xx@2,reset@3,truncated@4,malformed@5,shuffle:0.3,dup:0.3"


def _venue_cases() -> list[str]:
    return [name for name, cls in adapters().items()
            if name in venues() and cls.ohlc is not None and "1h" in cls.ohlc.spans]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("exchange", _venue_cases())
def test_every_venue_absorbs_transport_and_row_faults(exchange: str, tmp_path: Path) -> None:
    cap = adapters()[exchange].ohlc
    assert cap is not None
    span = Span.parse("1h")
    end = span.floor(FROZEN_NOW)
    start = span.add(end, -min(2 * cap.max_per_request, (cap.recent_bars or 10**6) - 2))
    env = {**os.environ, "DCCD_HTTP_BACKOFF": "0.02"}
    # A clean and a faulty emulator, one run each, at once (each keeps its own rate limit).
    with EmulatorServer(settings()) as clean, \
            EmulatorServer(settings(faults={exchange: TRANSPORT})) as faulty:
        procs = [subprocess.Popen(
            [sys.executable, "-m", "dccd_cli", "ohlc", exchange, "BTC-USDT", "--span", "1h",
             "--start", str(start // 10**9), "--base-url", server.venue_url(exchange),
             "--out", str(tmp_path / name), "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
            for name, server in (("clean", clean), ("faulty", faulty))]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        assert faulty.faults.summary()["injected"]
    tables = []
    for name in ("clean", "faulty"):
        assert_sound(tmp_path / name)
        (key,) = keys(tmp_path / name, "ohlc")
        tables.append(read_series(tmp_path / name, key))
    assert tables[0].num_rows > 0 and tables[1].equals(tables[0])
