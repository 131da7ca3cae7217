"""run.request.validate: what needs no network, each refusal of its own kind (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dccd_cli.errors import BadDateError, UsageError
from dccd_cli.run.request import DownloadRequest, validate


def test_no_symbol_is_a_usage_error_not_a_date_error(tmp_path: Path) -> None:
    req = DownloadRequest("ohlc", "binance", [], "2024-01-01", None, tmp_path, spans=["1h"])
    with pytest.raises(UsageError, match="at least one symbol") as info:
        validate(req)
    assert not isinstance(info.value, BadDateError)
    assert not any(tmp_path.iterdir())
