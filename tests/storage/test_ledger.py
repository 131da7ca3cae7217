"""The coverage ledger: exact interval algebra (property-tested), failures, the file."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dccd_cli.errors import StorageError
from dccd_cli.storage import LEDGER_NAME, Ledger, SeriesKey
from dccd_cli.storage.intervals import intersect, normalize, subtract, union
from dccd_cli.storage.manifest import FileEntry

UNIVERSE = 64  # intervals live in [0, 64): small enough to model as sets of points

bounds = st.tuples(st.integers(0, UNIVERSE), st.integers(0, UNIVERSE)).map(
    lambda t: (min(t), max(t))
)
interval_lists = st.lists(bounds, max_size=8)


def points(intervals: list[tuple[int, int]]) -> set[int]:
    return {p for s, e in intervals for p in range(s, e)}


def assert_canonical(intervals: list[tuple[int, int]]) -> None:
    for s, e in intervals:
        assert s < e
    for (_, e0), (s1, _) in itertools.pairwise(intervals):
        assert e0 < s1  # sorted, disjoint and not touching (touching ones are merged)


@given(interval_lists)
def test_normalize_keeps_points_and_is_canonical(ivs: list[tuple[int, int]]) -> None:
    out = normalize(ivs)
    assert points(out) == points(ivs)
    assert_canonical(out)
    assert normalize(out) == out


@given(interval_lists, interval_lists)
def test_set_operations_match_point_sets(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    na, nb = normalize(a), normalize(b)
    for result, expected in [
        (union(na, nb), points(a) | points(b)),
        (subtract(na, nb), points(a) - points(b)),
        (intersect(na, nb), points(a) & points(b)),
    ]:
        assert points(result) == expected
        assert_canonical(result)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("fetched"), bounds, st.just("")),
        st.tuples(st.just("failed"), bounds, st.sampled_from(["HTTP 503", "timeout", "HTTP 418"])),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(ops, bounds)
def test_ledger_matches_a_point_model(
    tmp_path_factory: pytest.TempPathFactory,
    seq: list[tuple[str, tuple[int, int], str]],
    query: tuple[int, int],
) -> None:
    ledger = Ledger(tmp_path_factory.mktemp("ledger"))
    # The model: each point is fetched, failed with an error, or unknown.
    model: dict[int, str] = {}
    for op, (s, e), err in seq:
        for p in range(s, e):
            if op == "fetched":
                model[p] = "fetched"
            elif model.get(p) != "fetched":  # a failed re-fetch never undoes a fetch
                model[p] = "failed:" + err
        if op == "fetched":
            ledger.add_fetched(s, e)
        else:
            ledger.add_failed(s, e, err)

    assert points(ledger.fetched) == {p for p, v in model.items() if v == "fetched"}
    assert_canonical(ledger.fetched)
    failed_points = {
        p: "failed:" + f.error for f in ledger.failed for p in range(f.start_ns, f.end_ns)
    }
    assert failed_points == {p: v for p, v in model.items() if v != "fetched"}
    # failed entries: sorted, non-overlapping, touching only when their errors differ
    for f0, f1 in itertools.pairwise(ledger.failed):
        assert f0.end_ns < f1.start_ns or (f0.end_ns == f1.start_ns and f0.error != f1.error)

    qs, qe = query
    missing = ledger.missing(qs, qe)
    assert_canonical(missing)
    assert points(missing) == {p for p in range(qs, qe) if model.get(p) != "fetched"}
    assert ledger.covers(qs, qe) == (not missing)

    ledger.save()
    again = Ledger.load(ledger.directory)
    assert again.fetched == ledger.fetched and again.failed == ledger.failed


def test_failed_range_is_cleared_by_a_later_fetch(tmp_path: Path) -> None:
    ledger = Ledger.load(tmp_path)
    ledger.add_fetched(0, 100)
    ledger.add_failed(100, 200, "HTTP 503")
    ledger.add_fetched(200, 300)
    ledger.save()

    ledger = Ledger.load(tmp_path)
    assert ledger.fetched == [(0, 100), (200, 300)]
    assert [tuple(f) for f in ledger.failed] == [(100, 200, "HTTP 503")]
    assert ledger.missing(0, 300) == [(100, 200)]

    ledger.add_fetched(120, 150)  # a partial retry succeeds
    assert [tuple(f) for f in ledger.failed] == [(100, 120, "HTTP 503"), (150, 200, "HTTP 503")]
    ledger.add_fetched(100, 200)
    ledger.save()
    ledger = Ledger.load(tmp_path)
    assert ledger.fetched == [(0, 300)]
    assert ledger.failed == []
    assert ledger.missing(0, 300) == []
    assert ledger.missing(250, 400) == [(300, 400)]


def test_file_format(tmp_path: Path) -> None:
    key = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
    ledger = Ledger.load(tmp_path, key)
    ledger.add_fetched(10, 20)
    ledger.add_fetched(20, 30)
    ledger.add_failed(40, 50, "HTTP 503 — Service Unavailable")
    ledger.save()
    doc = json.loads((tmp_path / LEDGER_NAME).read_text())
    assert doc == {
        "format": "dccd.coverage",
        "version": 2,
        "series": {"kind": "ohlc", "exchange": "binance", "symbol": "BTC-USDT", "span": "1h"},
        "fetched": [[10, 30]],
        "failed": [{"start_ns": 40, "end_ns": 50, "error": "HTTP 503 — Service Unavailable"}],
        "provisional": [],
        "files": [],
    }
    # Re-saved without a key, the recorded series is kept.
    Ledger.load(tmp_path).save()
    assert json.loads((tmp_path / LEDGER_NAME).read_text())["series"]["symbol"] == "BTC-USDT"
    assert [p.name for p in tmp_path.iterdir()] == [LEDGER_NAME]  # no temporary left


def test_a_version_1_ledger_loads_with_its_files_unknown_and_saves_as_version_2(
    tmp_path: Path,
) -> None:
    (tmp_path / LEDGER_NAME).write_text(
        '{"format": "dccd.coverage", "version": 1, "fetched": [[10, 30]], "failed": []}')
    ledger = Ledger.load(tmp_path)
    assert ledger.fetched == [(10, 30)] and ledger.provisional == []
    assert not ledger.files_known and ledger.files == {}
    entry = FileEntry("2024-01.parquet", 0, 100, 3, 10, 29, 1234, 5678, 7, 9)
    ledger.record_file(entry)
    ledger.add_provisional(20, 30)
    ledger.save()
    doc = json.loads((tmp_path / LEDGER_NAME).read_text())
    assert doc["version"] == 2 and doc["provisional"] == [[20, 30]]
    again = Ledger.load(tmp_path)
    assert again.files == {"2024-01.parquet": entry} and again.files_known
    again.add_fetched(0, 40)  # fetched again: no longer forming
    assert again.provisional == []


def test_a_missing_ledger_is_empty_and_a_damaged_one_is_an_error(tmp_path: Path) -> None:
    assert Ledger.load(tmp_path / "nowhere").missing(5, 9) == [(5, 9)]
    path = tmp_path / LEDGER_NAME
    for bad in [
        "{not json",
        '{"format": "other"}',
        '{"format": "dccd.coverage", "version": 99, "fetched": []}',
        '{"format": "dccd.coverage", "version": 1, "fetched": [[1.5, 3]]}',
        '{"format": "dccd.coverage", "version": 1, "fetched": [[5, 3]]}',
        '{"format": "dccd.coverage", "version": 1, "failed": [{"start_ns": 1}]}',
        '{"format": "dccd.coverage", "version": 2, "files": [{"name": "x"}]}',
        '{"format": "dccd.coverage", "version": 2, "provisional": [[5, 3]]}',
    ]:
        path.write_text(bad)
        with pytest.raises(StorageError, match="coverage ledger"):
            Ledger.load(tmp_path)


def test_bad_ranges_are_programming_errors(tmp_path: Path) -> None:
    ledger = Ledger.load(tmp_path)
    with pytest.raises(ValueError):
        ledger.add_fetched(10, 5)
    with pytest.raises(ValueError):
        ledger.missing(10, 5)
    ledger.add_fetched(7, 7)  # empty: nothing to record
    assert ledger.fetched == []
