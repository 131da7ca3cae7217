"""Everything dccd prints: progress while it runs, and one rendering of each result.

On a terminal progress is a rich bar per series on stderr; without one (cron, CI, a pipe)
it is plain timestamped log lines with no control characters. ``--json`` puts exactly one
JSON object on stdout; ``--quiet`` keeps stderr for errors only. The progress sinks
themselves are in ``dccd_cli.cli.progress``.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from dccd_cli.cli.jsonout import print_json
from dccd_cli.cli.progress import LogProgress, RichProgress
from dccd_cli.cli.render_plan import exchange_line, fetched_ranges, seconds, series_line, size
from dccd_cli.errors import UsageError
from dccd_cli.run.download import NoProgress, ProgressSink
from dccd_cli.run.results import MarketsResult, RunResult, SeriesResult, SyncResult
from dccd_cli.storage.inventory import LEGEND, STRIP_CHARS, Inventory, SeriesInventory
from dccd_cli.timeutil import format_ns


def _stamp() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same_file(a: IO[str], b: IO[str]) -> bool:
    """Whether two streams write to one file or pipe (``>log 2>&1``, ``2>&1 | tee``)."""
    try:
        sa, sb = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


@contextmanager
def progress_for(*, quiet: bool, json_mode: bool, stderr: IO[str] | None = None,
                 stdout: IO[str] | None = None) -> Iterator[ProgressSink]:
    stream = stderr or sys.stderr
    if quiet:
        yield NoProgress()
        return
    if stream.isatty():
        bars = RichProgress(Console(file=stream))
        with bars.progress:
            yield bars
        return
    # Each series' result is printed by the summary on stdout; when stdout is this same
    # log, the progress says only "done", so the result appears once.
    shared = not json_mode and _same_file(stream, stdout or sys.stdout)
    sink = LogProgress(stream, progress_interval(), result_line=None if shared else _summary_line)
    with sink.ticking():
        yield sink


def progress_interval() -> float:
    """Seconds between a series' progress lines in a log: ``$DCCD_PROGRESS_INTERVAL``, else 10."""
    text = os.environ.get("DCCD_PROGRESS_INTERVAL", "").strip()
    if not text:
        return 10.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0.1 <= seconds <= 86_400:
        raise UsageError(f"DCCD_PROGRESS_INTERVAL={text!r} is not a number of seconds between 0.1 and 86400")
    return seconds


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _range_text(s: SeriesResult) -> str:
    """The range a series fetched: the ranges themselves when they are not the whole range
    asked (a resume, a sync's new bars and overlap), so the summary says what was fetched."""
    asked = f"{format_ns(s.start_ns)}..{format_ns(s.end_ns)}"
    if not s.fetched or s.fetched == [(s.start_ns, s.end_ns)]:
        return asked
    return f"fetched {fetched_ranges(s)} of {asked}"


def _summary_line(s: SeriesResult) -> str:
    if s.error:
        return f"{s.label}: FAILED: {s.error}"
    if s.already_stored:
        return f"{s.label}: already stored {format_ns(s.start_ns)}..{format_ns(s.end_ns)}, nothing to fetch"
    text = (
        f"{s.label}: {s.rows_added} rows added ({_range_text(s)}), "
        f"{_n(s.requests, 'request')}, {_n(len(s.files), 'file')}"
    )
    if s.empty_bars:
        text += f", {_n(s.empty_bars, 'bar')} the exchange has no data for"
    if s.failed:
        ranges = ", ".join(f"{format_ns(f.start_ns)}..{format_ns(f.end_ns)}" for f in s.failed)
        text += f"; MISSING {ranges}: {s.failed[0].error}"
    return text


def render_run(result: RunResult, *, json_mode: bool, quiet: bool, stdout: IO[str] | None = None) -> None:
    out = stdout or sys.stdout
    if json_mode:
        print_json(result.to_json(), out)
        return
    if quiet and result.exit_code == 0:
        return
    if result.dry_run:
        out.write("plan (dry run: nothing is fetched or written)\n")
    for s in result.series:
        for note in s.notes:
            out.write(f"note: {note}\n")
        out.write(("  " + series_line(s) if result.dry_run else _summary_line(s)) + "\n")
    if result.dry_run:
        if result.estimate is not None and result.series:
            out.write(exchange_line(result.series[0].exchange, result.estimate) + "\n")
        out.write(f"data would go to {result.out}\n")
        return
    out.write(f"data in {result.out} ({result.seconds:.1f} s)\n")


def render_sync(result: SyncResult, *, json_mode: bool, quiet: bool, stdout: IO[str] | None = None) -> None:
    """The summary of ``dccd sync`` (or its plan, for ``--dry-run``)."""
    out = stdout or sys.stdout
    if json_mode:
        print_json(result.to_json(), out)
        return
    if quiet and result.exit_code == 0:
        return
    if result.dry_run:
        out.write(f"plan of {result.config} (dry run: nothing is fetched or written)\n")
        for s in result.series:
            out.write(f"  [{s.job}] {series_line(s)}\n")
        for name, est in result.exchanges.items():
            out.write(exchange_line(name, est) + "\n")
        slowest = max((e.seconds for e in result.exchanges.values()), default=0.0)
        out.write(f"about {seconds(slowest)} in all (exchanges run at once); data in "
                  f"{', '.join(result.outs)}\n")
    else:
        for s in result.series:
            for note in s.notes:
                out.write(f"note: [{s.job}] {note}\n")
            out.write(f"[{s.job}] {_summary_line(s)}\n")
        failed = [s for s in result.series if not s.ok]
        retries = "1 retry" if result.retries == 1 else f"{result.retries} retries"
        out.write(
            f"{len(result.series)} series ({len(failed)} failed), {result.rows_added} rows added, "
            f"{_n(result.requests, 'request')}, {retries}; data in {', '.join(result.outs)} "
            f"({result.seconds:.1f} s)\n"
        )
    for f in result.failures:
        out.write(f"[{f.job}] {f.exchange}: FAILED: {f.error}\n")


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def configure_logging(*, quiet: bool, stderr: IO[str] | None = None) -> None:
    """dccd's warnings on stderr: timestamped lines without a terminal (cron, CI), short
    ``dccd: ...`` lines on one; errors only with ``--quiet``."""
    stream = stderr or sys.stderr
    handler = logging.StreamHandler(stream)
    if stream.isatty():
        handler.setFormatter(logging.Formatter("dccd: %(message)s"))
    else:
        handler.setFormatter(_UTCFormatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("dccd")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.ERROR if quiet else logging.WARNING)
    logger.propagate = False


def notifier(*, quiet: bool, stderr: IO[str] | None = None) -> Callable[[str], None]:
    """Where a command says what it is waiting for: stderr, timestamped without a terminal."""
    stream = stderr or sys.stderr

    def say(text: str) -> None:
        if quiet:
            return
        stream.write(f"dccd: {text}\n" if stream.isatty() else f"{_stamp()} {text}\n")
        stream.flush()

    return say


def _duration(ns: int) -> str:
    minutes = ns // 60_000_000_000
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h" if minutes < 2880 else f"{minutes / 1440:.1f} days"


def _inventory_lines(s: SeriesInventory, charset: str) -> list[str]:
    chars = STRIP_CHARS[charset]
    first = format_ns(s.first_ns) if s.first_ns is not None else "-"
    last = format_ns(s.last_ns) if s.last_ns is not None else "-"
    head = (f"{s.key.kind:<6} {s.key.exchange:<9} {s.key.symbol:<10} {s.key.span or '':<4} "
            f"{first} .. {last}  {s.rows} rows, {_n(s.files, 'file')}, {size(s.bytes)}, "
            f"{s.coverage:.1f}% fetched")
    lines = [head]
    if s.start_ns is not None and s.end_ns is not None:
        lines.append(f"  {s.drawn(charset)}  {format_ns(s.start_ns)} .. {format_ns(s.end_ns)}")
    for g in s.gaps[:10]:
        mark = chars["X"] if g.reason == "failed" else chars["N"]
        why = f" ({g.error})" if g.error else ""
        lines.append(f"    {mark} {g.reason} {format_ns(g.start_ns)} .. {format_ns(g.end_ns)}{why}")
    if len(s.gaps) > 10:
        lines.append(f"    ... and {len(s.gaps) - 10} more gaps (--json lists them all)")
    if s.no_data_units:
        longest = s.longest_no_data
        tail = ""
        if longest is not None:
            tail = (f", longest {_duration(longest.end_ns - longest.start_ns)} "
                    f"({format_ns(longest.start_ns)} .. {format_ns(longest.end_ns)})")
        lines.append(f"    {chars['E']} no data at the exchange: {_n(s.no_data_units, s.unit)} in "
                     f"{_n(s.no_data_stretches, 'stretch').replace('stretchs', 'stretches')}{tail}")
    lines.extend(f"    note: {n}" for n in s.notes)
    if s.problems is not None:
        lines.extend(f"    ! {p}" for p in s.problems)
        if not s.problems:
            lines.append("    verified: files and ledger keep the contract")
    return lines


def render_inventory(inv: Inventory, *, json_mode: bool, charset: str | None = None,
                     stdout: IO[str] | None = None) -> None:
    """What ``dccd inventory`` found, for people (strips; ASCII unless the output is
    UTF-8) or as one JSON object."""
    out = stdout or sys.stdout
    if json_mode:
        print_json(inv.to_json(), out)
        return
    if charset is None:
        encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
        charset = "unicode" if encoding == "utf8" else "ascii"
    files = sum(s.files for s in inv.series)
    stored = sum(s.bytes for s in inv.series)
    parts = [f"dataset {inv.root}: {len(inv.series)} series, {_n(files, 'file')}, {size(stored)}"]
    if inv.writer:
        parts.append(f"note: {inv.writer} is writing this dataset now; figures may change as it runs")
    if not inv.series:
        parts.append("nothing stored yet")
    for s in inv.series:
        parts += ["", *_inventory_lines(s, charset)]
    if inv.series:
        chars = STRIP_CHARS[charset]
        parts += ["", "  ".join(f"{chars[c]} {LEGEND[c]}" for c in "SPEXN")]
    if inv.verified:
        bad = [s for s in inv.series if s.problems]
        n = sum(len(s.problems or []) for s in bad)
        parts.append(f"verify: {_n(n, 'problem')} in {len(bad)} of {len(inv.series)} series" if bad
                     else f"verify: all {len(inv.series)} series keep the contract")
    text = "\n".join(parts) + "\n"
    if charset == "ascii":  # error texts quoted from exchanges, paths: may hold anything
        text = text.encode("ascii", "replace").decode("ascii")
    out.write(text)


def render_markets(result: MarketsResult, *, json_mode: bool, stdout: IO[str] | None = None) -> None:
    """One line per market, sorted: unified symbol, the exchange's own name, and the first
    data's date when the exchange tells it."""
    out = stdout or sys.stdout
    if json_mode:
        print_json(result.to_json(), out)
        return
    wide = max((len(m.symbol) for m in result.markets), default=0)
    native = max((len(m.native) for m in result.markets), default=0)
    for m in result.markets:
        listed = f"  listed {format_ns(m.listed_ns)[:10]}" if m.listed_ns is not None else ""
        out.write(f"{m.symbol:<{wide}}  {m.native:<{native}}{listed}".rstrip() + "\n")


def render_exchanges(described: list[dict[str, Any]], *, json_mode: bool, stdout: IO[str] | None = None) -> None:
    out = stdout or sys.stdout
    if json_mode:
        print_json(described, out)
        return
    table = Table(title="Supported exchanges")
    for col in ("exchange", "ohlc spans", "bars/request", "trades", "rate limit"):
        table.add_column(col)
    table.add_column("history over REST", no_wrap=True)
    for d in described:
        o, t = d["ohlc"], d["trades"]
        rl = d["rate_limit"]
        history = d["history"].split("; ")  # the adapters' one declaration (Adapter.history_summary)
        table.add_row(
            f"{d['name']}\n{d['title']}",
            " ".join(o["spans"]) if o else "-",
            str(o["max_per_request"]) if o else "-",
            f"{t['max_per_request']}/request" if t else "-",
            f"{rl['capacity']:g} per {rl['window_s']:g} s",
            "\n".join(history),
        )
    Console(file=out, width=120).print(table)
