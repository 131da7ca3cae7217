"""Everything dccd prints: progress while it runs, and one rendering of each result.

On a terminal progress is a rich bar per series on stderr; without one (cron, CI, a pipe)
it is plain timestamped log lines with no control characters. ``--json`` puts exactly one
JSON object on stdout; ``--quiet`` keeps stderr for errors only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .job import NoProgress, ProgressSink
from .results import RunResult, SeriesResult
from .timeutil import format_ns


def _stamp() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LogProgress:
    """Plain lines for logs: one at start, one every ``every_s`` seconds, one at the end."""

    def __init__(self, stream: IO[str], every_s: float = 10.0) -> None:
        self.stream = stream
        self.every_s = every_s
        self._tasks: dict[int, tuple[str, int, float]] = {}

    def _line(self, text: str) -> None:
        self.stream.write(f"{_stamp()} {text}\n")
        self.stream.flush()

    def start(self, label: str, total: int) -> int:
        task = len(self._tasks) + 1
        self._tasks[task] = (label, total, time.monotonic())
        self._line(f"{label}: started")
        return task

    def advance(self, task: int, done: int) -> None:
        label, total, last = self._tasks[task]
        now = time.monotonic()
        if now - last >= self.every_s:
            self._tasks[task] = (label, total, now)
            self._line(f"{label}: {100 * done / max(1, total):.0f}%")

    def finish(self, task: int, result: SeriesResult) -> None:
        self._line(_summary_line(result))


class RichProgress:
    """One rich progress bar per running series, on stderr."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._totals: dict[int, int] = {}

    def start(self, label: str, total: int) -> int:
        task = self.progress.add_task(label, total=max(1, total))
        self._totals[int(task)] = max(1, total)
        return int(task)

    def advance(self, task: int, done: int) -> None:
        self.progress.update(TaskID(task), completed=done)

    def finish(self, task: int, result: SeriesResult) -> None:
        self.progress.update(TaskID(task), completed=self._totals[task])


@contextmanager
def progress_for(*, quiet: bool, json_mode: bool, stderr: IO[str] | None = None) -> Iterator[ProgressSink]:
    stream = stderr or sys.stderr
    if quiet:
        yield NoProgress()
        return
    if stream.isatty():
        console = Console(file=stream)
        sink = RichProgress(console)
        with sink.progress:
            yield sink
        return
    yield LogProgress(stream)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _age(days: float) -> str:
    return f"{days * 24:.0f} hours" if days < 2 else f"{days:.0f} days"


def _summary_line(s: SeriesResult) -> str:
    if s.error:
        return f"{s.label}: FAILED: {s.error}"
    if s.already_stored:
        return f"{s.label}: already stored {format_ns(s.start_ns)}..{format_ns(s.end_ns)}, nothing to fetch"
    text = (
        f"{s.label}: {s.rows_added} rows added ({format_ns(s.start_ns)}..{format_ns(s.end_ns)}), "
        f"{_n(s.requests, 'request')}, {_n(len(s.files), 'file')}"
    )
    if s.failed:
        ranges = ", ".join(f"{format_ns(f.start_ns)}..{format_ns(f.end_ns)}" for f in s.failed)
        text += f"; MISSING {ranges}: {s.failed[0].error}"
    return text


def render_run(result: RunResult, *, json_mode: bool, quiet: bool, stdout: IO[str] | None = None) -> None:
    out = stdout or sys.stdout
    if json_mode:
        out.write(orjson.dumps(result.to_json()).decode() + "\n")
        return
    if quiet and result.exit_code == 0:
        return
    for s in result.series:
        for note in s.notes:
            out.write(f"note: {note}\n")
        out.write(_summary_line(s) + "\n")
    out.write(f"data in {result.out} ({result.seconds:.1f} s)\n")


def render_exchanges(described: list[dict[str, Any]], *, json_mode: bool, stdout: IO[str] | None = None) -> None:
    out = stdout or sys.stdout
    if json_mode:
        out.write(orjson.dumps(described).decode() + "\n")
        return
    table = Table(title="Supported exchanges")
    for col in ("exchange", "ohlc spans", "bars/request", "trades", "rate limit", "history"):
        table.add_column(col)
    for d in described:
        o, t = d["ohlc"], d["trades"]
        rl = d["rate_limit"]
        history = []
        if o:
            history.append("ohlc: full" if o["history"] == "full" else f"ohlc: last {o['recent_bars']} bars")
        if t:
            history.append("trades: full" if t["history"] == "full" else f"trades: last {_age(t['recent_days'])}")
        else:
            history.append("trades: none over REST")
        table.add_row(
            f"{d['name']}\n{d['title']}",
            " ".join(o["spans"]) if o else "-",
            str(o["max_per_request"]) if o else "-",
            f"{t['max_per_request']}/request" if t else "-",
            f"{rl['capacity']:g} per {rl['window_s']:g} s",
            "\n".join(history),
        )
    Console(file=out, width=120).print(table)
