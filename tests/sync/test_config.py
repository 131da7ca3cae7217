"""The sync file: every example in configs/ validates; every mistake is FILE:LINE, exit 2."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest
from dccd_testing import run_cli

from dccd_cli.errors import ConfigError
from dccd_cli.run.jobfile import DEFAULT_OVERLAP_BARS, load_config
from dccd_cli.timeutil import MINUTE_NS

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sync.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_the_examples_are_there() -> None:
    assert {p.name for p in CONFIGS} >= {"daily.toml", "trades-archive.toml", "pattern.toml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_example_validates_without_network(path: Path) -> None:
    config = load_config(path)
    assert config.jobs
    for job in config.jobs:
        assert job.kinds and job.symbols and job.start
    # Comments are the documentation of these files: each must explain itself.
    assert path.read_text().count("#") >= 10


def test_defaults_apply_and_a_job_overrides_them(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [defaults]
        start = "-90d"
        overlap = 5
        out = "data"

        [[job]]
        exchange = "binance"
        symbols = ["btc-usdt", "*-USDT"]
        ohlc = ["1h", "1d"]

        [[job]]
        name = "ticks"
        exchange = "Binance"
        symbols = "ETH-USDT"
        trades = true
        start = 2024-01-01
        trades_overlap = "30s"
    """)
    first, second = load_config(path).jobs
    assert first.name == "binance#1" and first.symbols == ("BTC-USDT", "*-USDT")
    assert first.kinds == [("ohlc", "1h"), ("ohlc", "1d")]
    assert first.overlap == 5 and first.out == tmp_path / "data"
    assert second.exchange == "binance" and second.start == "2024-01-01"
    assert second.kinds == [("trades", None)] and second.trades_overlap_ns == MINUTE_NS // 2
    assert first.where("overlap") == f"{path}:3"  # inherited: the line in [defaults]
    assert first.where(symbol="*-USDT") == f"{path}:8"


def test_overlap_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [[job]]
        exchange = "binance"
        symbols = ["BTC-USDT"]
        ohlc = ["1h"]
        start = "origin"
    """)
    (job,) = load_config(path).jobs
    assert job.overlap == DEFAULT_OVERLAP_BARS and job.trades_overlap_ns == MINUTE_NS


BAD = [
    # (file body, line, words the message must hold)
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstat = "-3d"\nstart = "-3d"\n',
     5, ["unknown key 'stat'", "did you mean 'start'", "allowed: name, exchange, symbols"]),
    ('[[job]]\nexchange = "nopex"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "-3d"\n',
     2, ["unknown exchange 'nopex'", "supported: binance"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = [\n  "1h",\n  "7m",\n]\nstart = "-3d"\n',
     6, ["span '7m' is not offered by binance", "it offers 1s, 1m"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["hourly"]\nstart = "-3d"\n',
     4, ["'hourly' is not a span"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "yesterday"\n',
     5, ["start 'yesterday' is not a date", "-90d"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "2024-02-01"\nend = "2024-01-01"\n',
     5, ["is not before end"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC USDT"]\nohlc = ["1h"]\nstart = "-3d"\n',
     3, ["is not of the form BASE-QUOTE"]),
    ('[[job]]\nexchange = "bybit"\nsymbols = ["BTC-USDT"]\ntrades = true\nstart = "-3d"\n',
     4, ["bybit does not serve trades"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nstart = "-3d"\n',
     1, ["asks for no data"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\n',
     1, ["start is missing"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "-3d"\noverlap = -1\n',
     6, ["overlap", "integer >= 0"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "-3d"\n[job.extra]\n',
     1, ["unknown key 'extra'"]),
    ('[defaults]\nstart = "-3d"\n[[jobs]]\nexchange = "binance"\n',
     3, ["unknown table or key 'jobs'", "did you mean 'job'"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"\n',
     3, ["not valid TOML"]),
    ('', 1, ["no [[job]] table"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "-3d"\nout = "s3://bucket/x"\n',
     6, ["out 's3://bucket/x' is a URL", "object storage is not supported yet"]),
    ('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "-3d"\nbase_url = "127.0.0.1:8765/binance"\n',
     6, ["base_url '127.0.0.1:8765/binance' is not an http(s) URL", "e.g. http://127.0.0.1:8765/binance"]),
]


@pytest.mark.parametrize("body,line,words", BAD, ids=[w[0] for _, _, w in BAD])
def test_each_mistake_is_one_error_with_file_and_line(tmp_path: Path, body: str, line: int, words: list[str]) -> None:
    path = tmp_path / "sync.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    first = str(err.value).splitlines()[0]
    assert first.startswith(f"{path}:{line}: "), first
    for word in words:
        assert word in first, first


def test_several_mistakes_are_each_named_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [[job]]
        exchange = "nopex"
        symbols = ["BTC-USDT"]
        ohlc = ["1h"]
        start = "-3d"

        [[job]]
        exchange = "binance"
        symbols = ["BTC-USDT"]
        ohlc = ["5h"]
        start = "-3d"
    """)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert [ln.split(":")[1] for ln in lines] == ["2", "10"]


def test_bad_config_exits_2_before_any_request(tmp_path: Path) -> None:
    # The base URL is a closed port: had dccd sent anything, it would have retried and then
    # failed with exit 1 much later. Exit 2 at once proves nothing was sent.
    out = tmp_path / "out"
    path = write(tmp_path, f"""
        [[job]]
        exchange = "binance"
        symbols = ["BTC-USDT"]
        ohlc = ["1h", "2w"]
        start = "-3d"
        out = "{out}"
        base_url = "http://127.0.0.1:9/binance"
    """)
    t0 = time.monotonic()
    r = run_cli("sync", str(path), "--json")
    assert r.code == 2, (r.code, r.stderr)
    assert time.monotonic() - t0 < 20
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"dccd: error: {path}:4: ") and "span '2w' is not offered by binance" in line
    doc = json.loads(r.stdout)  # --json: one object however the run ends
    assert (doc["ok"], doc["exit_code"], doc["error"]) == (False, 2, line.removeprefix("dccd: error: "))
    assert not out.exists()


def test_missing_default_file_is_a_clear_usage_error(tmp_path: Path) -> None:
    r = run_cli("sync", env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert r.code == 2
    assert str(tmp_path / "cfg" / "dccd" / "sync.toml") in r.stderr and "no such sync file" in r.stderr


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_example_plans_against_the_emulator(path: Path) -> None:
    # --emulate: an in-process emulator on the real clock; the plan needs its market lists
    # (every symbol and pattern must resolve) and clocks, and fetches no data.
    r = run_cli("sync", str(path), "--emulate", "--dry-run", "--json")
    assert r.code == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["dry_run"] and plan["series"] and plan["requests"] == 0
    assert all(s["error"] is None for s in plan["series"])
