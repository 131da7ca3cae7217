"""The README's first Python example runs offline as written (against the in-process
emulator), in a fresh directory, and prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def first_python_block() -> str:
    found = re.search(r"^```python\n(.*?)^```$", README.read_text(encoding="utf-8"), re.S | re.M)
    assert found, "the README has a python example"
    return found.group(1)


def test_the_first_python_example_runs_as_written(tmp_path: Path) -> None:
    code = first_python_block()
    assert "emulate=True" in code  # it needs no network
    env = {**os.environ, "DCCD_CACHE_DIR": str(tmp_path / "cache"), "DCCD_DATA_DIR": str(tmp_path / "default")}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=300, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    said = re.findall(r"^print\(.*\)\s+# (\d+)", code, re.M)  # what its comments promise
    assert said, "its comments say what it prints"
    assert run.stdout.split() == said, (run.stdout, said)
    assert run.stderr == ""  # the library prints nothing
    assert (tmp_path / "data" / "ohlc" / "exchange=binance").is_dir()
    assert (tmp_path / "data" / "trades" / "exchange=binance").is_dir()
