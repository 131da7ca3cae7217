"""Time in dccd: every instant is an ``int`` of nanoseconds since the Unix epoch, UTC.

This module parses what users type (dates, spans) and does bar arithmetic on spans,
including the calendar ones (weeks open on Monday 00:00 UTC, months on the 1st).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dccd_cli.errors import BadDateError, UnsupportedSpanError

NS = 1_000_000_000
MS = 1_000_000
MINUTE_NS = 60 * NS
HOUR_NS = 3600 * NS
DAY_NS = 86400 * NS
WEEK_NS = 7 * DAY_NS
# 1970-01-01 was a Thursday; the first Monday is 1970-01-05.
_MONDAY_OFFSET_NS = 4 * DAY_NS

_UNIT_NS = {"s": NS, "m": MINUTE_NS, "h": HOUR_NS, "d": DAY_NS, "w": WEEK_NS}
# "1mo" is accepted for a month too: it is how the dataset's span directories name months.
_SPAN_RE = re.compile(r"^([1-9][0-9]{0,3})(mo|[smhdwM])$")


def ceil_ms(ns: int) -> int:
    """Whole milliseconds at or after ``ns``: the first ms an exchange may be asked for
    without reaching before ``ns``."""
    return -(-ns // MS)


def ms_to_ns(ms: int | str) -> int:
    """Unix milliseconds (an int or a decimal string, as exchanges send them) -> ns."""
    return int(ms) * MS


def s_to_ns(s: int | str) -> int:
    """Whole Unix seconds (an int or a decimal string) -> ns."""
    return int(s) * NS


def ns_to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // NS, tz=UTC) + timedelta(microseconds=(ns % NS) // 1000)


def datetime_to_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000


def _fraction(ns: int) -> str:
    """The sub-second part, as few digit groups as the instant needs: '', .123, .123456,
    .123456789 (the nanoseconds themselves, not a float's rounding of them)."""
    frac = ns % NS
    if frac == 0:
        return ""
    if frac % MS == 0:
        return f".{frac // MS:03d}"
    if frac % 1000 == 0:
        return f".{frac // 1000:06d}"
    return f".{frac:09d}"


def format_ns(ns: int) -> str:
    """An instant for people: ISO 8601 in UTC, as short as it allows — ``2024-01-01``,
    ``2024-01-01T10:00Z``, ``2024-01-01T10:00:05Z``; sub-second digits only when the instant
    has them (``...T10:00:05.250Z``)."""
    dt = ns_to_datetime(ns)
    if ns % DAY_NS == 0:
        return dt.strftime("%Y-%m-%d")
    if ns % MINUTE_NS == 0:
        return dt.strftime("%Y-%m-%dT%H:%MZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(ns) + "Z"


def json_time(ns: int) -> str:
    """An instant in JSON output: always ISO 8601 UTC to the second with ``Z``
    (``2024-01-01T00:00:00Z``), plus sub-second digits when it has them
    (``2024-01-01T00:00:00.250Z``). One format in every command's ``--json``, so that a
    consumer parses one shape (Python's ``datetime.fromisoformat`` reads it from 3.11)."""
    return ns_to_datetime(ns).strftime("%Y-%m-%dT%H:%M:%S") + _fraction(ns) + "Z"


def now_ns() -> int:
    return datetime_to_ns(datetime.now(tz=UTC))


_DATE_FORMS = "YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM], a Unix time in seconds or ms, 'now', or a relative time like -90d / -12h"
_REL_RE = re.compile(r"^-([0-9]{1,6})([smhdw])$")


# Every form of date is held to the same range: a relative date or a Unix time far in the
# past would otherwise reach the exchange (or datetime arithmetic) as nonsense.
_FIRST_NS = 946_684_800 * NS  # 2000-01-01
_LAST_NS = 7_289_654_400 * NS  # 2201-01-01


def _in_range(ns: int, text: str, what: str, about: str | None) -> int:
    if not _FIRST_NS <= ns < _LAST_NS:
        raise BadDateError(f"{what} {text!r} is out of range; dates from 2000 to 2200 are accepted",
                           about=about)
    return ns


def reads_clock(text: str) -> bool:
    """Whether a date as typed means something only against a clock (``now``, ``-90d``).
    dccd reads such dates against the exchange's clock, never the machine's."""
    raw = text.strip()
    return raw == "now" or _REL_RE.match(raw) is not None


def as_typed(name: str, text: str) -> str:
    """A date as the user gave it, for a message: ``--end 2024-03-01`` for an option,
    ``end = "2024-03-01"`` for a key of a sync file."""
    return f"{name} {text}" if name.startswith("-") else f'{name} = "{text}"'


def parse_time(text: str, *, now: int, what: str = "date", about: str | None = None) -> int:
    """Parse a user's date into ns. Naive times are UTC; ``now`` is the clock that ``now``
    and relative dates are read against. ``what`` names the date in a message (``--start``)
    and ``about`` goes with the BadDateError ("start" or "end").

    Accepts ISO dates and datetimes, Unix seconds or milliseconds, ``now`` and ``-90d``.
    ``origin`` is not handled here: it means "the exchange's first data" and is resolved by
    the job, which knows the exchange.
    """
    raw = text.strip()
    if raw == "now":
        return now
    m = _REL_RE.match(raw)
    if m:
        return _in_range(now - int(m.group(1)) * _UNIT_NS[m.group(2)], text, what, about)
    if re.fullmatch(r"[0-9]{9,13}", raw):
        value = int(raw)
        # 10 digits or fewer: seconds (until the year 2286); 13: milliseconds.
        return _in_range(value * NS if len(raw) <= 10 else value * MS, text, what, about)
    iso = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        raise BadDateError(f"{what} {text!r} is not a date; use {_DATE_FORMS}", about=about) from None
    if dt.year < 2000 or dt.year > 2200:
        raise BadDateError(f"{what} {text!r} is out of range; dates from 2000 to 2200 are accepted",
                           about=about)
    return datetime_to_ns(dt)


@dataclass(frozen=True)
class Span:
    """A bar length such as ``1m``, ``4h``, ``1d``, ``1w`` or ``1M`` (calendar month; ``1mo``
    is read as ``1M``)."""

    code: str
    count: int
    unit: str  # one of s m h d w M

    @classmethod
    def parse(cls, code: str) -> Span:
        m = _SPAN_RE.match(code.strip())
        if not m:
            raise UnsupportedSpanError(
                f"span {code!r} is not a span; write a count and a unit: s, m, h, d, w or M (month), e.g. 1m, 4h, 1d, 1M"
            )
        if m.group(2) == "mo":
            return cls(code=f"{m.group(1)}M", count=int(m.group(1)), unit="M")
        return cls(code=code.strip(), count=int(m.group(1)), unit=m.group(2))

    @property
    def fixed_ns(self) -> int | None:
        """The length in ns, or None for calendar months (their length varies)."""
        if self.unit == "M":
            return None
        return self.count * _UNIT_NS[self.unit]

    @property
    def nominal_ns(self) -> int:
        """Length for estimates; a month counts as 30 days."""
        return self.fixed_ns if self.fixed_ns is not None else self.count * 30 * DAY_NS

    def floor(self, ns: int) -> int:
        """Open time of the bar that contains ``ns``."""
        if self.unit == "M":
            dt = ns_to_datetime(ns)
            months = (dt.year * 12 + dt.month - 1) // self.count * self.count
            return datetime_to_ns(datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC))
        step = self.fixed_ns
        assert step is not None
        if self.unit == "w":
            return (ns - _MONDAY_OFFSET_NS) // step * step + _MONDAY_OFFSET_NS
        return ns // step * step

    def ceil(self, ns: int) -> int:
        """Open time of the first bar that opens at or after ``ns``."""
        f = self.floor(ns)
        return f if f == ns else self.add(f, 1)

    def add(self, ns: int, bars: int) -> int:
        """``ns`` moved by a whole number of bars (``ns`` should be a bar open)."""
        if self.unit == "M":
            dt = ns_to_datetime(ns)
            months = dt.year * 12 + dt.month - 1 + bars * self.count
            return datetime_to_ns(datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC))
        step = self.fixed_ns
        assert step is not None
        return ns + bars * step

    def bars_between(self, start_ns: int, end_ns: int) -> int:
        """How many bars open in ``[start_ns, end_ns)``."""
        first = self.ceil(start_ns)
        if first >= end_ns:
            return 0
        if self.unit != "M":
            step = self.fixed_ns
            assert step is not None
            return (end_ns - 1 - first) // step + 1
        n = 0
        t = first
        while t < end_ns:
            n += 1
            t = self.add(t, 1)
        return n

    def __str__(self) -> str:
        return self.code
