"""A dataset of an older dccd (monthly files for every span, months in span=1M) keeps
working: read as it is, and brought to the current layout by the next download, with no
row lost and none repeated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from dccd_testing import run_cli

from dccd_cli.emulator import EmulatorServer
from dccd_cli.storage import SeriesKey, read_series
from dccd_cli.storage.layout import partition_files
from dccd_cli.storage.upgrade import stored_ledger
from dccd_cli.timeutil import DAY_NS, Span, ns_to_datetime, parse_time

SPANS = ("1d", "1w", "1M")


def download(emulator: EmulatorServer, out: Path, end: str) -> dict[str, dict[str, Any]]:
    """The three series in one command; their summaries by span."""
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", ",".join(SPANS), "--start", "2023-06-01",
                "--end", end, "--base-url", emulator.venue_url("binance"), "--out", str(out),
                "--json")
    assert r.code == 0, r.stderr
    return {s["span"]: s for s in json.loads(r.stdout)["series"]}


def write_the_old_way(out: Path, span: str) -> None:
    """What an older dccd left: a file per UTC month, months in span=NM, a ledger of
    ranges only (version 1)."""
    key = SeriesKey("ohlc", "binance", "BTC-USDT", span)
    new = key.dir(out)
    rows = read_series(out, key)
    meta = pq.read_schema(partition_files("ohlc", new)[0][1]).metadata
    for _, path in partition_files("ohlc", new):
        path.unlink()
    months = [ns_to_datetime(t).strftime("%Y-%m") for t in rows.column("ts").cast(pa.int64()).to_pylist()]
    for month in sorted(set(months)):
        mask = pa.array([m == month for m in months])
        pq.write_table(rows.filter(mask).replace_schema_metadata(meta), new / f"{month}.parquet")
    ledger = json.loads((new / "_coverage.json").read_text())  # version 1: no manifest
    old = {k: ledger[k] for k in ("format", "series", "fetched", "failed")}
    (new / "_coverage.json").write_text(json.dumps({**old, "version": 1}))
    if span.endswith("M"):
        new.rename(new.with_name(f"span={span}"))


def test_an_old_layout_is_read_then_upgraded_by_the_next_download(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    golden, out = tmp_path / "golden", tmp_path / "data"
    download(emulator, golden, "2024-03-01")
    download(emulator, out, "2024-02-01")
    for span in SPANS:
        write_the_old_way(out, span)
    series = out / "ohlc/exchange=binance/symbol=BTC-USDT"
    assert sorted(p.name for p in series.iterdir()) == ["span=1M", "span=1d", "span=1w"]
    assert (series / "span=1d/2023-06.parquet").exists()

    # Read as it is: the same rows as the golden run has up to February.
    r = run_cli("inventory", str(out), "--verify", "--json")
    assert r.code == 0, r.stdout
    inv = json.loads(r.stdout)
    assert [(s["span"], s["files"]) for s in inv["series"]] == [("1M", 8), ("1d", 8), ("1w", 8)]
    for span in SPANS:
        key = SeriesKey("ohlc", "binance", "BTC-USDT", span)
        stored_to = stored_ledger(out, key).fetched[-1][1]  # weeks: the last whole one
        assert read_series(out, key).equals(read_series(golden, key, None, stored_to))

    # The next download (February) upgrades each series, then adds to it.
    summaries = download(emulator, out, "2024-03-01")
    for span in SPANS:
        summary = summaries[span]
        fetched = summary["fetched"]
        assert len(fetched) == 1  # the old ledger was kept
        assert parse_time(fetched[0]["start"], now=0) >= parse_time("2024-01-22", now=0)
        assert any("older dccd" in n for n in summary["notes"]), summary["notes"]
    assert sorted(p.name for p in series.iterdir()) == ["span=1d", "span=1mo", "span=1w"]
    for span in SPANS:
        key = SeriesKey("ohlc", "binance", "BTC-USDT", span)
        assert sorted(p.name for p in key.dir(out).glob("*.parquet")) == ["2023.parquet", "2024.parquet"]
        assert read_series(out, key).equals(read_series(golden, key))
        assert json.loads(key.dir(out).joinpath("_coverage.json").read_text())["fetched"] == \
            json.loads(key.dir(golden).joinpath("_coverage.json").read_text())["fetched"]

    # Dataset readers see one consistent dataset: the golden one, row for row.
    def dataset(root: Path) -> pa.Table:
        table = ds.dataset(root / "ohlc", partitioning="hive").to_table()
        return table.sort_by([("span", "ascending"), ("ts", "ascending")])

    got, want = dataset(out), dataset(golden)
    assert got.equals(want)
    assert sorted(set(got.column("span").to_pylist())) == ["1d", "1mo", "1w"]
    one_day = got.filter(pa.compute.equal(got.column("span"), "1d"))
    assert one_day.num_rows == (parse_time("2024-03-01", now=0) - parse_time("2023-06-01", now=0)) // DAY_NS
    assert Span.parse("1mo").code == "1M"
    r = run_cli("inventory", str(out), "--verify")
    assert r.code == 0, r.stdout
    shutil.rmtree(golden)
