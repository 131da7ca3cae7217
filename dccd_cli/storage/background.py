"""A ``SeriesWriter`` driven from async code, its disk work on a thread of its own.

The writer encodes Parquet, compresses, merges, fsyncs and renames: on the event loop, each
of those would stall every request and timer of the run. ``BackgroundWriter`` hands the
pieces, in order, to one worker thread per series and lets the download go on meanwhile.

At most ``QUEUE_PIECES`` pieces wait for the thread: past that, ``add`` waits for the
writer to catch up, so a slow disk slows the download down instead of filling memory.

Errors are the writer's own, raised to the caller as the writer raises them: a failed
``add`` (a full disk: ``StorageError``) is raised by the next call, and the pieces queued
after it are not written, as they would not have been had it been raised at once. Then the
caller calls ``abort()``, as after any failure; ``close()`` does that itself when it is
the call that finds the failure. ``abort()`` writes and records every piece received
before it.

``close()`` (its wait for the pieces queued included) and ``abort()`` are awaited to their
end even through a cancellation (Ctrl-C, SIGTERM), so the files are durable and the ledger
updated before the run's locks are released. If the call succeeds it returns as usual, so a series that finishes as the run
is stopped is reported as finished; if it fails the task ends cancelled, as a cancelled
task does (the error goes to the debug log).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from dccd_cli.pieces import Chunk, FailedRange
from dccd_cli.storage.writer import SeriesWriter, WriteStats

T = TypeVar("T")

log = logging.getLogger("dccd.storage")

# Pieces handed to the thread and not yet written (each one page, or the pages of one
# paging window): enough to keep the thread busy while the next pages arrive.
QUEUE_PIECES = 16


class BackgroundWriter:
    """Run ``writer``'s methods, in the order called, on a worker thread of its own.

    The same surface as ``SeriesWriter`` (``add``, ``mark_provisional``, ``close``,
    ``abort``), to be awaited. One task at a time uses it, as it would the writer.
    """

    def __init__(self, writer: SeriesWriter, *, queue_pieces: int = QUEUE_PIECES) -> None:
        if queue_pieces < 1:
            raise ValueError(f"queue_pieces must be at least 1, not {queue_pieces}")
        self.writer = writer
        self._limit = queue_pieces
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dccd-writer")
        self._queued: deque[asyncio.Future[object]] = deque()  # submitted, in order
        self._failure: BaseException | None = None  # of a call on the thread; read there only
        self._ended = False

    async def add(self, piece: Chunk | FailedRange) -> None:
        """Hand the next piece to the writer (see ``SeriesWriter.add``); waits while
        ``QUEUE_PIECES`` pieces are already queued. Raises the error of an earlier piece."""
        self._check_usable()
        self._queued.append(self._submit(self.writer.add, piece))
        await self._settle(self._limit)

    async def mark_provisional(self, start_ns: int, end_ns: int) -> None:
        """``SeriesWriter.mark_provisional``, after the pieces handed so far."""
        self._check_usable()
        self._queued.append(self._submit(self.writer.mark_provisional, start_ns, end_ns))
        await self._settle(self._limit)

    async def close(self) -> WriteStats:
        """Write every piece handed, close the writer (``SeriesWriter.close``), return its
        stats. If an earlier piece failed, the writer is aborted and that error raised."""
        self._check_usable()
        try:
            # To the end even through a cancellation: every piece is in, and the series
            # finishes as a close does (a stopped run reports it as finished).
            while self._queued:
                await _through_cancellation(self._queued[0])
                self._queued.popleft()
        except BaseException:
            await self.abort()
            raise
        self._ended = True
        try:
            # Every call before it succeeded (the loop above raises otherwise): no guard.
            return await _through_cancellation(
                asyncio.wrap_future(self._pool.submit(self.writer.close)))
        finally:
            self._pool.shutdown(wait=False)

    async def abort(self) -> None:
        """Write and record what was received, after every piece handed so far
        (``SeriesWriter.abort``). Never raises for a disk error; a second call, or one after
        ``close``, does nothing."""
        if self._ended:
            return
        self._ended = True
        queued, self._queued = list(self._queued), deque()
        done = self._pool.submit(self.writer.abort)  # runs even after a failed piece
        self._pool.shutdown(wait=False)
        try:
            await _through_cancellation(asyncio.wrap_future(done))
        finally:
            for fut in queued:  # their errors were raised already, or lead here
                if fut.done() and not fut.cancelled():
                    fut.exception()

    def _check_usable(self) -> None:
        if self._ended:
            raise RuntimeError(f"the writer of {self.writer.key} was closed or aborted")

    def _submit(self, call: Callable[..., object], *args: Any) -> asyncio.Future[object]:
        return asyncio.wrap_future(self._pool.submit(self._guarded, call, *args))

    def _guarded(self, call: Callable[..., object], *args: Any) -> object:
        """On the thread: ``call``, unless an earlier call failed (its error is the one
        raised to the caller, who then aborts)."""
        if self._failure is not None:
            return None
        try:
            return call(*args)
        except BaseException as exc:
            self._failure = exc
            raise

    async def _settle(self, keep: int) -> None:
        """Wait until at most ``keep`` calls are queued, and raise the first failure among
        those done. A cancelled wait leaves the calls queued: ``abort`` writes them."""
        while self._queued and (len(self._queued) > keep or self._queued[0].done()):
            await asyncio.shield(self._queued[0])
            self._queued.popleft()


async def to_thread_to_end(call: Callable[..., T], *args: Any) -> T:
    """``asyncio.to_thread(call, *args)``, awaited to the call's end even through a
    cancellation, like the writer's last calls (what a cancellation then does: see
    ``BackgroundWriter``)."""
    return await _through_cancellation(asyncio.ensure_future(asyncio.to_thread(call, *args)))


async def _through_cancellation(fut: asyncio.Future[T]) -> T:
    """Await ``fut`` to its end even if the awaiting task is cancelled meanwhile (the
    writer's last writes must land before the run's locks go).

    If the task was cancelled meanwhile, a call that succeeded returns all the same (the
    work is done: a series that finishes as the run is stopped is reported as finished),
    and one that failed ends the task cancelled: the run is being stopped, and a disk
    error raised instead would be reported by asyncio's shutdown as unhandled."""
    cancelled = False
    while not fut.done():
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            cancelled = True
        except BaseException:
            break  # fut failed: raised below, unless the task was cancelled
    if cancelled and (fut.cancelled() or fut.exception() is not None):
        if not fut.cancelled():
            log.debug("stopped while the writer failed: %s", fut.exception())
        raise asyncio.CancelledError
    return fut.result()
