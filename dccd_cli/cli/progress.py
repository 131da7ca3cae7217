"""Progress while a run fetches: a rich bar per series on a terminal, timestamped lines in
a log (cron, CI, a pipe), nothing with ``--quiet`` (``job.NoProgress``).

Work is nanoseconds of the ranges to fetch: a series advances by the part of its ranges
settled (fetched or failed), page by page, and the overall bar by the sum over all series —
so ten series at half their work are a half-done run, not a run with nothing finished.
Rows are those received so far, and rows/s their rate since the series started. A series
that waits for the exchange's rate limit says until when (``ratelimit.wait_listener``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from dccd_cli.run.results import SeriesResult

Clock = Callable[[], float]


def stamp(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hms(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, tz=UTC).strftime("%H:%M:%SZ")


def rows_and_rate(rows: int, seconds: float) -> str:
    rate = rows / seconds if seconds > 0 else 0.0
    return f"{rows:,} rows, {rate:,.0f} rows/s"


@dataclass
class _Series:
    label: str
    total: int
    started: float  # monotonic
    last_line: float  # monotonic
    done: int = 0
    rows: int = 0
    waiting_until: float | None = None  # Unix seconds

    def percent(self) -> int:
        # Floored: 100% means every range is settled, never "almost".
        return min(100, 100 * self.done // max(1, self.total))


class LogProgress:
    """Plain timestamped lines for logs, without control characters.

    A line when a series starts; then at least one every ``every_s`` seconds per running
    series — its percentage of work, rows and rows/s, and while it waits for the rate limit
    until when — written by a ticker thread (``ticking``), so a series stalled on the
    exchange still shows it lives; a line when it ends. With several series, an overall
    line as often. ``result_line`` renders a finished series; without it (the summary on
    stdout goes to the same file, ``>log 2>&1``) the end is a short "done" line, so the
    result appears once.
    """

    def __init__(
        self,
        stream: IO[str],
        every_s: float = 10.0,
        *,
        result_line: Callable[[SeriesResult], str] | None = None,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.stream = stream
        self.every_s = every_s
        self.result_line = result_line
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._tasks: dict[int, _Series] = {}
        self._next = 1
        self._series = self._finished = 0
        self._work = self._settled = self._rows_done = 0  # of all series; of finished ones
        self._started = clock()
        self._overall_line = self._started

    def _line(self, text: str) -> None:
        self.stream.write(f"{stamp(self._wall())} {text}\n")
        self.stream.flush()

    def _status(self, s: _Series, now: float) -> str:
        text = f"{s.label}: {s.percent()}%, {rows_and_rate(s.rows, now - s.started)}"
        if s.waiting_until is not None and s.waiting_until > self._wall():
            text += f", waiting for the rate limit until {_hms(s.waiting_until)}"
        return text

    def start(self, label: str, total: int) -> int:
        with self._lock:
            task, self._next = self._next, self._next + 1
            now = self._clock()
            self._tasks[task] = _Series(label, total, now, now)
            self._line(f"{label}: started")
            return task

    def advance(self, task: int, done: int, rows: int) -> None:
        with self._lock:
            s = self._tasks[task]
            s.done, s.rows = done, rows
            now = self._clock()
            if now - s.last_line >= self.every_s:
                s.last_line = now
                self._line(self._status(s, now))

    def waiting(self, task: int, until: float) -> None:
        """The series waits for the exchange's rate limit until ``until`` (Unix seconds)."""
        with self._lock:
            s = self._tasks.get(task)
            if s is None:
                return
            known = s.waiting_until is not None and s.waiting_until > self._wall()
            s.waiting_until = until
            if not known and until - self._wall() >= self.every_s:
                # A wait as long as the interval between lines: say so now, not in 10 s.
                s.last_line = now = self._clock()
                self._line(self._status(s, now))

    def tick(self) -> None:
        """Write the lines that are due: each running series' every ``every_s`` seconds
        since its last, and the overall one. Called by the ticker thread."""
        with self._lock:
            now = self._clock()
            for s in self._tasks.values():
                if now - s.last_line >= self.every_s:
                    s.last_line = now
                    self._line(self._status(s, now))
            if self._series > 1 and self._tasks and now - self._overall_line >= self.every_s:
                self._overall_line = now
                done = self._settled + sum(s.done for s in self._tasks.values())
                rows = self._rows_done + sum(s.rows for s in self._tasks.values())
                self._line(f"all series: {min(100, 100 * done // max(1, self._work))}% "
                           f"({self._finished} of {self._series} done), "
                           f"{rows_and_rate(rows, now - self._started)}")

    def finish(self, task: int, result: SeriesResult) -> None:
        with self._lock:
            s = self._tasks.pop(task)
            self._finished += 1
            self._settled += s.total
            self._rows_done += s.rows
            if self.result_line is not None:
                self._line(self.result_line(result))
            else:
                status = "done" if result.ok else "FAILED (the summary says what)"
                now = self._clock()
                self._line(f"{s.label}: {status}, {rows_and_rate(s.rows, now - s.started)}")

    def overall(self, series: int, work: int) -> None:
        with self._lock:
            self._series += series
            self._work += work
            if series > 1:
                self._line(f"{series} series to fetch")

    @contextmanager
    def ticking(self) -> Iterator[LogProgress]:
        """Run the ticker thread while the block runs."""
        stop = threading.Event()
        period_s = min(1.0, self.every_s / 2)

        def run() -> None:
            while not stop.wait(period_s):
                try:
                    self.tick()
                except (OSError, ValueError):  # the log is gone (a closed pipe): the run
                    return  # itself meets it on its next write, and says so there

        thread = threading.Thread(target=run, name="dccd-progress", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


class _RowsColumn(ProgressColumn):
    """Rows received and rows/s since the bar started; and until when it waits, if it does."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        text = rows_and_rate(rows, task.elapsed or 0.0)
        until = task.fields.get("waiting_until")
        if until is not None and until > time.time():
            text += f", waiting for the rate limit until {_hms(until)}"
        return Text(text, style="progress.data.speed")


class RichProgress:
    """One rich progress bar per running series, on stderr, and an overall bar of the work
    of all series when there are several. With many series (a pattern job) a finished
    series' bar is removed, so the screen shows what is running."""

    KEEP_FINISHED_UP_TO = 8

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            _RowsColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._totals: dict[int, int] = {}
        self._done: dict[int, tuple[int, int]] = {}  # task -> (work done, rows)
        self._overall: TaskID | None = None
        self._series = self._work = 0

    def overall(self, series: int, work: int) -> None:
        self._series += series
        self._work += work
        if self._series <= 1:
            return
        if self._overall is None:
            self._overall = self.progress.add_task("all series", total=max(1, self._work), rows=0)
        else:
            self.progress.update(self._overall, total=max(1, self._work))

    def start(self, label: str, total: int) -> int:
        task = int(self.progress.add_task(label, total=max(1, total), rows=0))
        self._totals[task] = max(1, total)
        self._done[task] = (0, 0)
        return task

    def _update_overall(self) -> None:
        if self._overall is not None:
            self.progress.update(self._overall, completed=sum(d for d, _ in self._done.values()),
                                 rows=sum(r for _, r in self._done.values()))

    def advance(self, task: int, done: int, rows: int) -> None:
        self._done[task] = (done, rows)
        self.progress.update(TaskID(task), completed=done, rows=rows)
        self._update_overall()

    def waiting(self, task: int, until: float) -> None:
        self.progress.update(TaskID(task), waiting_until=until)

    def finish(self, task: int, result: SeriesResult) -> None:
        self._done[task] = (self._totals[task], self._done[task][1])
        self.progress.update(TaskID(task), completed=self._totals[task], waiting_until=None)
        self._update_overall()
        if self._series > self.KEEP_FINISHED_UP_TO:
            self.progress.remove_task(TaskID(task))
