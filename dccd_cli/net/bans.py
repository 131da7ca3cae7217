"""Bans remembered across runs: an exchange that banned this IP is not asked again until
the ban ends.

A ban (HTTP 418, or an exchange's own ban reply: see the adapters' ``check``) stops the
run that meets it (``dccd_cli.net.client``); without a record the next run — the next cron
tick — would send its requests straight into the ban, and real exchanges lengthen a ban
that is hit again (Binance: from 2 minutes up to 3 days). So ``dccd_cli.net.client`` records
each ban here, and every client reads the record before its first request: while the ban
lasts nothing is sent, and the run says until when.

One small JSON file per exchange and base URL — an emulator's ban never blocks the real
exchange — in the user cache directory (``$DCCD_CACHE_DIR`` overrides it), beside the
market lists: ``bans/binance-<hash of the base URL>.json`` holding ``exchange``,
``base_url``, ``until`` (UTC), ``until_s`` (Unix seconds), ``known`` and ``message``.
Deleting the file forgets the ban. A ban whose reply names no end is remembered for
``UNKNOWN_BAN_S``; an expired record is removed when it is next read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

from dccd_cli.cachedir import cache_root
from dccd_cli.errors import StorageError
from dccd_cli.storage.atomic import atomic_write_bytes, ensure_dir
from dccd_cli.timeutil import NS, format_ns

__all__ = ["UNKNOWN_BAN_S", "Ban", "active", "ban_file", "remember"]

log = logging.getLogger("dccd.bans")

#: How long a ban that names no end is remembered: ten minutes, Bybit's shortest IP block
#: (Binance's first ban is two). Shorter would send the next run into a ban that most
#: likely still holds; longer would keep a run from an exchange that has long forgiven us.
#: Should the ban outlast it, the next run meets it with a single request and remembers
#: it again.
UNKNOWN_BAN_S = 600.0


@dataclass(frozen=True)
class Ban:
    """A ban in force: who banned us, where, until when (Unix s, UTC), and what was said."""

    exchange: str
    base_url: str
    until_s: float
    message: str
    known: bool = True  # the exchange said when the ban ends (else: UNKNOWN_BAN_S)

    @property
    def until(self) -> str:
        """The end, as ``2024-03-01T00:15:00Z`` (rounded up to the second)."""
        return format_ns(math.ceil(self.until_s) * NS)

    def refusal(self) -> str:
        """What a later run says instead of asking: one line, with until when."""
        if self.known:
            what = f"{self.exchange} has banned this IP until {self.until}"
        else:
            what = (f"{self.exchange} has banned this IP for a time it did not say; "
                    f"dccd asks it nothing until {self.until}")
        return f"{what} (remembered from an earlier run); nothing was requested"


def ban_file(exchange: str, base_url: str) -> Path:
    """Where the ban of ``exchange`` at ``base_url`` is recorded."""
    digest = hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:12]
    return cache_root() / "bans" / f"{exchange}-{digest}.json"


def remember(exchange: str, base_url: str, retry_after: float | None, message: str,
             *, now: float | None = None) -> Ban:
    """Record a ban that lasts ``retry_after`` seconds from ``now`` (None: not said).

    A record that cannot be written is logged, not raised: the run that met the ban stops
    anyway, and only the next run's protection is lost.
    """
    now = time.time() if now is None else now
    lasts = UNKNOWN_BAN_S if retry_after is None else retry_after
    ban = Ban(exchange, base_url.rstrip("/"), now + lasts, message, retry_after is not None)
    path = ban_file(exchange, base_url)
    doc = {"exchange": ban.exchange, "base_url": ban.base_url, "until": ban.until,
           "until_s": ban.until_s, "known": ban.known, "message": ban.message}
    try:
        ensure_dir(path.parent)
        atomic_write_bytes(path, json.dumps(doc, indent=1).encode())
    except StorageError as exc:
        log.warning("%s: could not remember the ban for the next run: %s", exchange, exc)
    return ban


def active(exchange: str, base_url: str, *, now: float | None = None) -> Ban | None:
    """The recorded ban of ``exchange`` at ``base_url`` if it still holds, else None.

    An expired record is removed; an unreadable one (a torn copy, a hand edit) is ignored,
    as if no ban had been recorded: a real ban still in force answers the next request.
    """
    path = ban_file(exchange, base_url)
    try:
        doc = json.loads(path.read_text())
        ban = Ban(str(doc["exchange"]), str(doc["base_url"]), float(doc["until_s"]),
                  str(doc["message"]), bool(doc.get("known", True)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: ignoring an unreadable ban record %s: %s", exchange, path, exc)
        return None
    if ban.until_s > (time.time() if now is None else now):
        return ban
    try:
        path.unlink()
    except OSError:
        pass  # another run removed it first, or the cache is read-only: either way, expired
    return None
