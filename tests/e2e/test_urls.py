"""URLs where dccd takes a directory or an exchange's API root: an object-store URL given as
the output is refused (no folder named ``s3:``), a base URL without a scheme is refused at
once (no retries against a host that cannot exist), and a base URL that answers 404 for
the market list is named as the wrong URL it is. Each: one line, exit 2, nothing written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dccd_testing import files_under, run_cli

from dccd_cli.emulator import EmulatorServer

OHLC = ("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-02-01", "--end", "2024-02-02")
TRADES = ("trades", "binance", "BTC-USDT", "--start", "2024-02-01", "--end", "2024-02-01T01:00")


def _one_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dccd: error: "), lines[0]
    return lines[0]


def _sync_file(tmp_path: Path, emulator: EmulatorServer, extra: str = "") -> Path:
    path = tmp_path / "sync.toml"
    path.write_text(f'[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\n'
                    f'start = "-1d"\nbase_url = "{emulator.venue_url("binance")}"\n{extra}')
    return path


@pytest.mark.parametrize("url", ["s3://bucket/prefix", "gs://bucket/x", "az://container/x",
                                 "file:///data/crypto"])
def test_a_url_as_the_output_is_refused_and_nothing_is_created(
    emulator: EmulatorServer, tmp_path: Path, url: str
) -> None:
    r = run_cli(*OHLC, "--base-url", emulator.venue_url("binance"), "--out", url, cwd=tmp_path)
    assert r.code == 2, r.stderr
    line = _one_error(r.stderr)
    assert f"--out {url!r} is a URL; dccd writes to a local directory only" in line
    if url.startswith("file:"):
        assert "give the path itself: /data/crypto" in line
    else:
        assert "object storage is not supported yet" in line
    assert files_under(tmp_path) == [], "a folder like 's3:' was created"


def test_every_command_refuses_an_output_url(emulator: EmulatorServer, tmp_path: Path) -> None:
    url = emulator.venue_url("binance")
    config = _sync_file(tmp_path, emulator)
    runs = {
        "trades --out": run_cli(*TRADES, "--base-url", url, "--out", "s3://b/p", cwd=tmp_path),
        "sync --out": run_cli("sync", str(config), "--out", "s3://b/p", cwd=tmp_path),
        "inventory DIR": run_cli("inventory", "s3://b/p", cwd=tmp_path),
        "DCCD_DATA_DIR": run_cli(*OHLC, "--base-url", url, env={"DCCD_DATA_DIR": "s3://b/p"}, cwd=tmp_path),
    }
    for what, r in runs.items():
        assert r.code == 2, (what, r.stderr)
        assert "'s3://b/p' is a URL" in _one_error(r.stderr), what
    assert files_under(tmp_path) == [config]


def test_a_base_url_without_a_scheme_is_refused_at_once(emulator: EmulatorServer, tmp_path: Path) -> None:
    bare = emulator.venue_url("binance").removeprefix("http://")
    config = tmp_path / "sync.toml"
    config.write_text('[[job]]\nexchange = "binance"\nsymbols = ["BTC-USDT"]\nohlc = ["1h"]\nstart = "-1d"\n')
    t0 = time.monotonic()
    runs = {
        "ohlc": run_cli(*OHLC, "--base-url", bare, "--out", str(tmp_path / "out")),
        "sync": run_cli("sync", str(config), "--base-url", f"binance={bare}", "--out", str(tmp_path / "out")),
        "markets": run_cli("markets", "binance", "--base-url", bare),
    }
    # Before, the ohlc run retried "http://127.0.0.1:.../binance" as host ":80" for ~20 s.
    assert time.monotonic() - t0 < 8
    assert runs["ohlc"].code == 2, runs["ohlc"].stderr
    assert (f"--base-url {bare!r} is not an http(s) URL; give the exchange's API root with its "
            "scheme, e.g. http://127.0.0.1:8765/binance") in _one_error(runs["ohlc"].stderr)
    assert runs["sync"].code == 2, runs["sync"].stderr
    assert f"--base-url 'binance={bare}' is not EXCHANGE=URL" in _one_error(runs["sync"].stderr)
    assert runs["markets"].code == 2, runs["markets"].stderr
    assert f"--base-url {bare!r} is not an http(s) URL" in _one_error(runs["markets"].stderr)
    assert not (tmp_path / "out").exists()


def test_a_base_url_answering_404_for_the_market_list_is_named(emulator: EmulatorServer, tmp_path: Path) -> None:
    wrong = emulator.base_url.rstrip("/") + "/binanse"
    r = run_cli(*OHLC, "--base-url", wrong, "--out", str(tmp_path / "out"))
    assert r.code == 2, r.stderr
    line = _one_error(r.stderr)
    assert f"--base-url {wrong}: {wrong}/api/v3/exchangeInfo answered HTTP 404" in line
    assert "binance's market list was expected; is it the exchange's API root" in line
    m = run_cli("markets", "binance", "--base-url", wrong)
    assert m.code == 2, m.stderr
    assert f"{wrong}/api/v3/exchangeInfo answered HTTP 404 where binance's market list" in _one_error(m.stderr)
    config = _sync_file(tmp_path, emulator).read_text().replace(emulator.venue_url("binance"), wrong)
    (tmp_path / "sync.toml").write_text(config)
    s = run_cli("sync", str(tmp_path / "sync.toml"), "--out", str(tmp_path / "out"))
    assert s.code == 2, s.stderr
    assert f"{tmp_path / 'sync.toml'}:6: [[job]] 'binance#1': base_url '{wrong}': " in _one_error(s.stderr)
    assert not list((tmp_path / "out").rglob("*.parquet"))  # (sync holds its lock file while planning)
