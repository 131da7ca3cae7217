"""Clients shared by every job of a command: one per key (exchange, base URL) and event
loop, reference-counted, closed when the last user gives it back.

Per event loop: connections and asyncio primitives belong to the loop that made them, so a
second ``asyncio.run`` in the same process gets fresh clients (and, through
``ratelimit.bucket_for``, fresh buckets).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

__all__ = ["SharedClients"]


class _Closable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=_Closable)


@dataclass(slots=True)
class _Entry(Generic[C]):
    table: dict[Hashable, C]  # where the client is registered: its loop's table
    key: Hashable
    refs: int = field(default=0)


class SharedClients(Generic[C]):
    """A registry of shared clients."""

    def __init__(self) -> None:
        self._tables: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, C]] = (
            weakref.WeakKeyDictionary())
        self._entries: weakref.WeakKeyDictionary[C, _Entry[C]] = weakref.WeakKeyDictionary()

    def acquire(self, key: Hashable, make: Callable[[], C]) -> C:
        """The client of ``key`` in the running loop, made by ``make`` on first use; give it
        back with ``release``."""
        table = self._tables.setdefault(asyncio.get_running_loop(), {})
        client = table.get(key)
        if client is None:
            client = table[key] = make()
            self._entries[client] = _Entry(table, key)
        self._entries[client].refs += 1
        return client

    def refs(self, client: C) -> int:
        """How many users hold ``client`` (0 for a client that is not shared)."""
        entry = self._entries.get(client)
        return 0 if entry is None else entry.refs

    async def release(self, client: C) -> None:
        """Give back one reference; the last one unregisters the client and closes it."""
        entry = self._entries.get(client)
        if entry is None:  # never shared: the caller owns it
            await client.aclose()
            return
        entry.refs -= 1
        if entry.refs > 0:
            return
        if entry.table.get(entry.key) is client:
            del entry.table[entry.key]  # before awaiting: a new acquirer now gets a fresh client
        del self._entries[client]
        await client.aclose()
