"""stdout and stderr that cannot stop a download.

A reader that goes away — ``dccd ... 2>&1 | head -1``, ``dccd exchanges | head -1``, a log
shipper that dies, a stream closed with ``2>&-`` — must not end a run: its data is worth
more than its progress lines, and its exit code says what happened to the data, not to the
pipe. So dccd's own ``sys.stdout`` and ``sys.stderr`` swallow write errors: after the first
one the stream is broken for good and later writes go nowhere.

Python ignores SIGPIPE, so a closed pipe is a ``BrokenPipeError`` on write or flush; as
Python's documentation advises for it, the descriptor is then pointed at ``/dev/null``, so
that the interpreter's own flush at exit finds nothing to fail on (no "Exception ignored"
message, no traceback).
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO, cast


class TolerantStream:
    """A text stream whose write and flush errors end its output, never the program."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self.broken = stream is None  # a descriptor closed before start: sys.std* is None

    def write(self, text: str) -> int:
        if self._stream is not None and not self.broken:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):  # EPIPE, EIO, ENOSPC; ValueError: closed file
                self._break()
        return len(text)

    def flush(self) -> None:
        if self._stream is not None and not self.broken:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._break()

    def isatty(self) -> bool:
        try:
            return self._stream is not None and not self.broken and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def _break(self) -> None:
        self.broken = True
        try:
            assert self._stream is not None
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self._stream.fileno())
            finally:
                os.close(null)
        except (OSError, ValueError, AssertionError):
            pass  # no descriptor to redirect: the wrapped stream is never written again

    def __getattr__(self, name: str) -> Any:
        # encoding, fileno, buffer, ...: as the wrapped stream says
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def guard_std_streams() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` tolerant (once; for the command line)."""
    if not isinstance(sys.stdout, TolerantStream):
        sys.stdout = cast(TextIO, TolerantStream(sys.stdout))
    if not isinstance(sys.stderr, TolerantStream):
        sys.stderr = cast(TextIO, TolerantStream(sys.stderr))
