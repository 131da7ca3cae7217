"""SIGTERM stops a run the way Ctrl-C does.

``timeout``, systemd, Kubernetes and CI cancellation stop a process with SIGTERM, whose
default action kills it on the spot: temporary files stay behind, and the series being
written lose what their writers had not committed yet. dccd instead turns SIGTERM into
``Terminated`` — a ``KeyboardInterrupt``, so every ``except KeyboardInterrupt`` and
``except BaseException`` cleanup (the writers' abort, the locks' release, the emulator's
shutdown) runs for it as for Ctrl-C — and the command line ends with exit 143 (128 +
SIGTERM) and one line.

While ``run`` runs a coroutine, SIGTERM cancels its main task, as asyncio does for SIGINT:
the cancellation unwinds every task and its ``finally`` blocks in order, and ``run`` then
raises ``Terminated``. Outside it (validation, rendering, ``dccd inventory``) SIGTERM
raises ``Terminated`` where the program is, as SIGINT raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, what a shell reports for a SIGTERM death


class Terminated(KeyboardInterrupt):
    """The process was asked to stop with SIGTERM (exit 143)."""


_main: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
_received = False


def received() -> bool:
    """Whether a SIGTERM came (a KeyboardInterrupt seen after it is that SIGTERM)."""
    return _received


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = True
    if _main is not None and not _main[1].done():
        loop, task = _main
        loop.call_soon_threadsafe(task.cancel)  # in the loop's own time, not mid-step
        return
    raise Terminated


def install() -> None:
    """Handle SIGTERM as described above (the command line calls this once, first)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, and SIGTERM cancels it cleanly, then raises ``Terminated``."""

    async def main() -> T:
        global _main
        task = asyncio.current_task()
        assert task is not None
        _main = (asyncio.get_running_loop(), task)
        try:
            return await coro
        finally:
            _main = None

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if _received:
            raise Terminated from None
        raise
