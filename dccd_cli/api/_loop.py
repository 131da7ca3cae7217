"""The blocking forms of the API, from a plain script and from inside a running loop.

``download()``, ``sync()`` and ``markets()`` are their ``*_async`` coroutines run to the
end. In a plain script (no event loop in this thread) that is ``asyncio.run``. Inside a
running loop — a Jupyter cell, an async orchestrator's task — ``asyncio.run`` refuses, and
the caller's loop cannot be re-entered; so the coroutine runs on a private thread with a
loop of its own, and the caller's thread waits for it (its loop is blocked meanwhile, as
any blocking call blocks it: from async code, await the ``*_async`` form instead).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``make()`` returns to its end and return its result (or raise
    its exception), whether or not an event loop is running in this thread."""
    if not _loop_running():
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = asyncio.run(make())
        except BaseException as exc:  # handed to the caller's thread, raised there
            box["error"] = exc

    thread = threading.Thread(target=work, name="dccd-api", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result
