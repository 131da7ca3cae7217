"""The dataset lock: one ``dccd sync`` writes a dataset at a time.

Each series already has its own lock (``storage.atomic.series_lock``) that keeps a file
merge whole; this one is coarser and for people: two overlapping cron runs of one sync
file would otherwise both fetch the same ranges and merge them twice. The second run
waits for the first (``--wait``) or exits at once with exit code 75 and a message naming
the holder (``--no-wait``).

The lock is ``OUT/_dccd-dataset.lock`` under ``fcntl.flock``: the kernel drops it when its
holder dies, however it dies, so a killed run never leaves a stale lock behind. The
holder writes who it is into the file (pid, host, since, command) for the message of
whoever finds it locked, and empties it on release. The file itself is never deleted:
deleting it would let two processes lock two different inodes. Its leading ``_`` keeps it
out of dataset readers' sight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from dccd_cli.errors import DatasetLockedError
from dccd_cli.storage.atomic import ensure_dir, storage_error

try:  # POSIX advisory locks; Windows has no fcntl (the lock is then a no-op, said once).
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "_dccd-dataset.lock"
log = logging.getLogger("dccd.lock")


@dataclass(frozen=True)
class Holder:
    """Who holds a dataset lock, as it wrote itself into the lock file."""

    pid: int | None
    host: str
    since: str
    command: str

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "another process"
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        since = f" since {self.since}" if self.since else ""
        what = f" ({self.command})" if self.command else ""
        return f"{who}{where}{since}{what}"


def read_holder(root: Path) -> Holder:
    """What the lock file of ``root`` says about its holder (fields empty if unknown)."""
    try:
        doc = json.loads((Path(root) / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    pid = doc.get("pid")
    return Holder(pid if isinstance(pid, int) else None, str(doc.get("host", "")),
                  str(doc.get("since", "")), str(doc.get("command", "")))


def holder_if_locked(root: Path) -> Holder | None:
    """The holder of ``root``'s lock if someone holds it now, else None. Takes nothing."""
    path = Path(root) / LOCK_FILE
    if fcntl is None or not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_holder(root)
    except OSError:
        return None
    finally:
        os.close(fd)  # closing drops the shared lock if it was taken
    return None


class DatasetLock:
    """``async with DatasetLock(root, wait=..., timeout=...)``: hold ``root``'s lock.

    Raises ``DatasetLockedError`` (exit 75) when it is held elsewhere and ``wait`` is false,
    or still held after ``timeout`` seconds; ``notify`` hears once that we are waiting.
    """

    def __init__(
        self,
        root: Path,
        *,
        wait: bool,
        timeout: float = 3600.0,
        poll_s: float = 0.2,
        notify: Callable[[str], None] | None = None,
        command: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self.wait = wait
        self.timeout = timeout
        self.poll_s = poll_s
        self.notify = notify
        self.command = command if command is not None else " ".join(["dccd", *sys.argv[1:]])
        self._fd: int | None = None

    async def acquire(self) -> None:
        ensure_dir(self.root)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error("open the lock file", self.path, exc) from exc
        if fcntl is None:  # pragma: no cover - Windows
            log.warning("no file locks on this platform: overlapping syncs of %s are not kept apart", self.root)
            self._fd = fd
            return
        deadline = time.monotonic() + self.timeout
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = read_holder(self.root).describe()
                    if not self.wait:
                        raise DatasetLockedError(
                            f"the dataset {self.root} is locked by {holder}, another dccd sync "
                            "writing it; nothing was done. Pass --wait to wait for it"
                        ) from None
                    if time.monotonic() >= deadline:
                        raise DatasetLockedError(
                            f"the dataset {self.root} is still locked by {holder} after "
                            f"{self.timeout:g} s of waiting; nothing was done"
                        ) from None
                    if not told and self.notify is not None:
                        self.notify(f"waiting for the dataset lock of {self.root}, held by {holder}")
                        told = True
                    await asyncio.sleep(self.poll_s)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._write_holder(fd)

    def _write_holder(self, fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": self.command[:300],
        }
        with contextlib.suppress(OSError):  # the note is for people; the flock is the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # before unlocking: the next reader never sees us as holder
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    async def __aenter__(self) -> DatasetLock:
        await self.acquire()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
