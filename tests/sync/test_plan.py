"""What a sync asks for: the ranges the ledger lacks, plus the overlap of the newest bars."""

from __future__ import annotations

from pathlib import Path

from dccd_cli.run.download import fetch_ranges
from dccd_cli.storage import Ledger
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS, Span

H1 = Span.parse("1h")
T0 = 1_709_251_200 * 10**9  # 2024-03-01


def ledger(tmp_path: Path, *fetched: tuple[int, int]) -> Ledger:
    return Ledger(tmp_path, fetched)


def test_nothing_stored_fetches_the_whole_range(tmp_path: Path) -> None:
    assert fetch_ranges(ledger(tmp_path), T0, T0 + DAY_NS, H1, overlap_bars=3) == [(T0, T0 + DAY_NS)]


def test_all_stored_fetches_only_the_overlap(tmp_path: Path) -> None:
    led = ledger(tmp_path, (T0, T0 + DAY_NS))
    assert fetch_ranges(led, T0, T0 + DAY_NS, H1, overlap_bars=3) == [(T0 + 21 * HOUR_NS, T0 + DAY_NS)]
    assert fetch_ranges(led, T0, T0 + DAY_NS, H1, overlap_bars=0) == []  # dccd ohlc: no overlap


def test_a_new_day_joins_the_overlap_into_one_range(tmp_path: Path) -> None:
    led = ledger(tmp_path, (T0, T0 + DAY_NS))
    got = fetch_ranges(led, T0 + DAY_NS // 2, T0 + 2 * DAY_NS, H1, overlap_bars=2)
    assert got == [(T0 + 22 * HOUR_NS, T0 + 2 * DAY_NS)]


def test_a_ragged_ledger_end_overlaps_the_bar_holding_it(tmp_path: Path) -> None:
    # An unfinished bar stored on request ends the ledger mid-bar: that bar is fetched again.
    led = ledger(tmp_path, (T0, T0 + 10 * HOUR_NS + 30 * MINUTE_NS))
    got = fetch_ranges(led, T0, T0 + 12 * HOUR_NS, H1, overlap_bars=1)
    assert got == [(T0 + 10 * HOUR_NS, T0 + 12 * HOUR_NS)]


def test_the_overlap_never_reaches_before_the_start_or_the_stored_part(tmp_path: Path) -> None:
    led = ledger(tmp_path, (T0 + 5 * HOUR_NS, T0 + 6 * HOUR_NS))
    got = fetch_ranges(led, T0, T0 + 6 * HOUR_NS, H1, overlap_bars=100)
    assert got == [(T0, T0 + 6 * HOUR_NS)]


def test_holes_are_fetched_and_only_the_newest_part_overlaps(tmp_path: Path) -> None:
    led = ledger(tmp_path, (T0, T0 + 2 * HOUR_NS), (T0 + 5 * HOUR_NS, T0 + 8 * HOUR_NS))
    got = fetch_ranges(led, T0, T0 + 8 * HOUR_NS, H1, overlap_bars=1)
    assert got == [(T0 + 2 * HOUR_NS, T0 + 5 * HOUR_NS), (T0 + 7 * HOUR_NS, T0 + 8 * HOUR_NS)]


def test_trades_overlap_by_a_duration(tmp_path: Path) -> None:
    led = ledger(tmp_path, (T0, T0 + HOUR_NS))
    got = fetch_ranges(led, T0, T0 + 2 * HOUR_NS, None, overlap_ns=2 * MINUTE_NS)
    assert got == [(T0 + HOUR_NS - 2 * MINUTE_NS, T0 + 2 * HOUR_NS)]
