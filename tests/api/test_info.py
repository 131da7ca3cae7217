"""The API's inventory, exchanges, markets and sync from a job file: the same objects the
CLI's ``--json`` prints, from the same declarations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from dccd_testing import run_cli

import dccd_cli as dccd
from dccd_cli.emulator import EmulatorServer
from dccd_cli.exchange.registry import adapters


def test_exchanges_are_the_adapters_declarations() -> None:
    infos = dccd.exchanges()
    assert list(infos) == list(adapters())
    for name, info in infos.items():
        assert info.to_json() == adapters()[name].describe()
        assert info.name == name and info.capabilities
    binance = infos["binance"]
    assert binance.capabilities == ("ohlc", "trades") and "1h" in binance.spans
    assert binance.ohlc is not None and binance.ohlc.max_per_request == 1000
    with pytest.raises(dataclasses.FrozenInstanceError):
        binance.name = "other"  # type: ignore[misc]


def test_exchanges_json_is_the_clis() -> None:
    cli = run_cli("exchanges", "--json")
    assert cli.code == 0
    assert json.loads(cli.stdout) == [info.to_json() for info in dccd.exchanges().values()]


def test_inventory_is_the_clis(emulator: EmulatorServer, tmp_path: Path) -> None:
    dccd.download("binance", ["BTC-USDT", "ETH-USDT"], span="1h", start="2024-01-01", end="2024-01-05",
                  out=tmp_path, base_url=emulator.venue_url("binance"))
    inv = dccd.inventory(tmp_path)
    assert [s.rows for s in inv.series] == [96, 96]
    cli = run_cli("inventory", str(tmp_path), "--json")
    assert cli.code == 0 and json.loads(cli.stdout) == inv.to_json()
    checked = dccd.inventory(str(tmp_path), verify=True)
    assert checked.verified and all(s.problems == [] for s in checked.series)
    with pytest.raises(dccd.OutputPathError):
        dccd.inventory(tmp_path / "absent")


def test_markets_are_the_clis(emulator: EmulatorServer) -> None:
    url = emulator.venue_url("binance")
    cli = run_cli("markets", "binance", "*-usdt", "--base-url", url, "--json")
    assert cli.code == 0
    assert json.loads(cli.stdout) == dccd.markets("binance", "*-usdt", base_url=url).to_json()


def test_sync_from_a_job_file_is_the_clis(emulator: EmulatorServer, tmp_path: Path) -> None:
    config = tmp_path / "sync.toml"
    config.write_text('[[job]]\nname = "hourly"\nexchange = "binance"\nsymbols = ["*-USDT"]\n'
                      'ohlc = ["1h"]\nstart = "2024-01-01"\nend = "2024-01-03"\n')
    urls = {"binance": emulator.venue_url("binance")}
    api = dccd.sync(config, out=tmp_path / "api", base_urls=urls)
    cli = run_cli("sync", str(config), "--out", str(tmp_path / "cli"), "--base-url",
                  f"binance={urls['binance']}", "--json")
    assert cli.code == 0, cli.stderr
    printed = json.loads(cli.stdout)
    got = json.loads(json.dumps(api.to_json()).replace(str(tmp_path / "api"), str(tmp_path / "cli")))
    printed.pop("seconds"), got.pop("seconds")
    assert got == printed and api.rows_added == 96
    again = dccd.sync(config, out=tmp_path / "api", base_urls=urls)  # incremental: only the overlap
    assert again.exit_code == 0 and all(s.rows_added == 0 for s in again.series)


def test_sync_dry_run_from_jobs_writes_nothing(emulator: EmulatorServer, tmp_path: Path) -> None:
    out = tmp_path / "data"
    plan = dccd.sync(jobs=[dccd.Job("binance", ["BTC-USDT"], "2024-01-01", end="2024-01-03", ohlc=["1h"])],
                     out=out, base_urls={"binance": emulator.venue_url("binance")}, dry_run=True)
    assert plan.dry_run and plan.series[0].estimate is not None and plan.series[0].estimate.rows == 48
    assert plan.to_json()["config"] is None
    assert not out.exists()
