"""Bad input, tried systematically: every wrong date, span, symbol, exchange, output
directory and sync file gets exit 2 and one line ``dccd: error: …`` naming the problem,
writes nothing, and touches no path — inside the output directory or outside it.

Hypothesis drives the CLI in-process (typer's CliRunner, fast enough for hundreds of
inputs); a few inputs go through the real command line in a subprocess too. Options come
before ``--`` and positional arguments after it, so an input starting with ``-`` is taken
as the value it is, not as an option.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dccd_testing import run_cli
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dccd_cli.cli.app import app
from dccd_cli.emulator import EmulatorServer
from dccd_cli.errors import BadDateError, ConfigError, UsageError
from dccd_cli.exchange.markets import check_symbol
from dccd_cli.exchange.registry import adapters
from dccd_cli.run.jobfile import load_config
from dccd_cli.timeutil import Span, parse_time

NOW = parse_time("2024-03-01T00:30Z", now=0)
BINANCE_SPANS = set(adapters()["binance"].ohlc.spans)  # type: ignore[union-attr]
HYPOTHESIS = settings(max_examples=60, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


def tree(*roots: Path) -> dict[str, float]:
    """Every path under ``roots`` with its modification time: to see that nothing changed."""
    out: dict[str, float] = {}
    for root in roots:
        if root.exists():
            out[str(root)] = root.stat().st_mtime
            for p in root.rglob("*"):
                out[str(p)] = p.lstat().st_mtime
    return out


class Cli:
    """Runs ``dccd`` in-process and checks the promise for bad input."""

    def __init__(self, base_url: str, tmp: Path) -> None:
        self.base_url = base_url
        self.tmp = tmp
        self.out = tmp / "out"
        self.cache = Path(os.environ["DCCD_CACHE_DIR"])

    def invoke(self, *args: str) -> Any:
        return CliRunner().invoke(app, list(args))

    def rejects(self, options: list[str], positional: list[str], *needles: str) -> str:
        """Run ``ohlc``/``trades`` with bad input; assert exit 2, one line, nothing written."""
        before = tree(self.tmp, self.cache)
        kind, *rest = options
        result = self.invoke(kind, *rest, "--base-url", self.base_url, "--out", str(self.out),
                             "--", *positional)
        assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, options, positional)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("dccd: error: "), lines[0]
        for needle in needles:
            assert needle in lines[0], lines[0]
        assert result.stdout == ""
        assert not self.out.exists()
        assert tree(self.tmp, self.cache) == before, "a path was touched"
        return lines[0]


@pytest.fixture
def cli(emulator: EmulatorServer, tmp_path: Path) -> Cli:
    return Cli(emulator.venue_url("binance"), tmp_path)


# -- dates -----------------------------------------------------------------------------


def is_bad_date(text: str) -> bool:
    try:
        parse_time(text, now=NOW)
    except BadDateError:
        return True
    return False


WRONG_DATES = st.one_of(
    st.sampled_from([
        "", " ", "yesterday", "tomorrow", "2024/01/01", "01/02/2024", "1.1.2024", "2024-1-1x",
        "2024-13-01", "2024-02-30", "2024-00-10", "24-01-01", "2024-01-01T25:00",
        "2024-01-01T10:61", "2024-01-01 10:00 PST", "1e9", "0x65a0bc00", "-5y", "+5d", "5d",
        "-d", "now-1d", "1999-12-31", "2201-01-01", "0001-01-01", "9999-12-31", "12",
        "123456789012345678901234567890", "２０２４-０１-０１", "2024-01-01\x00", "\u202e2024-01-01",
        "-9999999d", "100000000", "9999999999999", "origin" + "x", "nan", "inf", "-0",
    ]),
    st.integers(1, 1999).map(lambda y: f"{y:04d}-06-15"),
    st.integers(2201, 9999).map(lambda y: f"{y:04d}-06-15"),
    st.tuples(st.integers(2000, 2100), st.integers(13, 99), st.integers(1, 28))
    .map(lambda t: f"{t[0]}-{t[1]:02d}-{t[2]:02d}"),
    st.tuples(st.integers(2000, 2100), st.integers(1, 12), st.integers(32, 99))
    .map(lambda t: f"{t[0]}-{t[1]:02d}-{t[2]:02d}"),
    st.integers(10**8, 946_684_799).map(str),  # Unix seconds before 2000
    st.integers(1, 10**6).map(lambda n: f"-{n}y"),
    st.integers(8_000_001, 10**9).map(lambda n: f"-{n}d"),
    st.text(max_size=40),
).filter(is_bad_date)


@HYPOTHESIS
@given(date=WRONG_DATES, which=st.sampled_from(["--start", "--end"]))
def test_a_wrong_date_is_exit_2_one_line_nothing_written(cli: Cli, date: str, which: str) -> None:
    good = "2024-01-01" if which == "--end" else "2024-01-02"
    other = "--start" if which == "--end" else "--end"
    what = which.lstrip("-")
    line = cli.rejects(["ohlc", "--span", "1h", f"{which}={date}", other, good],
                       ["binance", "BTC-USDT"], what)
    # It says what is accepted: the forms of a date, or the range of years.
    assert "YYYY-MM-DD" in line or "dates from 2000 to 2200" in line, line


INSTANTS = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2150, 1, 1),
                        timezones=st.just(UTC))


@HYPOTHESIS
@given(end=INSTANTS, back=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
@example(end=datetime(2024, 1, 1, tzinfo=UTC), back=timedelta(0))
def test_start_not_before_end_is_exit_2(cli: Cli, end: datetime, back: timedelta) -> None:
    start = end + back  # start at or after end
    cli.rejects(["trades", f"--start={start.isoformat()}", f"--end={end.isoformat()}"],
                ["binance", "BTC-USDT"], "is not before --end")


# -- spans and exchanges -----------------------------------------------------------------


@HYPOTHESIS
@given(span=st.one_of(
    st.sampled_from(["", "0m", "1H", "60", "1 h", "1hour", "7m", "2w", "1y", "99999m", "-1h",
                     "1h\n", "1m/../x", "１h", "1M1"]),
    st.builds(lambda n, u: f"{n}{u}", st.integers(1, 9999), st.sampled_from("smhdwMy")),
    st.text(max_size=12),
))
def test_a_span_that_does_not_exist_or_is_not_offered_is_exit_2(cli: Cli, span: str) -> None:
    assume(span.strip() not in BINANCE_SPANS)
    line = cli.rejects(["ohlc", f"--span={span}", "--start", "2024-01-01"], ["binance", "BTC-USDT"])
    assert "span" in line


@HYPOTHESIS
@given(exchange=st.text(max_size=30))
def test_an_unknown_exchange_is_exit_2(cli: Cli, exchange: str) -> None:
    assume(exchange.strip().lower() not in adapters())
    cli.rejects(["trades", "--start", "2024-01-01"], [exchange, "BTC-USDT"], "exchange")


# -- symbols ---------------------------------------------------------------------------


def is_bad_symbol(text: str) -> bool:
    try:
        check_symbol(text)
    except UsageError:
        return True
    return False


PATHLIKE = st.sampled_from([
    "../../etc/passwd", "..", ".", "/", "BTC/USDT", "BTC\\USDT", "BTC-USDT/../../x", "../BTC-USDT",
    "BTC-USDT/", "/etc/passwd", "~/x", "BTC-USDT\x00", "BTC USDT", " BTC - USDT ", "BTC-USDT\n-ETH",
    "БТЦ-USDT", "BTC-ＵＳＤＴ", "ﬀ-USDT", "ı-USDT", "BTC-USDT\u200b", "🙂-USDT", "BTC—USDT",
    "BTC-USDT" * 50, "A" * 10_000, "B" * 21 + "-USDT", "BTC-USDT-ETH", "-USDT", "BTC-", "%2e%2e-x",
    "$(touch x)-USDT", "BTC-USDT;rm", "*-USDT", "BTC-*",
])
SYMBOLS = st.one_of(
    PATHLIKE,
    st.text(max_size=60),
    st.text(alphabet=string.ascii_letters + string.digits + "-./\\ ~", max_size=50),
    st.builds(lambda a, b: f"{a}/../{b}", st.text(max_size=10), st.text(max_size=10)),
).filter(is_bad_symbol)


@HYPOTHESIS
@given(symbol=SYMBOLS, kind=st.sampled_from(["ohlc", "trades"]))
def test_a_malformed_symbol_is_exit_2_and_never_a_path(cli: Cli, symbol: str, kind: str) -> None:
    options = ["ohlc", "--span", "1h"] if kind == "ohlc" else ["trades"]
    cli.rejects([*options, "--start", "2024-01-01", "--end", "2024-01-02"], ["binance", symbol],
                "is not of the form BASE-QUOTE")


@pytest.mark.parametrize("symbol", ["../../etc/passwd", "BTC USDT", "БТЦ-USDT", "X" * 10_000])
def test_bad_symbols_through_the_real_command_line(emulator: EmulatorServer, tmp_path: Path,
                                                   symbol: str) -> None:
    out = tmp_path / "out"
    before = tree(tmp_path)
    r = run_cli("trades", "--start", "2024-01-01", "--end", "2024-01-02", "--base-url",
                emulator.venue_url("binance"), "--out", str(out), "--", "binance", symbol)
    assert r.code == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("dccd: error: symbol ") and "is not of the form BASE-QUOTE" in line
    assert len(line) < 200  # an absurd input is shown cut short
    assert r.stdout == "" and not out.exists() and tree(tmp_path) == before


def test_a_well_formed_symbol_the_exchange_lacks(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli("ohlc", "binance", "ZZZ-QQQ", "--span", "1h", "--start", "2024-01-01",
                "--base-url", emulator.venue_url("binance"), "--out", str(out))
    assert r.code == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("dccd: error: unknown symbol 'ZZZ-QQQ' on binance")
    assert not out.exists()


@pytest.mark.parametrize("args,needle", [
    (("trades", "bybit", "BTC-USDT", "--start", "2024-01-01"), "bybit does not serve trades"),
    (("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2030-01-01"), "is not before"),
    (("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "-0d"), "is not before the exchange's now"),
])
def test_spans_the_exchange_lacks(emulator: EmulatorServer, tmp_path: Path,
                                  args: tuple[str, ...], needle: str) -> None:
    out = tmp_path / "out"
    r = run_cli(*args, "--base-url", emulator.venue_url("binance"), "--out", str(out))
    assert r.code == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert needle in line, line
    assert not out.exists()


# -- the output directory ------------------------------------------------------------------


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot write into — as root too (a read-only mount, or
    /proc/sys), else skip."""
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o500)
        yield d
        d.chmod(0o700)
        return
    mnt = tmp_path / "ro"
    mnt.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mnt)],
                           capture_output=True, timeout=10)
        mounted = r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        mounted = False
    if mounted:
        try:
            yield mnt
        finally:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)
        return
    if Path("/proc/sys").is_dir() and not os.access("/proc/sys", os.W_OK):
        yield Path("/proc/sys")
        return
    pytest.skip("no directory here is read-only for root")


def test_an_unwritable_output_directory_is_exit_2(emulator: EmulatorServer, read_only_dir: Path) -> None:
    out = read_only_dir / "dccd-data"
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-01-01", "--end",
                "2024-01-02", "--base-url", emulator.venue_url("binance"), "--out", str(out))
    assert r.code == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert "is not writable" in line and str(read_only_dir) in line, line
    assert not out.exists()


def test_an_output_path_through_a_file_is_exit_2(cli: Cli) -> None:
    blocker = cli.tmp / "a-file"
    blocker.write_text("keep me")
    cli.out = blocker / "data"
    cli.rejects(["ohlc", "--span", "1h", "--start", "2024-01-01", "--end", "2024-01-02"],
                ["binance", "BTC-USDT"], "is a file")
    assert blocker.read_text() == "keep me"


# -- sync files ----------------------------------------------------------------------------

BASE_JOB = {
    "name": '"daily"',
    "exchange": '"binance"',
    "symbols": '["BTC-USDT"]',
    "ohlc": '["1h"]',
    "start": '"2024-01-01"',
    "end": '"2024-01-02"',
    "overlap": "3",
}
TOML_VALUES = st.one_of(
    st.sampled_from(['""', '"../../etc"', '"/"', '"BTC USDT"', '["../x"]', '[1, 2]', "[[]]",
                     "-1", "1e400", "true", "2024-01-01", "1979-05-27T07:32:00Z", "{}",
                     '{a = 1}', '"\\u0000"', '"' + "x" * 10_000 + '"', '["2w"]', '"-5y"',
                     '"origin"', '["BTC-USDT", 1]', "nan", '"now"', "[]"]),
    st.integers().map(str),
    st.text(max_size=20).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
)


def config_text(job: dict[str, str], out: Path) -> str:
    lines = ["[[job]]", *(f"{k} = {v}" for k, v in job.items()),
             f'out = "{out}"', 'base_url = "http://127.0.0.1:9/binance"']
    return "\n".join(lines) + "\n"


@HYPOTHESIS
@given(mistake=st.one_of(
    st.tuples(st.just("value"), st.sampled_from(sorted(BASE_JOB)), TOML_VALUES),
    st.tuples(st.just("missing"), st.sampled_from(["exchange", "symbols", "start"]), st.just("")),
    st.tuples(st.just("unknown"), st.sampled_from(["stat", "symbol", "Exchange", "spans", "x"]),
              st.just("1")),
    st.tuples(st.just("syntax"), st.sampled_from(["[[job]", "= 1", 'exchange = "binance', "[",
                                                 "a = [1,", "\x00", "exchange = binance"]),
              st.just("")),
))
def test_a_sync_file_with_a_mistake_is_exit_2_one_line(cli: Cli, mistake: tuple[str, str, str]) -> None:
    what, key, value = mistake
    job = dict(BASE_JOB)
    if what == "value":
        job[key] = value
    elif what == "missing":
        del job[key]
    elif what == "unknown":
        job[key] = value
    text = config_text(job, cli.out)
    if what == "syntax":
        text = text.replace("[[job]]", f"[[job]]\n{key}", 1)
    path = cli.tmp / "sync.toml"
    path.write_text(text)
    try:
        load_config(path)
    except ConfigError:
        pass  # the mistake is caught: what the CLI does with it is checked below
    else:
        assume(False)  # this "mistake" made a valid file (e.g. another valid date)
    before = tree(cli.tmp, cli.cache)
    result = cli.invoke("sync", str(path), "--json")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"dccd: error: {path}:"), lines[0]
    doc = json.loads(result.stdout)  # --json: one object however the run ends
    assert (doc["ok"], doc["exit_code"], doc["error"]) == (False, 2, lines[0].removeprefix("dccd: error: "))
    assert not cli.out.exists()
    assert tree(cli.tmp, cli.cache) == before


@HYPOTHESIS
@given(data=st.binary(max_size=200))
def test_a_sync_file_of_any_bytes_never_crashes(cli: Cli, data: bytes) -> None:
    path = cli.tmp / "sync.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError:
        return
    pytest.fail(f"{data!r} was accepted as a sync file")  # no bytes make a job out of nothing


def test_symbols_and_spans_never_leave_the_dataset(tmp_path: Path) -> None:
    # Every span the CLI accepts is a plain code, never a path piece.
    for code in BINANCE_SPANS:
        assert Span.parse(code).code == code and "/" not in code and ".." not in code
