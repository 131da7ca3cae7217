"""SeriesWriter: partitioning, merge and dedup, bounded buffering, ledger, metadata, dataset."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dccd_cli.pieces import Chunk, FailedRange
from dccd_cli.schema import OHLC_SCHEMA, TRADES_SCHEMA, ohlc_table, trades_table, ts_ns_column
from dccd_cli.storage import Ledger, SeriesKey, SeriesWriter, merge_rows, read_series, verify_series
from dccd_cli.storage import writer as writer_module
from dccd_cli.timeutil import DAY_NS, HOUR_NS, MINUTE_NS, datetime_to_ns

OHLC = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
TRADES = SeriesKey("trades", "binance", "BTC-USDT")


def ns(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    return datetime_to_ns(datetime(y, m, d, hh, mm, ss, tzinfo=UTC))


def bars(start: int, end: int, close: float = 1.0, step: int = HOUR_NS) -> Chunk:
    ts = list(range(start, end, step))
    n = len(ts)
    table = ohlc_table(ts, [1.0] * n, [2.0] * n, [0.5] * n, [close] * n, [10.0] * n, trades=[3] * n)
    return Chunk(start, end, table)


def trade_chunk(start: int, end: int, ts: list[int], ids: list[str], price: float = 100.0) -> Chunk:
    n = len(ts)
    return Chunk(start, end, trades_table(ts, ids, [price] * n, [0.5] * n, ["buy"] * n))


def writer(root: Path, key: SeriesKey = OHLC) -> SeriesWriter:
    return SeriesWriter(root, key, native_symbol="BTCUSDT", version="0.1.0-test")


def write(root: Path, pieces: list[Chunk | FailedRange], key: SeriesKey = OHLC) -> SeriesWriter:
    w = writer(root, key)
    for piece in pieces:
        w.add(piece)
    w.close()
    return w


def data_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))


def test_ohlc_is_partitioned_by_month_even_within_one_chunk(tmp_path: Path) -> None:
    # One chunk from Jan 31 to Mar 1: three months' boundaries inside a single piece.
    w = write(tmp_path, [bars(ns(2024, 1, 31), ns(2024, 3, 2))])
    d = "ohlc/exchange=binance/symbol=BTC-USDT/span=1h/"
    assert data_files(tmp_path) == [
        d + "2024-01.parquet",
        d + "2024-02.parquet",
        d + "2024-03.parquet",
    ]
    counts = [pq.read_metadata(tmp_path / f).num_rows for f in data_files(tmp_path)]
    assert counts == [24, 29 * 24, 24]
    assert w.stats.rows_added == w.stats.rows_written == sum(counts)
    assert len(w.stats.files_touched) == 3 and w.stats.bytes > 0
    assert Ledger.load(OHLC.dir(tmp_path)).fetched == [(ns(2024, 1, 31), ns(2024, 3, 2))]
    assert verify_series(tmp_path, OHLC) == []


def test_trades_are_partitioned_by_utc_day(tmp_path: Path) -> None:
    d0 = ns(2024, 1, 15)
    ts = [d0 + 23 * HOUR_NS, d0 + DAY_NS - 1, d0 + DAY_NS, d0 + DAY_NS + 5, d0 + 3 * DAY_NS + 1]
    write(tmp_path, [trade_chunk(d0, d0 + 4 * DAY_NS, ts, ["1", "2", "3", "4", "5"])], TRADES)
    d = "trades/exchange=binance/symbol=BTC-USDT/"
    assert data_files(tmp_path) == [
        d + "2024-01-15.parquet",
        d + "2024-01-16.parquet",
        d + "2024-01-18.parquet",
    ]
    assert read_series(tmp_path, TRADES).column("id").to_pylist() == ["1", "2", "3", "4", "5"]
    # The quiet day without trades (Jan 17) has no file but is recorded as fetched.
    assert Ledger.load(TRADES.dir(tmp_path)).missing(d0, d0 + 4 * DAY_NS) == []


def test_a_partition_is_flushed_once_pieces_move_past_it(tmp_path: Path) -> None:
    """Memory holds one day of trades at most, and coverage is recorded day by day."""
    d0 = ns(2024, 1, 1)
    w = writer(tmp_path, TRADES)
    day_file = TRADES.dir(tmp_path) / "2024-01-01.parquet"
    # Day 0 arrives in 4 chunks of 6 hours: buffered, not yet written.
    for k in range(4):
        s = d0 + k * 6 * HOUR_NS
        w.add(
            trade_chunk(
                s,
                s + 6 * HOUR_NS,
                [s + MINUTE_NS * i for i in range(100)],
                [f"{k}-{i:03d}" for i in range(100)],
            )
        )
        if k < 3:
            assert w.buffered_rows == 100 * (k + 1)
            assert not day_file.exists()
    # The fourth chunk ends exactly at midnight: the day is complete and written.
    assert day_file.exists()
    assert w.buffered_rows == 0
    assert Ledger.load(TRADES.dir(tmp_path)).fetched == [(d0, d0 + DAY_NS)]
    # Over a week of half-day chunks the buffer never holds more than the current day, and
    # coverage is committed up to the first row still in memory, never beyond it.
    d1, half = d0 + DAY_NS, 12 * HOUR_NS
    for j in range(14):
        s = d1 + j * half
        w.add(
            trade_chunk(
                s,
                s + half,
                [s + i * MINUTE_NS for i in range(25)],
                [f"{j}-{i:02d}" for i in range(25)],
            )
        )
        assert w.buffered_rows == (25 if j % 2 == 0 else 0)
        assert len(w.buffered_partitions) == (1 if j % 2 == 0 else 0)
        assert Ledger.load(TRADES.dir(tmp_path)).fetched == [(d0, s + (j % 2) * half)]
    stats = w.close()
    assert stats.rows_added == 400 + 14 * 25
    assert len(stats.files_touched) == 8
    assert Ledger.load(TRADES.dir(tmp_path)).fetched == [(d0, d0 + 8 * DAY_NS)]


def test_merge_keeps_old_rows_and_newer_fetch_wins(tmp_path: Path) -> None:
    t0 = ns(2024, 1, 10)
    write(tmp_path, [bars(t0, t0 + 10 * HOUR_NS, close=1.0)])
    # Overlapping re-fetch: hours 5..15 with corrected closes.
    w = write(tmp_path, [bars(t0 + 5 * HOUR_NS, t0 + 15 * HOUR_NS, close=2.0)])
    table = read_series(tmp_path, OHLC)
    ts = ts_ns_column(table).to_pylist()
    assert ts == [t0 + h * HOUR_NS for h in range(15)]
    assert table.column("close").to_pylist() == [1.0] * 5 + [2.0] * 10
    assert w.stats.rows_added == 5 and w.stats.rows_written == 10
    assert Ledger.load(OHLC.dir(tmp_path)).fetched == [(t0, t0 + 15 * HOUR_NS)]


def test_an_unfinished_bar_is_replaced_by_its_final_version(tmp_path: Path) -> None:
    t0 = ns(2024, 1, 10)
    partial = ohlc_table([t0], [1.0], [1.5], [0.9], [1.2], [3.0])
    write(tmp_path, [Chunk(t0, t0 + HOUR_NS, partial)])
    final = ohlc_table([t0], [1.0], [1.8], [0.7], [1.6], [9.0])
    w = write(tmp_path, [Chunk(t0, t0 + HOUR_NS, final)])
    assert w.stats.rows_added == 0 and w.stats.rows_written == 1
    assert read_series(tmp_path, OHLC).column("volume").to_pylist() == [9.0]


def test_trades_are_unique_on_id_and_in_the_exchanges_order_within_an_instant(
    tmp_path: Path,
) -> None:
    d0 = ns(2024, 1, 15)
    # Unsorted within the chunk, with equal timestamps; ids that are not integers (BitMEX's
    # are UUIDs) do not order trades, so "b" stays before "a", as the exchange listed them.
    write(
        tmp_path,
        [trade_chunk(d0, d0 + HOUR_NS, [d0 + 5, d0 + 1, d0 + 5, d0 + 3], ["b", "x", "a", "c"])],
        TRADES,
    )
    # A later chunk repeats trade "c" with a corrected price (and a new trade).
    later = trade_chunk(d0 + 2 * HOUR_NS, d0 + 3 * HOUR_NS, [d0 + 2 * HOUR_NS], ["d"], price=7.0)
    w = write(tmp_path, [trade_chunk(d0, d0 + HOUR_NS, [d0 + 3], ["c"], price=5.0), later], TRADES)
    table = read_series(tmp_path, TRADES)
    assert table.column("id").to_pylist() == ["x", "c", "b", "a", "d"]
    assert table.column("price").to_pylist() == [100.0, 5.0, 100.0, 100.0, 7.0]
    assert w.stats.rows_added == 1
    assert verify_series(tmp_path, TRADES) == []


def test_rewriting_the_same_chunks_is_idempotent(tmp_path: Path) -> None:
    pieces: list[Chunk | FailedRange] = [bars(ns(2024, 1, 20), ns(2024, 2, 10))]
    write(tmp_path, pieces)
    files = {f: (tmp_path / f).read_bytes() for f in data_files(tmp_path)}
    ledger = (OHLC.dir(tmp_path) / "_coverage.json").read_bytes()
    w = write(tmp_path, pieces)
    assert w.stats.rows_added == 0
    assert w.stats.files_touched == []  # nothing changed, nothing rewritten
    assert {f: (tmp_path / f).read_bytes() for f in data_files(tmp_path)} == files
    assert (OHLC.dir(tmp_path) / "_coverage.json").read_bytes() == ledger


def test_a_forced_rewrite_is_byte_identical(tmp_path: Path) -> None:
    """Writing the same rows again (here: after a corrected bar is corrected back) gives the same bytes."""
    t0 = ns(2024, 1, 10)
    write(tmp_path, [bars(t0, t0 + 5 * HOUR_NS)])
    path = OHLC.dir(tmp_path) / "2024-01.parquet"
    before = path.read_bytes()
    write(tmp_path, [bars(t0, t0 + HOUR_NS, close=9.0)])
    assert path.read_bytes() != before
    w = write(tmp_path, [bars(t0, t0 + HOUR_NS, close=1.0)])
    assert w.stats.files_touched == [path] and w.stats.rows_added == 0
    assert path.read_bytes() == before


def test_files_carry_schema_metadata_and_compression(tmp_path: Path) -> None:
    write(tmp_path, [bars(ns(2024, 1, 1), ns(2024, 1, 2))])
    write(tmp_path, [trade_chunk(ns(2024, 1, 1), ns(2024, 1, 2), [ns(2024, 1, 1)], ["1"])], TRADES)
    ohlc_file = OHLC.dir(tmp_path) / "2024-01.parquet"
    meta = pq.read_metadata(ohlc_file)
    kv = {k.decode(): v.decode() for k, v in meta.metadata.items() if k.startswith(b"dccd.")}
    assert kv == {
        "dccd.exchange": "binance",
        "dccd.symbol": "BTC-USDT",
        "dccd.native_symbol": "BTCUSDT",
        "dccd.kind": "ohlc",
        "dccd.span": "1h",
        "dccd.version": "0.1.0-test",
    }
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert "DELTA_BINARY_PACKED" in meta.row_group(0).column(0).encodings  # ts
    assert pq.read_schema(ohlc_file).equals(OHLC_SCHEMA, check_metadata=False)
    assert pq.read_schema(ohlc_file).field("ts").type == pa.timestamp("ns", tz="UTC")
    trades_file = TRADES.dir(tmp_path) / "2024-01-01.parquet"
    tkv = pq.read_metadata(trades_file).metadata
    assert tkv[b"dccd.kind"] == b"trades" and b"dccd.span" not in tkv
    assert pq.read_schema(trades_file).equals(TRADES_SCHEMA, check_metadata=False)


def test_the_dataset_reads_whole_with_hive_partition_columns(tmp_path: Path) -> None:
    write(tmp_path, [bars(ns(2024, 1, 31), ns(2024, 2, 2))])
    write(
        tmp_path,
        [bars(ns(2024, 1, 31), ns(2024, 2, 1), step=4 * HOUR_NS)],
        SeriesKey("ohlc", "binance", "BTC-USDT", "4h"),
    )
    write(
        tmp_path,
        [bars(ns(2024, 1, 31), ns(2024, 2, 1))],
        SeriesKey("ohlc", "kraken", "ETH-USD", "1h"),
    )
    write(
        tmp_path, [FailedRange(ns(2024, 2, 2), ns(2024, 2, 3), "HTTP 503")]
    )  # a ledger-only update
    # A stale temporary file (a killed run) must be skipped too.
    (OHLC.dir(tmp_path) / ".dccd-2024-01.parquet.123-abcd.tmp").write_bytes(b"PAR1 partial")

    table = ds.dataset(tmp_path / "ohlc", partitioning="hive").to_table()
    assert table.num_rows == 48 + 6 + 24
    assert {"exchange", "symbol", "span"} <= set(table.column_names)
    rows = table.group_by(["exchange", "symbol", "span"]).aggregate([("ts", "count")]).to_pylist()
    assert sorted((r["exchange"], r["symbol"], r["span"], r["ts_count"]) for r in rows) == [
        ("binance", "BTC-USDT", "1h", 48),
        ("binance", "BTC-USDT", "4h", 6),
        ("kraken", "ETH-USD", "1h", 24),
    ]
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")

    write(
        tmp_path,
        [trade_chunk(ns(2024, 1, 1), ns(2024, 1, 3), [ns(2024, 1, 1), ns(2024, 1, 2)], ["1", "2"])],
        TRADES,
    )
    trades = ds.dataset(tmp_path / "trades", partitioning="hive").to_table()
    assert trades.num_rows == 2 and {"exchange", "symbol"} <= set(trades.column_names)


def test_failed_ranges_are_recorded_and_cleared_by_a_later_fetch(tmp_path: Path) -> None:
    t0 = ns(2024, 1, 1)
    write(
        tmp_path,
        [
            bars(t0, t0 + 10 * HOUR_NS),
            FailedRange(t0 + 10 * HOUR_NS, t0 + 20 * HOUR_NS, "HTTP 503"),
            bars(t0 + 20 * HOUR_NS, t0 + 30 * HOUR_NS),
        ],
    )
    ledger = Ledger.load(OHLC.dir(tmp_path))
    assert ledger.fetched == [(t0, t0 + 10 * HOUR_NS), (t0 + 20 * HOUR_NS, t0 + 30 * HOUR_NS)]
    assert [tuple(f) for f in ledger.failed] == [(t0 + 10 * HOUR_NS, t0 + 20 * HOUR_NS, "HTTP 503")]
    missing = ledger.missing(t0, t0 + 30 * HOUR_NS)
    assert missing == [(t0 + 10 * HOUR_NS, t0 + 20 * HOUR_NS)]
    # The resume fetches exactly what is missing.
    write(tmp_path, [bars(s, e) for s, e in missing])
    ledger = Ledger.load(OHLC.dir(tmp_path))
    assert ledger.fetched == [(t0, t0 + 30 * HOUR_NS)] and ledger.failed == []
    assert read_series(tmp_path, OHLC).num_rows == 30


def test_abort_writes_and_records_what_was_received(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add(bars(ns(2024, 1, 30), ns(2024, 2, 1)))  # January complete: written
    w.add(bars(ns(2024, 2, 1), ns(2024, 2, 3)))  # February: buffered
    w.add(FailedRange(ns(2024, 2, 3), ns(2024, 2, 4), "HTTP 500"))
    w.abort()  # an interrupt: February's two days are kept, not thrown away
    assert data_files(tmp_path) == ["ohlc/exchange=binance/symbol=BTC-USDT/span=1h/2024-01.parquet",
                                    "ohlc/exchange=binance/symbol=BTC-USDT/span=1h/2024-02.parquet"]
    ledger = Ledger.load(OHLC.dir(tmp_path))
    assert ledger.fetched == [(ns(2024, 1, 30), ns(2024, 2, 3))]
    assert [f.error for f in ledger.failed] == ["HTTP 500"]
    assert verify_series(tmp_path, OHLC) == []
    with pytest.raises(RuntimeError):
        w.add(bars(ns(2024, 2, 4), ns(2024, 2, 5)))
    w.abort()  # a second abort is harmless


def test_context_manager_aborts_on_error(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), writer(tmp_path) as w:
        w.add(bars(ns(2024, 1, 30), ns(2024, 2, 2)))
        raise KeyboardInterrupt
    assert Ledger.load(OHLC.dir(tmp_path)).fetched == [(ns(2024, 1, 30), ns(2024, 2, 2))]
    with writer(tmp_path) as w:
        w.add(bars(ns(2024, 2, 1), ns(2024, 2, 2)))
    assert Ledger.load(OHLC.dir(tmp_path)).fetched == [(ns(2024, 1, 30), ns(2024, 2, 2))]


def test_empty_chunks_record_quiet_ranges(tmp_path: Path) -> None:
    d0 = ns(2024, 3, 1)
    write(tmp_path, [trade_chunk(d0, d0 + 2 * DAY_NS, [], [])], TRADES)
    assert data_files(tmp_path) == []
    assert Ledger.load(TRADES.dir(tmp_path)).fetched == [(d0, d0 + 2 * DAY_NS)]


def test_programming_errors_are_refused(tmp_path: Path) -> None:
    t0 = ns(2024, 1, 1)
    w = writer(tmp_path)
    with pytest.raises(ValueError, match="outside its range"):
        w.add(Chunk(t0, t0 + HOUR_NS, bars(t0, t0 + 2 * HOUR_NS).table))
    with pytest.raises(ValueError, match="schema"):
        w.add(Chunk(t0, t0 + HOUR_NS, trade_chunk(t0, t0 + 1, [t0], ["1"]).table))
    with pytest.raises(ValueError, match="null"):
        w.add(
            Chunk(
                t0,
                t0 + HOUR_NS,
                ohlc_table(pa.array([None], pa.int64()), [1.0], [1.0], [1.0], [1.0], [1.0]),
            )
        )
    w.add(bars(t0, t0 + 2 * HOUR_NS))
    with pytest.raises(ValueError, match="time order"):
        w.add(bars(t0 + HOUR_NS, t0 + 3 * HOUR_NS))
    w.add(bars(t0 + 5 * HOUR_NS, t0 + 6 * HOUR_NS))  # a gap is fine
    w.close()
    with pytest.raises(RuntimeError):
        w.close()
    assert read_series(tmp_path, OHLC).num_rows == 3


def test_flush_makes_a_partial_partition_durable(tmp_path: Path) -> None:
    """A live stream flushes during the day; the day's file is merged again later."""
    d0 = ns(2024, 1, 15)
    w = writer(tmp_path, TRADES)
    w.add(trade_chunk(d0, d0 + HOUR_NS, [d0 + 1, d0 + 2], ["1", "2"]))
    w.flush()
    assert read_series(tmp_path, TRADES).num_rows == 2
    assert Ledger.load(TRADES.dir(tmp_path)).fetched == [(d0, d0 + HOUR_NS)]
    assert w.buffered_rows == 0
    w.add(trade_chunk(d0 + HOUR_NS, d0 + 2 * HOUR_NS, [d0 + HOUR_NS], ["3"]))
    stats = w.close()
    assert read_series(tmp_path, TRADES).column("id").to_pylist() == ["1", "2", "3"]
    assert stats.rows_added == 3 and len(stats.files_touched) == 2
    assert Ledger.load(TRADES.dir(tmp_path)).fetched == [(d0, d0 + 2 * HOUR_NS)]


# -- property: whatever the chunking and the re-fetches, the files equal a simple model ----

_day_rows = st.lists(
    st.tuples(st.integers(0, 3 * 24 - 1), st.integers(0, 9)),  # (hour within 3 days, price)
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    runs=st.lists(
        st.tuples(_day_rows, st.lists(st.integers(1, 3 * 24 - 1), max_size=5)),
        min_size=1,
        max_size=3,
    )
)
def test_writer_matches_a_dict_model(
    tmp_path_factory: pytest.TempPathFactory, runs: list[tuple[list[tuple[int, int]], list[int]]]
) -> None:
    root = tmp_path_factory.mktemp("model")
    d0 = ns(2024, 1, 30)  # the 3 days cross a month boundary
    model: dict[int, float] = {}
    for rows, cuts in runs:
        fetched = {h: float(p) for h, p in rows}  # one fetch sees one version of each bar
        bounds = sorted({0, 3 * 24, *cuts})
        w = writer(root)
        for a, b in itertools.pairwise(bounds):
            hours = sorted(h for h in fetched if a <= h < b)
            n = len(hours)
            table = ohlc_table(
                [d0 + h * HOUR_NS for h in hours],
                [1.0] * n,
                [2.0] * n,
                [0.5] * n,
                [fetched[h] for h in hours],
                [1.0] * n,
            )
            w.add(Chunk(d0 + a * HOUR_NS, d0 + b * HOUR_NS, table))
        stats = w.close()
        assert stats.rows_added == len(set(fetched) - set(model))
        model.update(fetched)  # the newer fetch wins
    table = read_series(root, OHLC)
    assert ts_ns_column(table).to_pylist() == [d0 + h * HOUR_NS for h in sorted(model)]
    assert table.column("close").to_pylist() == [model[h] for h in sorted(model)]
    assert Ledger.load(OHLC.dir(root)).fetched == [(d0, d0 + 3 * DAY_NS)]
    assert verify_series(root, OHLC) == []


Row = tuple[int, int, int]
_trades = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 15), st.integers(1, 5)), max_size=30
)


@given(old=_trades, new=_trades, numeric=st.booleans())
def test_merge_rows_of_trades_matches_a_dict_model(
    old: list[Row], new: list[Row], numeric: bool
) -> None:
    """(ts, id, price) rows: unique on id, the new table wins, in trade order — within a
    ts integer ids (of one and two digits) by number; other ids as they came, the newest
    fetch's rows after the stored ones it did not return."""
    name = str if numeric else (lambda i: f"t{i}")

    def table(rows: list[Row]) -> pa.Table:
        return trades_table(
            [r[0] for r in rows],
            [name(r[1]) for r in rows],
            [float(r[2]) for r in rows],
            [1.0] * len(rows),
            None,
        )

    # id -> (ts, price, (0 stored / 1 new, arrival of its newest row)); later rows win
    model: dict[str, tuple[int, float, tuple[int, int]]] = {}
    for source, rows in enumerate((old, new)):
        for pos, (ts, i, price) in enumerate(rows):
            model[name(i)] = (ts, float(price), (source, pos))
    existing = merge_rows(TRADES, None, table(old))[0]  # a stored file is itself merged
    merged, from_new = merge_rows(TRADES, existing, table(new))
    within = (lambda i, _: int(i)) if numeric else (lambda _, came: came)
    expected = [(ts, i, p) for i, (ts, p, came) in
                sorted(model.items(), key=lambda kv: (kv[1][0], within(kv[0], kv[1][2])))]
    got = list(
        zip(
            ts_ns_column(merged).to_pylist(),
            merged.column("id").to_pylist(),
            merged.column("price").to_pylist(),
        )
    )
    assert got == expected
    assert from_new == len({r[1] for r in new})
    assert merged.schema == TRADES_SCHEMA


def test_the_manifest_records_each_file_and_a_version_1_ledger_gets_one_from_the_footers(
    tmp_path: Path,
) -> None:
    write(tmp_path, [bars(ns(2024, 1, 30), ns(2024, 2, 2))])
    directory = OHLC.dir(tmp_path)
    files = Ledger.load(directory).files
    assert sorted(files) == ["2024-01.parquet", "2024-02.parquet"]
    jan = files["2024-01.parquet"]
    assert (jan.rows, jan.ts_min, jan.ts_max) == (48, ns(2024, 1, 30), ns(2024, 1, 31, 23))
    assert (jan.start_ns, jan.end_ns) == (ns(2024, 1, 1), ns(2024, 2, 1))
    assert jan.size == (directory / jan.name).stat().st_size

    # A ledger of an older dccd: coverage only. The next write records every file present.
    (directory / "_coverage.json").write_text(
        '{"format": "dccd.coverage", "version": 1, '
        f'"fetched": [[{ns(2024, 1, 30)}, {ns(2024, 2, 2)}]], "failed": []}}')
    assert not Ledger.load(directory).files_known
    write(tmp_path, [bars(ns(2024, 2, 2), ns(2024, 2, 3))])
    migrated = Ledger.load(directory)
    assert migrated.files["2024-01.parquet"] == jan  # from its footer: the same entry
    assert migrated.files["2024-02.parquet"].rows == 48
    assert verify_series(tmp_path, OHLC) == []


def test_trades_days_record_their_id_bounds(tmp_path: Path) -> None:
    t0 = ns(2024, 1, 1)
    write(tmp_path, [trade_chunk(t0, t0 + DAY_NS, [t0 + 5, t0 + 9], ["70", "71"])], TRADES)
    (entry,) = Ledger.load(TRADES.dir(tmp_path)).files.values()
    assert (entry.rows, entry.id_min, entry.id_max, entry.ts_max) == (2, 70, 71, t0 + 9)


def test_a_month_in_progress_is_committed_every_few_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [0.0]
    monkeypatch.setattr(writer_module.time, "monotonic", lambda: clock[0])
    w = writer(tmp_path)
    d0 = ns(2024, 1, 1)
    for k in range(4):  # a day of bars every 2 s: the commit comes with the 4th (at 6 s)
        w.add(bars(d0 + k * DAY_NS, d0 + (k + 1) * DAY_NS))
        clock[0] += 2.0
    # What a SIGKILL now would leave: four days of January, recorded, nothing in memory.
    assert Ledger.load(OHLC.dir(tmp_path)).fetched == [(d0, d0 + 4 * DAY_NS)]
    assert read_series(tmp_path, OHLC).num_rows == 96 and w.buffered_rows == 0
    w.add(bars(d0 + 4 * DAY_NS, d0 + 5 * DAY_NS))
    w.close()
    assert read_series(tmp_path, OHLC).num_rows == 120
    assert verify_series(tmp_path, OHLC) == []
