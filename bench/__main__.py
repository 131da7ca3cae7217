"""`python -m bench` (`make bench`): dccd vs the rate-limit bound and vs ccxt, one run.

Against the emulator's Binance venue with realistic latency (50 ms by default) and Binance's
real limits (6000 weight a minute; klines weigh 2, aggTrades 4):

* OHLC: a year of 1m BTC-USDT bars — dccd's wall time, its ratio to the rate-limit bound
  (the fewest seconds the limit allows for that many requests at its sustained rate), and
  ccxt's async client with its own pagination and rate limiter, on the same venue;
* trades: a day of aggregate trades, the same way;
* CPU seconds per million stored rows and peak RSS of dccd for a long trades download,
  at two sizes (the larger ~10 M trades), to show memory does not grow with the range.

Binance counts weight per minute, so dccd spends a window's budget at once (see
``dccd_cli.net.ratelimit``): a download that fits in one window (both of the first two) beats
the sustained-rate bound, and its ratio is above 1. The footprint's long download spans
many windows; its ratio shows the sustained pace.

Every run's rows are compared, so speed is never bought with lost data. Prints a table and
writes it as JSON (bench-results/bench.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.dataset as ds

from dccd_cli.adapters.binance import BinanceAdapter

from . import ccxt_runs
from .procs import emulator, run_measured

DCCD = [sys.executable, "-m", "dccd_cli"]
NOW = "2025-01-01T00:30Z"


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def bound_s(requests: int, weight: int) -> float:
    rl = BinanceAdapter.rate_limit
    return requests * weight / rl.per_second


def dccd(kind: str, base: str, start: str, end: str, out: Path, span: str | None = None) -> tuple[Any, dict[str, Any]]:
    args = [*DCCD, kind, "binance", "BTC-USDT", "--start", start, "--end", end,
            "--base-url", f"{base}/binance", "--out", str(out), "--json", "--quiet"]
    if span:
        args += ["--span", span]
    m = run_measured(args)
    if m.code != 0:
        raise SystemExit(f"dccd {kind} failed with exit {m.code}: {m.stdout[:500]}")
    return m, json.loads(m.stdout)


def reset(base: str) -> None:
    """Clear the venue's rate-limit windows between runs, so each starts from a fresh budget."""
    httpx.post(f"{base}/_emulator/reset", timeout=10).raise_for_status()


def bench_ohlc(base: str, start: str, end: str, work: Path) -> dict[str, Any]:
    dccd("ohlc", base, start, end, work / "warm", span="1m")  # fill the emulator's caches
    reset(base)
    m, summary = dccd("ohlc", base, start, end, work / "ohlc", span="1m")
    requests = summary["series"][0]["requests"]
    table = ds.dataset(work / "ohlc" / "ohlc", partitioning="hive").to_table().sort_by("ts")
    reset(base)
    ccxt_s, rows = ccxt_runs.ohlcv(base, ms(start), ms(end))
    theirs = {r[0] * 1_000_000: r[4] for r in rows if ms(start) <= r[0] < ms(end)}
    ours = dict(zip(table.column("ts").cast(pa.int64()).to_pylist(), table.column("close").to_pylist()))
    bound = bound_s(requests, BinanceAdapter.ohlc.weight)  # type: ignore[union-attr]
    return {
        "rows": table.num_rows, "requests": requests, "dccd_s": m.seconds, "bound_s": bound,
        "ratio_to_bound": bound / m.seconds, "ccxt_s": ccxt_s, "speedup_vs_ccxt": ccxt_s / m.seconds,
        "ccxt_rows": len(theirs), "same_rows": ours == theirs,
    }


def bench_trades(base: str, start: str, end: str, work: Path) -> dict[str, Any]:
    dccd("trades", base, start, end, work / "warm-trades")
    reset(base)
    m, summary = dccd("trades", base, start, end, work / "trades")
    requests = summary["series"][0]["requests"]
    table = ds.dataset(work / "trades" / "trades", partitioning="hive").to_table()
    reset(base)
    ccxt_s, rows = ccxt_runs.trades(base, ms(start), ms(end))
    theirs = {str(t["id"]) for t in rows if ms(start) <= t["timestamp"] < ms(end)}
    ours = set(table.column("id").to_pylist())
    bound = bound_s(requests, BinanceAdapter.trades.weight)  # type: ignore[union-attr]
    return {
        "rows": table.num_rows, "requests": requests, "dccd_s": m.seconds, "bound_s": bound,
        "ratio_to_bound": bound / m.seconds, "ccxt_s": ccxt_s, "speedup_vs_ccxt": ccxt_s / m.seconds,
        "ccxt_rows": len(theirs), "same_rows": ours == theirs,
        "ccxt_missed": len(ours - theirs), "ccxt_extra": len(theirs - ours),
    }


def bench_footprint(base: str, days: list[int], work: Path) -> list[dict[str, Any]]:
    out = []
    for n in days:
        reset(base)
        end = f"2024-03-{1 + n:02d}" if n < 29 else None
        assert end is not None
        m, summary = dccd("trades", base, "2024-03-01", end, work / f"foot-{n}")
        rows = summary["series"][0]["rows_added"]
        bound = bound_s(summary["series"][0]["requests"], BinanceAdapter.trades.weight)  # type: ignore[union-attr]
        out.append({"days": n, "rows": rows, "seconds": m.seconds, "cpu_s": m.cpu_s,
                    "cpu_us_per_row": m.cpu_s / rows * 1e6, "peak_rss_mb": m.max_rss_mb,
                    "bound_s": bound, "ratio_to_bound": bound / m.seconds})
        shutil.rmtree(work / f"foot-{n}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--quick", action="store_true", help="small sizes, for trying the harness")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--parts", default="footprint,ohlc,trades",
                        help="which runs, comma-separated (default: all)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    ohlc_range = ("2024-12-01", "2025-01-01") if args.quick else ("2024-01-01", "2025-01-01")
    trades_range = ("2024-01-01T00:00", "2024-01-01T03:00") if args.quick else ("2024-01-01", "2024-01-02")
    # ~0.58 M aggregate trades a day in March 2024 at full scale: 18 days is ten million.
    foot_days = [1, 3] if args.quick else [2, 18]

    work = Path(tempfile.mkdtemp(prefix="dccd-bench-"))
    try:
        with emulator(NOW, args.latency_ms) as base:
            results: dict[str, Any] = {"latency_ms": args.latency_ms}
            # The footprint first: ccxt's runs happen in this process and grow it.
            if "footprint" in parts:
                results["footprint"] = bench_footprint(base, foot_days, work)
            if "ohlc" in parts:
                results["ohlc"] = bench_ohlc(base, *ohlc_range, work)
            if "trades" in parts:
                results["trades"] = bench_trades(base, *trades_range, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))
    report(results)


def report(r: dict[str, Any]) -> None:
    print(f"\nlatency {r['latency_ms']:g} ms; Binance limits (6000 weight/min)")
    print(f"{'run':<10}{'rows':>10}{'reqs':>7}{'dccd s':>9}{'bound s':>9}{'bound/dccd':>11}{'ccxt s':>9}{'ccxt/dccd':>10}  same rows")
    for name in ("ohlc", "trades"):
        if name not in r:
            continue
        x = r[name]
        same = "yes" if x["same_rows"] else f"NO (ccxt {x['ccxt_rows']} rows)"
        print(f"{name:<10}{x['rows']:>10}{x['requests']:>7}{x['dccd_s']:>9.1f}{x['bound_s']:>9.1f}"
              f"{x['ratio_to_bound']:>11.2f}{x['ccxt_s']:>9.1f}{x['speedup_vs_ccxt']:>10.1f}  {same}")
    if "footprint" not in r:
        return
    print(f"\n{'trades footprint':<18}{'rows':>11}{'wall s':>9}{'bound s':>9}{'bound/dccd':>11}"
          f"{'cpu s':>8}{'µs/row':>8}{'peak RSS MB':>13}")
    for f in r["footprint"]:
        print(f"{str(f['days']) + ' days':<18}{f['rows']:>11}{f['seconds']:>9.1f}{f['bound_s']:>9.1f}"
              f"{f['ratio_to_bound']:>11.2f}{f['cpu_s']:>8.1f}{f['cpu_us_per_row']:>8.2f}"
              f"{f['peak_rss_mb']:>13.0f}")


if __name__ == "__main__":
    main()
