"""``dccd_cli``'s public surface: ``__all__`` names every public name, sorted, each
resolves, and ``import dccd_cli`` imports none of the modules behind them."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import dccd_cli


def _public_names() -> set[str]:
    # Every name the package offers, loaded or not: a module's own globals and what its
    # lazy __getattr__ serves (dir()); submodules are reached as modules, not members.
    return {name for name in dir(dccd_cli)
            if not name.startswith("_") and not isinstance(getattr(dccd_cli, name), ModuleType)}


def test_all_is_sorted() -> None:
    assert dccd_cli.__all__ == sorted(dccd_cli.__all__)
    assert len(set(dccd_cli.__all__)) == len(dccd_cli.__all__)


def test_all_is_complete() -> None:
    assert _public_names() <= set(dccd_cli.__all__), sorted(_public_names() - set(dccd_cli.__all__))


def test_every_name_resolves() -> None:
    for name in dccd_cli.__all__:
        assert getattr(dccd_cli, name) is not None, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        dccd_cli.paginate_ohlc  # noqa: B018  (an internal, not re-exported)
    except AttributeError as exc:
        assert "paginate_ohlc" in str(exc)
    else:
        raise AssertionError("an internal name is re-exported")


def test_the_internals_are_not_exported() -> None:
    for name in ("paginate_ohlc", "paginate_trades", "TokenBucket", "SeriesWriter", "Ledger",
                 "AsyncHTTPClient", "run_download", "take_inventory"):
        assert name not in dccd_cli.__all__


def test_import_is_lazy() -> None:
    code = ("import sys, dccd_cli; heavy = [m for m in ('pyarrow', 'httpx', 'dccd_cli.api', "
            "'dccd_cli.run.download', 'typer') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
