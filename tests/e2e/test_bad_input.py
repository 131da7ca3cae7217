"""Bad input: one clear line naming the problem and what is accepted, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from dccd_testing import run_cli

from dccd_cli.emulator import EmulatorServer


@pytest.mark.parametrize(
    "args,needle",
    [
        (("ohlc", "binance", "NOPE-USDT", "--span", "1h", "--start", "2024-01-01"), "unknown symbol 'NOPE-USDT'"),
        (("ohlc", "nopex", "BTC-USDT", "--span", "1h", "--start", "2024-01-01"), "unknown exchange 'nopex'; supported: binance"),
        (("ohlc", "binance", "BTC-USDT", "--span", "7m", "--start", "2024-01-01"), "span '7m' is not offered by binance; it offers 1s, 1m"),
        (("ohlc", "binance", "BTC-USDT", "--span", "hourly", "--start", "2024-01-01"), "is not a span"),
        (("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-02-01", "--end", "2024-01-01"), "--start 2024-02-01 is not before --end 2024-01-01"),
        (("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "yesterday"), "start 'yesterday' is not a date"),
        (("trades", "binance", "BTC-USDT", "--start", "2024-01-01", "--end", "01/02/2024"), "end '01/02/2024' is not a date"),
        (("trades", "binance", "../../etc", "--start", "2024-01-01"), "is not of the form BASE-QUOTE"),
        (("trades", "binance", "BTC USDT", "--start", "2024-01-01"), "is not of the form BASE-QUOTE"),
        (("trades", "binance", "BTC-USDT" * 50, "--start", "2024-01-01"), "is not of the form BASE-QUOTE"),
        (("trades", "binance", "BTC-USDT", "--start", "2030-01-01"),
         "--start 2030-01-01 is not before the exchange's now, 2024-03-01T00:30Z"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    emulator: EmulatorServer, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    out = tmp_path / "out"
    r = run_cli(*args, "--base-url", emulator.venue_url("binance"), "--out", str(out))
    assert r.code == 2, (r.code, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0], lines[0]
    assert lines[0].startswith("dccd: error: ")
    assert not out.exists()
    assert r.stdout == ""


def test_unwritable_output_directory(emulator: EmulatorServer, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("not a directory")
    r = run_cli("ohlc", "binance", "BTC-USDT", "--span", "1h", "--start", "2024-01-01", "--end", "2024-01-02",
                "--base-url", emulator.venue_url("binance"), "--out", str(target / "data"))
    assert r.code == 2
    assert "is a file; --out must name a directory" in r.stderr
    assert target.read_text() == "not a directory"


@pytest.mark.parametrize("args, line", [
    (["frobnicate"], "dccd: error: No such command 'frobnicate'; see 'dccd --help'"),
    (["ohlc", "binance", "BTC-USDT", "--spn", "1h", "--start", "2024-01-01"],
     "dccd: error: No such option: --spn (Possible options: --end, --json, --span); "
     "see 'dccd ohlc --help'"),
])
def test_a_mistyped_command_or_flag_is_one_line(args: list[str], line: str, tmp_path: Path) -> None:
    r = run_cli(*args, "--out", str(tmp_path / "out"))
    assert r.code == 2
    assert r.stderr.splitlines() == [line]  # one line naming the fault and where help is
    assert not (tmp_path / "out").exists()
