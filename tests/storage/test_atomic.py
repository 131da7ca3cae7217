"""Crash safety: injected disk errors, a killed writer, stale temporaries, concurrent writers."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from dccd_cli.errors import StorageError
from dccd_cli.pieces import Chunk
from dccd_cli.schema import ohlc_table
from dccd_cli.storage import Ledger, SeriesKey, SeriesWriter, read_series, verify_series
from dccd_cli.timeutil import HOUR_NS, datetime_to_ns

KEY = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
T0 = datetime_to_ns(datetime(2024, 1, 10, tzinfo=UTC))
REPO = Path(__file__).resolve().parents[2]


def bars(first_hour: int, last_hour: int, close: float = 1.0) -> Chunk:
    ts = [T0 + h * HOUR_NS for h in range(first_hour, last_hour)]
    n = len(ts)
    return Chunk(
        ts[0],
        ts[-1] + HOUR_NS,
        ohlc_table(ts, [1.0] * n, [2.0] * n, [0.5] * n, [close] * n, [1.0] * n),
    )


def write(root: Path, *chunks: Chunk) -> SeriesWriter:
    w = SeriesWriter(root, KEY, native_symbol="BTCUSDT", version="test")
    for c in chunks:
        w.add(c)
    w.close()
    return w


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_write_error_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, bars(0, 10))
    series = KEY.dir(tmp_path)
    path = series / "2024-01.parquet"
    before, ledger_before = path.read_bytes(), (series / "_coverage.json").read_bytes()

    real_write_table = pq.write_table

    def disk_full_midway(table: Any, where: Any, **kwargs: Any) -> None:
        real_write_table(table, where, **kwargs)  # the bytes are partly out...
        with open(where, "r+b") as fh:
            fh.truncate(100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # ...when the disk fills up

    monkeypatch.setattr(pq, "write_table", disk_full_midway)
    w = SeriesWriter(tmp_path, KEY, native_symbol="BTCUSDT", version="test")
    w.add(bars(5, 20, close=2.0))
    with pytest.raises(StorageError) as info:
        w.close()
    assert str(path) in str(info.value) and "No space left on device" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    w.abort()

    assert path.read_bytes() == before
    assert (series / "_coverage.json").read_bytes() == ledger_before  # claims nothing new
    assert listing(series) == ["2024-01.parquet", "_coverage.json", "_dccd.lock"]
    assert verify_series(tmp_path, KEY) == []

    monkeypatch.undo()  # the disk has room again: the re-run completes the merge
    write(tmp_path, bars(5, 20, close=2.0))
    assert read_series(tmp_path, KEY).column("close").to_pylist() == [1.0] * 5 + [2.0] * 15


def test_a_ledger_write_error_leaves_the_data_durable_and_the_ledger_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, bars(0, 10))
    real_replace = os.replace

    def read_only(src: Any, dst: Any) -> None:
        if str(dst).endswith("_coverage.json"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", read_only)
    w = SeriesWriter(tmp_path, KEY, native_symbol="BTCUSDT", version="test")
    w.add(bars(10, 20))
    with pytest.raises(StorageError, match="_coverage.json: Read-only file system"):
        w.close()
    w.abort()  # must not raise again
    monkeypatch.undo()
    assert read_series(tmp_path, KEY).num_rows == 20  # rows are on disk ...
    assert Ledger.load(KEY.dir(tmp_path)).fetched == [
        (T0, T0 + 10 * HOUR_NS)
    ]  # ... not yet claimed
    assert any("outside the ledger's fetched ranges" in p for p in verify_series(tmp_path, KEY))
    assert not [n for n in listing(KEY.dir(tmp_path)) if n.endswith(".tmp")]


def test_an_unreadable_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    series = KEY.dir(tmp_path)
    series.mkdir(parents=True)
    (series / "2024-01.parquet").write_bytes(b"not parquet at all")
    w = SeriesWriter(tmp_path, KEY, native_symbol="BTCUSDT", version="test")
    w.add(bars(0, 10))
    with pytest.raises(StorageError, match="2024-01.parquet cannot be read"):
        w.close()
    assert (series / "2024-01.parquet").read_bytes() == b"not parquet at all"


def test_an_unusable_output_directory_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    w = SeriesWriter(tmp_path / "file", KEY, native_symbol="BTCUSDT", version="test")
    w.add(bars(0, 10))
    with pytest.raises(StorageError, match="could not create the directory"):
        w.close()


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import pyarrow.parquet as pq
    from dccd_cli.pieces import Chunk
    from dccd_cli.schema import ohlc_table
    from dccd_cli.storage import Ledger, SeriesKey, SeriesWriter

    root, t0, hour, where = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    key = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
    ts = [t0 + h * hour for h in range(5, 20)]
    n = len(ts)
    chunk = Chunk(ts[0], ts[-1] + hour, ohlc_table(ts, [1.0] * n, [2.0] * n, [0.5] * n, [2.0] * n, [1.0] * n))

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    real = pq.write_table
    if where == "data":  # killed with the new file half written
        def half_then_die(table, path, **kwargs):
            real(table, path, **kwargs)
            with open(path, "r+b") as fh:
                fh.truncate(64)
            die()
        pq.write_table = half_then_die
    else:  # killed after the data file is in place, before the ledger is saved
        Ledger.save = die
    w = SeriesWriter(root, key, native_symbol="BTCUSDT", version="test")
    w.add(chunk)
    w.close()
    """
)


@pytest.mark.parametrize("where", ["data", "ledger"])
def test_a_killed_writer_leaves_a_valid_dataset(tmp_path: Path, where: str) -> None:
    write(tmp_path, bars(0, 10))
    series = KEY.dir(tmp_path)
    before = (series / "2024-01.parquet").read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(T0), str(HOUR_NS), where],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr.decode()

    stale = [n for n in listing(series) if n.endswith(".tmp")]
    if where == "data":
        assert len(stale) == 1 and stale[0].startswith(".dccd-2024-01.parquet.")
        assert (series / "2024-01.parquet").read_bytes() == before
    else:
        assert stale == []
        assert read_series(tmp_path, KEY).num_rows == 20  # the new file is whole
    # Dataset readers see a valid dataset, whichever file won; the ledger never over-claims.
    assert ds.dataset(tmp_path / "ohlc", partitioning="hive").to_table().num_rows in (10, 20)
    assert Ledger.load(series).fetched == [(T0, T0 + 10 * HOUR_NS)]

    write(tmp_path, bars(5, 20, close=2.0))  # the next run resumes and cleans up
    assert [n for n in listing(series) if n.endswith(".tmp")] == []
    assert read_series(tmp_path, KEY).column("close").to_pylist() == [1.0] * 5 + [2.0] * 15
    assert Ledger.load(series).fetched == [(T0, T0 + 20 * HOUR_NS)]
    assert verify_series(tmp_path, KEY) == []


def test_stale_temporaries_are_ignored_by_readers_and_cleaned_by_the_next_writer(
    tmp_path: Path,
) -> None:
    write(tmp_path, bars(0, 10))
    series = KEY.dir(tmp_path)
    stale = [
        series / ".dccd-2024-01.parquet.4242-deadbeef.tmp",
        series / ".dccd-_coverage.json.4242-cafe.tmp",
    ]
    stale[0].write_bytes(b"PAR1\x00\x00 half a file")
    stale[1].write_bytes(b'{"format": "dccd.cov')
    user_file = series / ".keep"
    user_file.write_text("not ours")

    assert ds.dataset(tmp_path / "ohlc", partitioning="hive").to_table().num_rows == 10
    assert read_series(tmp_path, KEY).num_rows == 10
    assert verify_series(tmp_path, KEY) == []

    write(tmp_path, bars(10, 12))
    assert not any(p.exists() for p in stale)
    assert user_file.exists()


def test_concurrent_writers_of_one_series_lose_no_rows(tmp_path: Path) -> None:
    """Each partition merge re-reads the file (under the series lock), so interleaved
    writers (``dccd stream`` beside a backfill) keep each other's rows and coverage."""
    a = SeriesWriter(tmp_path, KEY, native_symbol="BTCUSDT", version="test")
    b = SeriesWriter(tmp_path, KEY, native_symbol="BTCUSDT", version="test")
    a.add(bars(0, 10))
    b.add(bars(100, 110))
    b.close()
    a.close()
    assert read_series(tmp_path, KEY).num_rows == 20
    assert Ledger.load(KEY.dir(tmp_path)).fetched == [
        (T0, T0 + 10 * HOUR_NS),
        (T0 + 100 * HOUR_NS, T0 + 110 * HOUR_NS),
    ]
