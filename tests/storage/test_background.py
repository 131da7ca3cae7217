"""BackgroundWriter: a SeriesWriter's work on a thread of its own, in order, with a bounded
queue, the writer's errors raised to the caller, and an abort that lands whatever happens."""

from __future__ import annotations

import asyncio
import errno
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dccd_cli.errors import StorageError
from dccd_cli.pieces import Chunk, FailedRange
from dccd_cli.schema import ohlc_table
from dccd_cli.storage import Ledger, SeriesKey, SeriesWriter, WriteStats, read_series, verify_series
from dccd_cli.storage.background import BackgroundWriter, to_thread_to_end
from dccd_cli.timeutil import DAY_NS, HOUR_NS, datetime_to_ns

OHLC = SeriesKey("ohlc", "binance", "BTC-USDT", "1h")
D0 = datetime_to_ns(datetime(2024, 1, 1, tzinfo=UTC))


def bars(start: int, end: int) -> Chunk:
    ts = list(range(start, end, HOUR_NS))
    n = len(ts)
    return Chunk(start, end, ohlc_table(ts, [1.0] * n, [2.0] * n, [0.5] * n, [1.5] * n,
                                        [10.0] * n, trades=[3] * n))


def days(n: int) -> list[Chunk | FailedRange]:
    """``n`` consecutive days of hourly bars, a piece a day."""
    return [bars(D0 + i * DAY_NS, D0 + (i + 1) * DAY_NS) for i in range(n)]


class Recording(SeriesWriter):
    """A SeriesWriter that notes the thread and order of its calls, and can be held up
    (``gate``) or made to fail at one piece (``fail_at``)."""

    def __init__(self, root: Path, *, fail_at: int | None = None) -> None:
        super().__init__(root, OHLC, native_symbol="BTCUSDT", version="0.1.0-test")
        self.calls: list[tuple[str, int]] = []  # (method, thread id)
        self.added: list[int] = []  # start of each piece added
        self.gate = threading.Event()
        self.gate.set()
        self.fail_at = fail_at

    def add(self, piece: Chunk | FailedRange) -> None:
        self.calls.append(("add", threading.get_ident()))
        self.gate.wait(10)
        if self.fail_at is not None and len(self.added) == self.fail_at:
            raise StorageError("could not write 2024-01.parquet: No space left on device")
        self.added.append(piece.start_ns)
        super().add(piece)

    def close(self) -> WriteStats:
        self.calls.append(("close", threading.get_ident()))
        self.gate.wait(10)
        return super().close()

    def abort(self) -> None:
        self.calls.append(("abort", threading.get_ident()))
        self.gate.wait(10)
        super().abort()


async def test_every_call_runs_in_order_on_one_thread_that_is_not_the_loops(
        tmp_path: Path) -> None:
    w = Recording(tmp_path / "bg")
    bg = BackgroundWriter(w)
    pieces = days(40)
    for piece in pieces:
        await bg.add(piece)
    stats = await bg.close()
    threads = {t for _, t in w.calls}
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert [name for name, _ in w.calls] == ["add"] * 40 + ["close"]
    assert w.added == [p.start_ns for p in pieces]
    # The same files and ledger as the writer called directly.
    direct = SeriesWriter(tmp_path / "direct", OHLC, native_symbol="BTCUSDT", version="0.1.0-test")
    for piece in pieces:
        direct.add(piece)
    assert stats.rows_added == direct.close().rows_added == 40 * 24
    assert read_series(tmp_path / "bg", OHLC).equals(read_series(tmp_path / "direct", OHLC))
    assert Ledger.load(OHLC.dir(tmp_path / "bg")).fetched == [(D0, D0 + 40 * DAY_NS)]
    assert verify_series(tmp_path / "bg", OHLC) == []


async def test_a_slow_writer_holds_the_caller_back_once_the_queue_is_full(tmp_path: Path) -> None:
    w = Recording(tmp_path)
    w.gate.clear()  # the disk is stuck
    bg = BackgroundWriter(w, queue_pieces=3)
    pieces = days(5)
    for piece in pieces[:3]:
        await asyncio.wait_for(bg.add(piece), 5)  # queued: the caller goes on
    blocked = asyncio.create_task(bg.add(pieces[3]))
    await asyncio.sleep(0.3)
    assert not blocked.done(), "a fourth piece was taken while three waited for the disk"
    w.gate.set()
    await asyncio.wait_for(blocked, 10)
    await bg.add(pieces[4])
    assert (await bg.close()).rows_added == 5 * 24


async def test_a_failed_piece_is_raised_by_a_later_call_and_the_rest_are_not_written(
        tmp_path: Path) -> None:
    w = Recording(tmp_path, fail_at=2)
    bg = BackgroundWriter(w, queue_pieces=2)
    with pytest.raises(StorageError, match="No space left on device"):
        for piece in days(10):
            await bg.add(piece)
    await bg.abort()
    assert w.added == [D0, D0 + DAY_NS]  # nothing after the failed piece reached the writer
    assert [name for name, _ in w.calls][-1] == "abort"
    # What was received before the failure is recorded, as the writer's abort does.
    assert Ledger.load(OHLC.dir(tmp_path)).fetched == [(D0, D0 + 2 * DAY_NS)]
    with pytest.raises(RuntimeError, match="closed or aborted"):
        await bg.add(bars(D0 + 20 * DAY_NS, D0 + 21 * DAY_NS))


async def test_close_raises_a_failure_it_finds_after_aborting_the_writer(tmp_path: Path) -> None:
    w = Recording(tmp_path, fail_at=3)
    w.gate.clear()  # every add returns before the failure
    bg = BackgroundWriter(w, queue_pieces=16)
    for piece in days(5):
        await bg.add(piece)
    w.gate.set()
    with pytest.raises(StorageError, match="No space left on device"):
        await bg.close()
    assert [name for name, _ in w.calls] == ["add"] * 4 + ["abort"]
    assert Ledger.load(OHLC.dir(tmp_path)).fetched == [(D0, D0 + 3 * DAY_NS)]
    await bg.abort()  # after close: nothing more
    assert [name for name, _ in w.calls].count("abort") == 1


async def test_a_close_that_fails_is_raised_as_the_writer_raised_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = Recording(tmp_path)

    def full(*args: object) -> int:
        raise StorageError(f"could not write {tmp_path}: {errno.errorcode[errno.ENOSPC]}")

    monkeypatch.setattr("dccd_cli.storage.writer.write_data_file", full)
    bg = BackgroundWriter(w)
    await bg.add(bars(D0, D0 + DAY_NS))
    with pytest.raises(StorageError, match="ENOSPC"):
        await bg.close()
    assert not list(tmp_path.rglob("*.parquet"))
    assert not (OHLC.dir(tmp_path) / "_coverage.json").exists()
    await bg.abort()  # a failed close is not followed by an abort, as with the writer itself
    assert [name for name, _ in w.calls] == ["add", "close"]


async def test_a_cancelled_run_still_writes_and_records_every_piece_it_handed(
        tmp_path: Path) -> None:
    # Ctrl-C while the caller waits for a full queue: the pieces queued are written by the
    # abort that follows, and the abort finishes even if the task is cancelled again.
    w = Recording(tmp_path)
    w.gate.clear()
    bg = BackgroundWriter(w, queue_pieces=2)
    pieces = days(4)

    async def download() -> None:
        try:
            for piece in pieces:
                await bg.add(piece)
        except BaseException:
            await bg.abort()
            raise

    task = asyncio.create_task(download())
    await asyncio.sleep(0.2)
    task.cancel()  # waiting at the third piece's add, which queued it
    await asyncio.sleep(0.2)
    task.cancel()  # and again, during the abort
    await asyncio.sleep(0.2)
    assert not task.done(), "the abort was given up before the writer finished it"
    w.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert [name for name, _ in w.calls] == ["add"] * 3 + ["abort"]
    assert w.added == [p.start_ns for p in pieces[:3]]
    assert Ledger.load(OHLC.dir(tmp_path)).fetched == [(D0, D0 + 3 * DAY_NS)]
    assert verify_series(tmp_path, OHLC) == []


async def test_a_run_cancelled_while_its_close_fails_ends_cancelled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another series' error ends the run, asyncio cancels this one while its close is on the
    # thread, and the close then fails too: the task ends cancelled, as a cancelled task
    # does, not with an error asyncio's shutdown would print as unhandled.
    w = Recording(tmp_path)

    def full(*args: object) -> int:
        raise StorageError("could not write 2024-01.parquet: No space left on device")

    monkeypatch.setattr("dccd_cli.storage.writer.write_data_file", full)
    bg = BackgroundWriter(w)
    await bg.add(bars(D0, D0 + DAY_NS))
    w.gate.clear()
    task = asyncio.create_task(bg.close())
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.sleep(0.2)
    assert not task.done(), "the close was given up before the writer finished it"
    w.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert [name for name, _ in w.calls] == ["add", "close"]


async def test_a_close_cancelled_while_the_pieces_are_written_still_closes(
        tmp_path: Path) -> None:
    # Ctrl-C just after the last piece was handed: the series is complete, so it closes and
    # returns its stats, and the run reports it as finished.
    w = Recording(tmp_path)
    w.gate.clear()
    bg = BackgroundWriter(w)
    for piece in days(3):
        await bg.add(piece)
    task = asyncio.create_task(bg.close())
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.sleep(0.2)
    assert not task.done()
    w.gate.set()
    stats = await asyncio.wait_for(task, 10)
    assert stats.rows_added == 3 * 24
    assert [name for name, _ in w.calls] == ["add"] * 3 + ["close"]
    assert Ledger.load(OHLC.dir(tmp_path)).fetched == [(D0, D0 + 3 * DAY_NS)]


async def test_to_thread_to_end_returns_what_the_call_gave_through_a_cancellation() -> None:
    release = threading.Event()

    def slow() -> int:
        release.wait(10)
        return 42

    task = asyncio.create_task(to_thread_to_end(slow))
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.sleep(0.1)
    assert not task.done()
    release.set()
    assert await asyncio.wait_for(task, 10) == 42
