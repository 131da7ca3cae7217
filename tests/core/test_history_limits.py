"""Each exchange's history limit has one source, the adapter's Capability: the README's
table, `dccd exchanges` (text and --json) and the errors of a run all say the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dccd_testing import run_cli

from dccd_cli.errors import UnsupportedRangeError
from dccd_cli.exchange.adapter import Capability
from dccd_cli.exchange.registry import adapters
from dccd_cli.run.bounds import limit_history
from dccd_cli.run.results import SeriesResult
from dccd_cli.timeutil import HOUR_NS, MS, Span, parse_time

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_history() -> dict[str, str]:
    """exchange -> the README table's "history over REST" cell."""
    text = README.read_text()
    table = text[text.index("## Supported exchanges"):].split("\n\n")[1]
    header, _, *rows = table.splitlines()
    column = [c.strip() for c in header.split("|")].index("history over REST")
    found = {}
    for row in rows:
        cells = [c.strip() for c in row.split("|")]
        found[cells[1].split()[0]] = cells[column]
    return found


def test_the_readme_table_says_what_the_adapters_declare() -> None:
    declared = {name: cls.history_summary() for name, cls in adapters().items()}
    assert readme_history() == declared
    assert declared["kraken"] == "OHLC the last 718 finished bars; trades full"
    assert declared["bitstamp"] == "OHLC full; trades the last 23 hours"
    assert declared["okx"] == "OHLC full; trades the last 89 days"


def test_dccd_exchanges_says_the_same() -> None:
    r = run_cli("exchanges", "--json")
    assert r.code == 0, r.stderr
    described = {d["name"]: d for d in json.loads(r.stdout)}
    assert {n: d["history"] for n, d in described.items()} == readme_history()
    kraken = described["kraken"]["ohlc"]
    assert (kraken["recent_bars"], kraken["history_text"]) == (718, "the last 718 finished bars")
    assert described["bitstamp"]["trades"]["recent_seconds"] == 23 * 3600
    text = run_cli("exchanges").stdout
    for phrase in ("OHLC the last 718 finished bars", "trades the last 23 hours", "trades the last 89 days"):
        assert phrase in text


@pytest.mark.parametrize(("exchange", "kind", "span"), [("kraken", "ohlc", "1h"),
                                                        ("bitstamp", "trades", None),
                                                        ("okx", "trades", None)])
def test_errors_and_notes_say_it_too(exchange: str, kind: str, span: str | None) -> None:
    cap = adapters()[exchange].capability(kind)
    assert isinstance(cap, Capability)
    parsed = Span.parse(span) if span else None
    now = parse_time("2024-03-01T00:30:12.345Z", now=0)
    series = SeriesResult(exchange, "BTC-USD", "x", kind, span, parse_time("2023-01-01", now=0), now)
    earliest = limit_history(cap, parsed, parse_time("2023-01-01", now=0), now, series)
    assert earliest == cap.earliest_ns(parsed, now)
    assert earliest % (1000 * MS) == 0  # whole seconds: no microsecond noise in what is said
    (note,) = series.notes
    assert f"for {cap.history_text} only" in note and ".345" not in note
    if parsed is not None:  # 718 finished bars before the forming one
        assert parsed.bars_between(earliest, parsed.floor(now)) == cap.recent_bars == 718
    series.end_ns = earliest - HOUR_NS
    with pytest.raises(UnsupportedRangeError, match=f"for {cap.history_text} only, from"):
        limit_history(cap, parsed, parse_time("2023-01-01", now=0), now, series)
