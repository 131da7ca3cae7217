"""A series' range by the exchange's clock: what ``[START, END)`` as the user wrote it
means for one series of one exchange, in ns.

The exchange's clock, not this machine's, decides: it reads relative dates and ``now``,
and says which bar is still forming (not stored unless asked). For OHLC a range holds the
bars whose *open* lies in ``[start, end)`` (ccxt's ``since`` and freqtrade's timeranges
mean the same): a START inside a bar moves to the next bar open, an END inside a bar to
that bar's close. A range with nothing in it is a BadDateError that quotes the dates as
given; a recent-only exchange's range (``Capability.earliest_ns``) is clamped to what it
serves, or refused when nothing of it is served. The notes say each of these, and when a
range begins before the market's listing.
"""

from __future__ import annotations

import logging

from dccd_cli.errors import BadDateError, UnsupportedRangeError
from dccd_cli.exchange.adapter import Adapter, Capability, Market
from dccd_cli.run.results import SeriesResult
from dccd_cli.timeutil import DAY_NS, Span, as_typed, format_ns, now_ns, parse_time, reads_clock

log = logging.getLogger("dccd.job")


async def exchange_now(adapter: Adapter) -> int:
    """'Now' by the exchange's clock, which decides what an unfinished bar is.

    Adapters with a time endpoint answer directly; the others read the ``Date`` header of
    the latest reply — and when the market list came from the cache there is none yet, so
    the list is asked for once (cheap, and the reply carries the header).
    """
    now = await adapter.server_time_ns()
    if now is None:
        await adapter.load_markets()
        now = await adapter.server_time_ns()
    if now is None:
        log.warning("%s sent no clock; using the local clock", adapter.name)
        now = now_ns()
    return now


def limit_history(cap: Capability, span: Span | None, start: int, now: int, series: SeriesResult) -> int:
    """Clamp a start to what a recent-only exchange serves, saying so; refuse if nothing is.

    The limit is the adapter's one declaration (``Capability.earliest_ns``/``history_text``),
    the same the README's table and ``dccd exchanges`` show.
    """
    earliest = cap.earliest_ns(span, now)
    if earliest is None or start >= earliest:
        return start
    what = f"{series.kind}{' ' + span.code if span else ''}"
    served = f"{series.exchange} serves {what} over REST for {cap.history_text} only, from {format_ns(earliest)}"
    if series.end_ns <= earliest:
        raise UnsupportedRangeError(f"{served}; the range asked ends before that. {cap.note}".strip())
    series.notes.append(f"{served}: {format_ns(start)}..{format_ns(earliest)} cannot be fetched. "
                        f"{cap.note}".strip())
    return earliest


async def bound_series(
    adapter: Adapter,
    cap: Capability,
    kind: str,
    span: Span | None,
    market: Market,
    start: str,
    end: str | None,
    server_now: int,
    *,
    include_partial: bool = False,
    names: tuple[str, str] = ("--start", "--end"),
) -> tuple[int, int, list[str]] | None:
    """The range ``[start, end)`` of one series in ns, by the exchange's clock, with notes.

    ``start`` and ``end`` are as the user wrote them, relative ones read against
    ``server_now`` (the exchange's clock, never this machine's); ``names`` says how the
    user gave them (``--start``, or ``start`` in a sync file), for messages that quote them.
    None when the exchange has no data at all for the market (``start = origin``). For
    OHLC the range holds the bars whose open lies in ``[start, end)``: START inside a bar
    moves to the next bar open, END inside a bar to its close; bars still forming at the
    exchange's now are left out unless ``include_partial``. The notes say when the range
    was snapped, begins before the market's listing, or when ``origin`` is clipped by how
    far back a recent-only exchange serves. A range with nothing in it raises
    BadDateError; one entirely before a recent-only exchange's history,
    UnsupportedRangeError.
    """
    notes: list[str] = []
    origin = start == "origin"
    first = (
        await adapter.first_data_ns(market, kind, span.code if span else None)
        if start == "origin"
        else parse_time(start, now=server_now, what=names[0], about="start")
    )
    asked = None if end in (None, "now") else parse_time(end, now=server_now, what=names[1], about="end")
    # 'now' is the exchange's clock: bars still forming then are not stored.
    limit = server_now if (span is None or include_partial) else span.floor(server_now)
    last = limit if asked is None else min(asked, limit)
    if first is None:
        return None
    raw_first = first
    if span is not None:
        first = span.ceil(first)
        if first != raw_first and not origin:
            notes.append(f"start {format_ns(raw_first)} is inside a {span.code} bar: the range "
                         f"starts at the next bar open, {format_ns(first)} (a range holds the "
                         "bars that open in [start, end))")
        if asked is not None:  # the bar END falls inside opens before it: it is in the range
            last = min(span.ceil(asked), limit)
            if asked != span.ceil(asked) and last == span.ceil(asked):
                notes.append(f"end {format_ns(asked)} is inside the {span.code} bar opening "
                             f"{format_ns(span.floor(asked))}, which is included: the range "
                             f"ends at its close, {format_ns(last)} (a range holds the bars "
                             "that open in [start, end))")
    if first >= last:
        said_start = as_typed(names[0], start)
        if start == "origin" or reads_clock(start):
            said_start += f" ({format_ns(raw_first)} by the exchange's clock)"
        if asked is not None and asked <= limit:
            assert end is not None
            said_end = as_typed(names[1], end)
            if reads_clock(end):
                said_end += f" ({format_ns(asked)} by the exchange's clock)"
        else:
            said_end = f"the exchange's now, {format_ns(server_now)}"
            if limit < server_now:
                said_end += f" (its {span} bar open since {format_ns(limit)} is not finished)"
        what = f"{market.symbol} {span}" if span is not None else market.symbol
        if raw_first < (limit if asked is None else min(asked, limit)):
            raise BadDateError(f"nothing to fetch for {what}: no finished {span} bar opens from "
                               f"{said_start} to {said_end}", about="start")
        raise BadDateError(f"nothing to fetch for {what}: {said_start} is not before {said_end}",
                           about="start")
    listed = market.listed_ns
    if listed is not None and not origin and first < listed:
        notes.append(f"{market.symbol} lists on {format_ns(listed)} on {adapter.name}: expect "
                     f"no {kind} before that")
    earliest = cap.earliest_ns(span, server_now)
    if origin and earliest is not None and first <= earliest < last:
        what = f"{kind}{' ' + span.code if span else ''}"
        notes.append(f"--start origin: {adapter.name} serves {what} over REST for "
                     f"{cap.history_text} only, so the range starts at {format_ns(earliest)}, "
                     f"not at the market's first data. {cap.note}".strip())
        first = earliest
    probe = SeriesResult(adapter.name, market.symbol, market.native, kind,
                         span.code if span else None, first, last)
    first = limit_history(cap, span, first, server_now, probe)
    return first, last, notes + probe.notes


def late_listing_note(exchange: str, what: str, market: Market, start_ns: int, begins: int,
                      first_row: int | None, failed_starts: list[int]) -> str | None:
    """A note when a series fetched from its range's start (``begins == start_ns``) holds
    nothing for a day or more before its first row, on an exchange whose market list gives
    no listing date (``bound_series`` says it when it does): the market was listed then,
    or was quiet until then; nothing before it is stored. None otherwise, or when a failed
    range before the first row could explain it."""
    if (begins != start_ns or first_row is None or market.listed_ns is not None
            or first_row - begins < DAY_NS or any(f < first_row for f in failed_starts)):
        return None
    return (f"{exchange} has no {what} of {market.symbol} before {format_ns(first_row)} in "
            f"the range asked (from {format_ns(begins)}): the market lists then, or was quiet "
            "until then")
