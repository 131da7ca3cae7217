from datetime import UTC, datetime

import pytest

from dccd_cli.errors import BadDateError, UnsupportedSpanError
from dccd_cli.timeutil import (
    DAY_NS,
    HOUR_NS,
    MS,
    NS,
    Span,
    datetime_to_ns,
    format_ns,
    json_time,
    parse_time,
)

NOW = datetime_to_ns(datetime(2024, 6, 15, 12, 30, tzinfo=UTC))


def ns(*args: int) -> int:
    return datetime_to_ns(datetime(*args, tzinfo=UTC))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2024-01-01", ns(2024, 1, 1)),
        ("2024-01-01T10:00", ns(2024, 1, 1, 10)),
        ("2024-01-01T10:00:05Z", ns(2024, 1, 1, 10, 0, 5)),
        ("2024-01-01T12:00+02:00", ns(2024, 1, 1, 10)),
        ("1704067200", ns(2024, 1, 1)),
        ("1704067200000", ns(2024, 1, 1)),
        ("now", NOW),
        ("-1d", NOW - DAY_NS),
        ("-12h", NOW - 12 * HOUR_NS),
    ],
)
def test_parse_time_accepts(text: str, expected: int) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "2024/01/01", "", "1999-01-01", "-5y", "12"])
def test_parse_time_rejects_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(BadDateError, match="YYYY-MM-DD|out of range"):
        parse_time(text, now=NOW)


def test_span_floor_and_add_fixed() -> None:
    h = Span.parse("4h")
    t = ns(2024, 1, 1, 5, 17)
    assert h.floor(t) == ns(2024, 1, 1, 4)
    assert h.ceil(t) == ns(2024, 1, 1, 8)
    assert h.add(ns(2024, 1, 1), 3) == ns(2024, 1, 1, 12)
    assert h.bars_between(ns(2024, 1, 1), ns(2024, 1, 2)) == 6


def test_week_opens_on_monday() -> None:
    w = Span.parse("1w")
    # 2024-01-03 is a Wednesday; its week opened on Monday 2024-01-01
    assert w.floor(ns(2024, 1, 3, 15)) == ns(2024, 1, 1)
    assert w.add(ns(2024, 1, 1), 1) == ns(2024, 1, 8)


def test_calendar_months() -> None:
    m = Span.parse("1M")
    assert m.floor(ns(2024, 2, 29, 23)) == ns(2024, 2, 1)
    assert m.add(ns(2024, 11, 1), 3) == ns(2025, 2, 1)
    assert m.bars_between(ns(2024, 1, 1), ns(2025, 1, 1)) == 12
    assert m.ceil(ns(2024, 1, 2)) == ns(2024, 2, 1)


@pytest.mark.parametrize("code", ["0m", "1x", "h", "1.5h", "10000m", "../1h"])
def test_span_rejects(code: str) -> None:
    with pytest.raises(UnsupportedSpanError):
        Span.parse(code)


def test_format_ns_is_short_and_exact() -> None:
    assert format_ns(ns(2024, 1, 1)) == "2024-01-01"
    assert format_ns(ns(2024, 1, 1, 10, 30)) == "2024-01-01T10:30Z"
    assert format_ns(ns(2024, 1, 1) + 5 * NS) == "2024-01-01T00:00:05Z"
    # Sub-second digits only as many as the instant has, and the nanoseconds exact.
    assert format_ns(ns(2024, 1, 1) + 5 * NS + 250 * MS) == "2024-01-01T00:00:05.250Z"
    assert format_ns(ns(2024, 1, 1) + 5 * NS + 250_001_000) == "2024-01-01T00:00:05.250001Z"
    assert format_ns(ns(2024, 1, 1) + 5 * NS + 7) == "2024-01-01T00:00:05.000000007Z"


def test_json_time_is_one_format_whatever_the_instant() -> None:
    assert json_time(ns(2024, 1, 1)) == "2024-01-01T00:00:00Z"
    assert json_time(ns(2024, 1, 1, 10, 30)) == "2024-01-01T10:30:00Z"
    assert json_time(ns(2024, 1, 1) + 5 * NS + 250 * MS) == "2024-01-01T00:00:05.250Z"
    assert json_time(ns(2024, 1, 1) + 7) == "2024-01-01T00:00:00.000000007Z"
    for t in (ns(2024, 1, 1), ns(2024, 2, 29, 23, 59) + 123_456_789):
        assert parse_time(json_time(t), now=0) // 1000 == t // 1000  # reads back (datetime: µs)
