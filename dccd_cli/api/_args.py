"""The API's arguments as the run takes them: times as text, symbols and spans as lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from dccd_cli.errors import BadDateError, UsageError

#: A time as the API takes it: text as the CLI takes it (``2024-01-01``, ``-90d``,
#: ``origin``, ``now``), an aware ``datetime`` (a naive one is UTC) or a ``date`` (its
#: midnight UTC).
TimeArg = str | datetime | date


def time_text(value: TimeArg, what: str) -> str:
    """``value`` as the text the run parses: a datetime in ISO 8601 with its offset (UTC
    when naive), a date as ``YYYY-MM-DD``, text as it is."""
    if isinstance(value, datetime):  # before date: a datetime is a date too
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise BadDateError(f"{what} {value!r} is not a date; give text (2024-01-01, -90d, origin, now), "
                       "a datetime or a date", about=what)


def texts(value: str | Sequence[str] | None, what: str, example: str) -> list[str]:
    """One text or a sequence of texts as a list; anything else is a UsageError."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if isinstance(items, (bytes, bytearray)) or not isinstance(items, Sequence) or not all(
            isinstance(v, str) for v in items):
        raise UsageError(f"{what} {value!r} is not a text or a list of texts, e.g. {example}")
    return list(items)
