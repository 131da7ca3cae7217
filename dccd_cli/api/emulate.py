"""The offline emulator in-process, for ``emulate=True`` and the CLI's ``--emulate``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dccd_cli.errors import UsageError


@asynccontextmanager
async def emulated(emulate: bool, venue: str | None = None) -> AsyncIterator[str | None]:
    """While the block runs, an emulator of every exchange on a free loopback port (real
    time, default markets): yields its URL for ``venue`` (``http://127.0.0.1:PORT/binance``),
    or its root for every venue when ``venue`` is None; yields None when not ``emulate``."""
    if not emulate:
        yield None
        return
    from dccd_cli.emulator import EmulatorServer, EmulatorSettings

    async with EmulatorServer(EmulatorSettings()) as server:
        if venue is None:
            yield server.base_url
            return
        try:
            url = server.venue_url(venue.lower())
        except KeyError:
            raise UsageError(f"the emulator has no {venue.lower()!r}; it emulates "
                             f"{', '.join(sorted(server.app.venues))}") from None
        yield url
