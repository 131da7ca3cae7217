"""storage.upgrade: an older dccd's layout read as it is and brought to the current one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from dccd_cli.pieces import Chunk
from dccd_cli.schema import ohlc_table
from dccd_cli.storage import Ledger, SeriesKey, SeriesWriter, read_series, verify_series
from dccd_cli.storage.upgrade import series_dirs, stored_ledger, upgrade_series
from dccd_cli.timeutil import Span, datetime_to_ns

DAILY = SeriesKey("ohlc", "binance", "BTC-USDT", "1d")
MONTHLY = SeriesKey("ohlc", "binance", "BTC-USDT", "1M")
MINUTE = SeriesKey("ohlc", "binance", "BTC-USDT", "1m")


def ns(y: int, m: int, d: int) -> int:
    return datetime_to_ns(datetime(y, m, d, tzinfo=UTC))


def bars(key: SeriesKey, start: int, end: int, close: float = 1.0) -> Chunk:
    span = Span.parse(key.span or "1d")
    ts = []
    t = span.ceil(start)
    while t < end:
        ts.append(t)
        t = span.add(t, 1)
    n = len(ts)
    return Chunk(start, end, ohlc_table(ts, [1.0] * n, [2.0] * n, [0.5] * n, [close] * n, [9.0] * n))


def store(root: Path, key: SeriesKey, *chunks: Chunk) -> None:
    with SeriesWriter(root, key, native_symbol="BTCUSDT", version="test") as w:
        for c in chunks:
            w.add(c)


def as_months(root: Path, key: SeriesKey, *, keep_year: bool = False) -> None:
    """Rewrite ``key``'s files as an older dccd did: a file per UTC month, and a version-1
    ledger (ranges, no manifest of files) unless ``keep_year`` (an interrupted fold)."""
    rows = read_series(root, key)
    directory = key.dir(root)
    if not keep_year:
        ledger = json.loads((directory / "_coverage.json").read_text())
        old = {k: ledger[k] for k in ("format", "series", "fetched", "failed")}
        (directory / "_coverage.json").write_text(json.dumps({**old, "version": 1}))
    meta = pq.read_schema(next(directory.glob("*.parquet"))).metadata
    if not keep_year:
        for p in directory.glob("*.parquet"):
            p.unlink()
    ts = rows.column("ts").to_pylist()
    for month in sorted({t.strftime("%Y-%m") for t in ts}):
        mask = [t.strftime("%Y-%m") == month for t in ts]
        pq.write_table(rows.filter(mask).replace_schema_metadata(meta), directory / f"{month}.parquet")


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("_"))


def test_monthly_files_of_a_daily_series_are_folded_into_years(tmp_path: Path) -> None:
    store(tmp_path, DAILY, bars(DAILY, ns(2023, 11, 1), ns(2024, 3, 1)))
    want = read_series(tmp_path, DAILY)
    as_months(tmp_path, DAILY)
    assert names(DAILY.dir(tmp_path)) == [
        "2023-11.parquet", "2023-12.parquet", "2024-01.parquet", "2024-02.parquet"]
    assert read_series(tmp_path, DAILY).equals(want)
    assert verify_series(tmp_path, DAILY) == []  # an older layout keeps the contract
    notes = upgrade_series(tmp_path, DAILY)
    assert notes and "4 monthly files" in notes[0]
    assert names(DAILY.dir(tmp_path)) == ["2023.parquet", "2024.parquet"]
    assert read_series(tmp_path, DAILY).equals(want)
    assert pq.read_schema(DAILY.dir(tmp_path) / "2024.parquet").metadata[b"dccd.native_symbol"] == b"BTCUSDT"
    assert upgrade_series(tmp_path, DAILY) == []  # nothing left to do


def test_an_interrupted_fold_repeats_no_row_and_the_next_write_finishes_it(tmp_path: Path) -> None:
    # Killed after the year file was written, before the monthly files were removed:
    # rows are in both, and the year file's (newer) rows win.
    store(tmp_path, DAILY, bars(DAILY, ns(2024, 1, 1), ns(2024, 3, 1), close=1.0))
    as_months(tmp_path, DAILY)
    store(tmp_path, DAILY, bars(DAILY, ns(2024, 2, 1), ns(2024, 3, 1), close=2.0))  # folds
    as_months(tmp_path, DAILY, keep_year=True)
    (DAILY.dir(tmp_path) / "2024-02.parquet").unlink()
    assert names(DAILY.dir(tmp_path)) == ["2024-01.parquet", "2024.parquet"]
    rows = read_series(tmp_path, DAILY)
    assert rows.num_rows == 60 and len(set(rows.column("ts").to_pylist())) == 60
    problems = verify_series(tmp_path, DAILY)
    assert any("2024-01.parquet: an older dccd's monthly file beside 2024.parquet" in p for p in problems)
    # The writer folds what is left at its first write.
    store(tmp_path, DAILY, bars(DAILY, ns(2024, 3, 1), ns(2024, 3, 2), close=3.0))
    assert names(DAILY.dir(tmp_path)) == ["2024.parquet"]
    closes = read_series(tmp_path, DAILY).column("close").to_pylist()
    assert closes == [1.0] * 31 + [2.0] * 29 + [3.0]
    assert verify_series(tmp_path, DAILY) == []


def test_an_old_span_1M_directory_is_renamed_with_its_ledger(tmp_path: Path) -> None:
    store(tmp_path, MONTHLY, bars(MONTHLY, ns(2023, 1, 1), ns(2024, 3, 1)))
    want, ledger = read_series(tmp_path, MONTHLY), Ledger.load(MONTHLY.dir(tmp_path)).fetched
    as_months(tmp_path, MONTHLY)
    old = MONTHLY.dir(tmp_path).with_name("span=1M")
    MONTHLY.dir(tmp_path).rename(old)
    assert series_dirs(tmp_path, MONTHLY) == [MONTHLY.dir(tmp_path), old]
    assert read_series(tmp_path, MONTHLY).equals(want)
    assert stored_ledger(tmp_path, MONTHLY).fetched == ledger
    # A minute series is what a case-insensitive filesystem confuses span=1M with: its
    # download moves the month series out of the way first.
    notes = upgrade_series(tmp_path, MINUTE)
    assert any("moved span=1M to span=1mo" in n for n in notes), notes
    assert not old.exists()
    assert "2023-01.parquet" in names(MONTHLY.dir(tmp_path))  # folded at its next write
    assert read_series(tmp_path, MONTHLY).equals(want)
    assert Ledger.load(MONTHLY.dir(tmp_path), MONTHLY).fetched == ledger
    upgrade_series(tmp_path, MONTHLY)
    assert names(MONTHLY.dir(tmp_path)) == ["2023.parquet", "2024.parquet"]
    assert read_series(tmp_path, MONTHLY).equals(want)


def test_an_old_span_1M_beside_a_new_span_1mo_is_merged_into_it(tmp_path: Path) -> None:
    # An older dccd wrote 2023 into span=1M after this one had written 2024 to span=1mo.
    store(tmp_path, MONTHLY, bars(MONTHLY, ns(2023, 1, 1), ns(2024, 2, 1), close=1.0))
    as_months(tmp_path, MONTHLY)
    old = MONTHLY.dir(tmp_path).with_name("span=1M")
    MONTHLY.dir(tmp_path).rename(old)
    store(tmp_path, MONTHLY, bars(MONTHLY, ns(2024, 1, 1), ns(2024, 3, 1), close=2.0))
    assert names(MONTHLY.dir(tmp_path)) == ["2024.parquet"]
    assert "span=1M: an older dccd's directory beside span=1mo" in verify_series(tmp_path, MONTHLY)[0]
    assert read_series(tmp_path, MONTHLY).column("close").to_pylist() == [1.0] * 12 + [2.0] * 2
    notes = upgrade_series(tmp_path, MONTHLY)
    assert notes == [f"{MONTHLY}: merged an older dccd's span=1M into span=1mo"]
    assert not old.exists()
    assert names(MONTHLY.dir(tmp_path)) == ["2023.parquet", "2024.parquet"]
    # January 2024 was in both: the newer directory's bar wins.
    assert read_series(tmp_path, MONTHLY).column("close").to_pylist() == [1.0] * 12 + [2.0] * 2
    assert Ledger.load(MONTHLY.dir(tmp_path)).fetched == [(ns(2023, 1, 1), ns(2024, 3, 1))]
    assert verify_series(tmp_path, MONTHLY) == []
