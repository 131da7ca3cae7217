"""Crash-safe file replacement, the per-series lock, and the disk-error boundary.

A file of the dataset is never written in place. It is written to a temporary name in
the same directory (same filesystem, so the rename is atomic), flushed and fsynced, then
``os.replace``-d over the old one, and the directory is fsynced so that the rename itself
survives a power cut. A crash at any point therefore leaves either the old file or the
new one. Temporary names start with ``.dccd-`` and end with ``.tmp``: dataset readers
skip dot-files, and ``*.parquet`` globs (DuckDB, Polars) do not match them either.

Every ``OSError`` from the disk is translated here into ``StorageError`` naming the path
and the cause (``raise ... from exc``): this module is the storage side of the error
boundary described in ``dccd_cli.errors``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from dccd_cli.errors import StorageError
from dccd_cli.storage.layout import LOCK_NAME, TEMP_PREFIX, TEMP_SUFFIX, is_temp_name

try:  # POSIX advisory locks; Windows has no fcntl (see series_lock).
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("dccd.storage")


def describe_os_error(exc: BaseException) -> str:
    """A short cause for a person: ``No space left on device`` rather than a repr."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def storage_error(action: str, path: Path, exc: BaseException) -> StorageError:
    """``StorageError("could not write /x/2024-01.parquet: No space left on device")``."""
    return StorageError(f"could not {action} {path}: {describe_os_error(exc)}")


def temp_path_for(path: Path) -> Path:
    """A fresh temporary name beside ``path``, unique per process and call."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f"{TEMP_PREFIX}{path.name}.{token}{TEMP_SUFFIX}")


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable. A no-op where directories cannot be opened."""
    if os.name == "nt":  # pragma: no cover - Windows cannot fsync a directory handle
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> int:
    """Replace ``path`` with what ``write(tmp_path)`` writes to a temporary path.

    ``write`` must create the file at the path it is given. Returns the new file's size.
    On any failure the temporary file is removed and ``path`` is left as it was; disk
    errors are raised as ``StorageError`` (path and cause), anything else as it came.
    """
    tmp = temp_path_for(path)
    try:
        write(tmp)
        # fsync through a descriptor of our own: ``write`` may have used a writer (pyarrow's)
        # that closes without syncing. O_RDWR because some systems refuse fsync on O_RDONLY.
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise storage_error("write", path, exc) from exc
        raise
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        # The new file is in place; only the durability of the rename is in doubt.
        raise storage_error("sync the directory of", path, exc) from exc
    return size


def atomic_write_bytes(path: Path, data: bytes) -> int:
    """``atomic_write`` for a small file held in memory (the coverage ledger)."""

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            fh.write(data)

    return atomic_write(path, write)


def ensure_dir(directory: Path) -> None:
    """Create a series directory (and parents); disk errors become ``StorageError``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error("create the directory", directory, exc) from exc


_PID_RE = re.compile(r"\.([0-9]+)-[0-9a-f]+" + re.escape(TEMP_SUFFIX) + "$")


def _owner_alive(name: str) -> bool:
    """Whether the process named in a temporary file's name is still running.

    Most temporaries live only inside one lock hold, but a day of trades is streamed to
    its temporary file across many; those of a live process are not stale. A pid reused
    by another process only keeps an orphan a while longer (readers skip it).
    """
    m = _PID_RE.search(name)
    if m is None:
        return False
    pid = int(m.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def clean_stale_temps(directory: Path) -> list[Path]:
    """Remove temporary files a killed run left in ``directory``; returns what was removed.

    Call only while holding ``series_lock(directory)``: every live writer of a series
    creates its temporaries under that lock, so any temporary seen under it is stale.
    """
    removed: list[Path] = []
    try:
        with os.scandir(directory) as it:
            names = [e.name for e in it if is_temp_name(e.name)]
    except FileNotFoundError:
        return removed
    except OSError as exc:
        raise storage_error("list", directory, exc) from exc
    for name in names:
        if _owner_alive(name):
            continue  # a live writer's file being streamed across lock holds
        stale = directory / name
        try:
            stale.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise storage_error("remove the stale temporary file", stale, exc) from exc
        log.info("removed stale temporary file %s", stale)
        removed.append(stale)
    return removed


@contextlib.contextmanager
def series_lock(directory: Path) -> Iterator[None]:
    """Hold the series' advisory lock (``_dccd.lock``) while reading-merging-writing.

    Two dccd processes may write one series at once (two overlapping downloads of
    the same symbol); each partition merge re-reads the file under this lock, so neither
    loses the other's rows. The lock file is never deleted: deleting it would let two
    processes lock two different inodes. Where locks are unsupported writes proceed
    unlocked: on Windows (no ``fcntl``) silently, on filesystems that refuse ``flock``
    (some network filesystems) with a warning.
    """
    ensure_dir(directory)
    lock_path = directory / LOCK_NAME
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise storage_error("open the lock file", lock_path, exc) from exc
    locked = False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                locked = True
            except OSError as exc:
                log.warning(
                    "cannot lock %s (%s); writing without a lock", lock_path, describe_os_error(exc)
                )
        yield
    finally:
        if locked and fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
