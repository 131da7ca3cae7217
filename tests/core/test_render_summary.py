"""What the summaries of a run and a sync say about each series' range."""

from __future__ import annotations

import io

from dccd_cli.cli.render import render_run, render_sync
from dccd_cli.run.results import RunResult, SeriesResult, SyncResult
from dccd_cli.timeutil import parse_time


def t(text: str) -> int:
    return parse_time(text, now=0)


def series(fetched: list[tuple[int, int]]) -> SeriesResult:
    return SeriesResult("binance", "BTC-USDT", "BTCUSDT", "ohlc", "1h", t("2024-01-01"),
                        t("2024-03-01"), rows_added=3, requests=1, job="daily", fetched=fetched)


def test_a_sync_names_the_ranges_it_fetched_not_only_the_range_asked() -> None:
    out = io.StringIO()
    s = series([(t("2024-02-29T21:00Z"), t("2024-03-01"))])
    render_sync(SyncResult("daily.toml", outs=["data"], series=[s]), json_mode=False, quiet=False,
                stdout=out)
    assert ("[daily] binance BTC-USDT ohlc 1h: 3 rows added (fetched 2024-02-29T21:00Z..2024-03-01 "
            "of 2024-01-01..2024-03-01), 1 request") in out.getvalue()


def test_a_whole_range_fetched_is_said_once() -> None:
    out = io.StringIO()
    s = series([(t("2024-01-01"), t("2024-03-01"))])
    render_run(RunResult("ohlc", "data", series=[s]), json_mode=False, quiet=False, stdout=out)
    assert "3 rows added (2024-01-01..2024-03-01), 1 request" in out.getvalue()
