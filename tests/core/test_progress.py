"""Progress lines in a log: at least one every interval per running series, also while it
waits for the rate limit; rows and rows/s; an overall line of the work of all series."""

from __future__ import annotations

import io

from dccd_cli.cli.progress import LogProgress
from dccd_cli.run.results import SeriesResult

T0 = 1_709_251_200.0  # 2024-03-01T00:00:00Z


class Clocks:
    """A monotonic clock and a wall clock that move together, by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def mono(self) -> float:
        return self.t

    def wall(self) -> float:
        return T0 + self.t - 100.0


def _log(**kw: object) -> tuple[LogProgress, io.StringIO, Clocks]:
    stream, clocks = io.StringIO(), Clocks()
    return LogProgress(stream, 10.0, clock=clocks.mono, wall=clocks.wall, **kw), stream, clocks  # type: ignore[arg-type]


def _result(label_symbol: str = "BTC-USDT") -> SeriesResult:
    return SeriesResult("okx", label_symbol, label_symbol, "trades", None, 0, 1, rows_added=5000)


def test_a_series_stalled_on_the_rate_limit_still_gets_a_line_every_interval() -> None:
    log, stream, clocks = _log()
    task = log.start("okx BTC-USDT trades", 1000)
    clocks.t += 4
    log.advance(task, 250, 4000)
    assert stream.getvalue().count("\n") == 1  # only "started": no line due yet
    log.waiting(task, clocks.wall() + 25)  # e.g. a 429 with Retry-After: 25
    lines = stream.getvalue().splitlines()
    assert lines[-1] == ("2024-03-01T00:00:04Z okx BTC-USDT trades: 25%, 4,000 rows, 1,000 rows/s, "
                         "waiting for the rate limit until 00:00:29Z")
    for _ in range(25):  # nothing advances while it waits: the ticker alone writes
        clocks.t += 1
        log.tick()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 + 2  # at 14 s and at 24 s
    assert lines[2].startswith("2024-03-01T00:00:14Z okx BTC-USDT trades: 25%, 4,000 rows, 286 rows/s, waiting")
    assert lines[3].endswith("waiting for the rate limit until 00:00:29Z")
    clocks.t += 6
    log.advance(task, 1000, 9000)  # the wait is over: the line says so no more
    assert stream.getvalue().splitlines()[-1].endswith("trades: 100%, 9,000 rows, 257 rows/s")


def test_a_short_wait_waits_for_the_next_line() -> None:
    log, stream, clocks = _log()
    task = log.start("okx BTC-USDT trades", 1000)
    log.waiting(task, clocks.wall() + 4)
    assert stream.getvalue().count("\n") == 1


def test_finish_prints_the_result_line_or_only_done_when_the_summary_shares_the_log() -> None:
    log, stream, clocks = _log(result_line=lambda r: f"{r.label}: {r.rows_added} rows added")
    log.finish(log.start("okx BTC-USDT trades", 10), _result())
    assert stream.getvalue().splitlines()[-1].endswith("okx BTC-USDT trades: 5000 rows added")
    log, stream, clocks = _log()
    task = log.start("okx BTC-USDT trades", 10)
    clocks.t += 2
    log.advance(task, 10, 5000)
    log.finish(task, _result())
    assert stream.getvalue().splitlines()[-1].endswith("okx BTC-USDT trades: done, 5,000 rows, 2,500 rows/s")
    assert "rows added" not in stream.getvalue()


def test_the_overall_line_is_the_work_of_all_series_not_the_series_finished() -> None:
    log, stream, clocks = _log()
    log.overall(2, 3000)
    a, b = log.start("a", 1000), log.start("b", 2000)
    clocks.t += 10
    log.advance(a, 500, 100)
    log.advance(b, 1000, 300)
    log.tick()
    assert stream.getvalue().splitlines()[-1].endswith(
        "all series: 50% (0 of 2 done), 400 rows, 40 rows/s")  # no series is done, half the work is
    log.finish(a, _result())
    clocks.t += 10
    log.tick()
    assert stream.getvalue().splitlines()[-1].endswith("all series: 66% (1 of 2 done), 400 rows, 20 rows/s")


def test_the_ticker_thread_writes_while_nothing_else_happens() -> None:
    import time

    stream = io.StringIO()
    log = LogProgress(stream, 0.2)
    with log.ticking():
        log.start("okx BTC-USDT trades", 1000)
        time.sleep(0.7)
    assert stream.getvalue().count("okx BTC-USDT trades: 0%, 0 rows") >= 2
