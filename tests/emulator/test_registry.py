"""Venues register through the ``dccd.venues`` entry points, a third party's like ours.

The third-party venue here is a real distribution on ``sys.path`` (a ``.dist-info`` with
its ``entry_points.txt`` and the module it names), found by ``importlib.metadata`` the way
an installed plugin is; it answers through the Venue base's one template.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from venue_client import NOW

from dccd_cli.emulator import EmulatorServer, EmulatorSettings, Venue
from dccd_cli.emulator.venues import VenueLoadError, clear_cache, venue_class, venue_names, venues

TOY = '''
from typing import Any

from dccd_cli.emulator.venue import Headers, Refused, Request, Response, Route, Venue, route


class ToyError(Exception):
    pass


class ToyVenue(Venue[ToyError]):
    name = "toyx"
    defaults: dict[str, Any] = {"limit": 1000}
    not_found = Response.json({"err": "no such path"}, 404)
    error_type = ToyError
    strict_limits = {"limit": 1}

    def admit(self, request: Request, matched: Route | None) -> Headers:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > self.settings["limit"]:
            raise Refused(Response.json({"err": "slow down"}, 429))
        return [("X-Calls", str(self.calls))]

    def error_reply(self, exc: ToyError) -> Response:
        return Response.json({"err": str(exc)}, 400)

    def envelope(self, result: Any) -> Any:
        return {"ok": result}

    def error_in_200(self) -> Any:
        return {"err": "toy maintenance"}

    @route("/rows/{pair}", data=True)
    async def rows(self, params: dict[str, list[str]], pair: str) -> Any:
        if pair == "bad":
            raise ToyError("unknown pair")
        return [[pair, 1], [pair, 2]]

    @route("/listing")
    async def listing(self, params: dict[str, list[str]]) -> Any:
        return [["a"], ["b"]]
'''


def _distribution(root: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for module, text in modules.items():
        (root / f"{module}.py").write_text(text)


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path`` for distributions; the registry is read afresh."""
    monkeypatch.syspath_prepend(str(tmp_path))
    clear_cache()
    yield tmp_path
    monkeypatch.undo()
    for module in [m for m in sys.modules if m.startswith("dccd_plugin_")]:
        del sys.modules[module]
    clear_cache()


def test_a_third_party_venue_is_mounted_and_answers_through_the_template(
        plugin_path: Path) -> None:
    _distribution(plugin_path, "dccd_toyx", "[dccd.venues]\ntoyx = dccd_plugin_toy:ToyVenue\n",
                  {"dccd_plugin_toy": TOY})
    assert "toyx" in venue_names()
    assert "dccd_plugin_toy" not in sys.modules  # listing the names imports nothing
    with EmulatorServer(EmulatorSettings(now=NOW, trades_scale=0.02)) as emu:
        url = emu.venue_url("toyx")
        ok = httpx.get(url + "/rows/ab")
        assert ok.status_code == 200 and ok.json() == {"ok": [["ab", 1], ["ab", 2]]}
        assert ok.headers["X-Calls"] == "1"
        refused = httpx.get(url + "/rows/bad")
        assert refused.status_code == 400 and refused.json() == {"err": "unknown pair"}
        assert refused.headers["X-Calls"] == "2"
        missing = httpx.get(url + "/nowhere")  # unknown: not charged (charge_unknown False)
        assert missing.status_code == 404 and missing.json() == {"err": "no such path"}
        assert "X-Calls" not in missing.headers
        assert httpx.post(url + "/listing").status_code == 404  # GET only
    with EmulatorServer(EmulatorSettings(now=NOW, trades_scale=0.02,
                                         venues={"toyx": {"limit": 1}})) as emu:
        url = emu.venue_url("toyx")
        assert httpx.get(url + "/listing").status_code == 200
        slow = httpx.get(url + "/listing")
        assert slow.status_code == 429 and slow.json() == {"err": "slow down"}


def test_row_faults_touch_the_routes_a_venue_declares_data_pages(plugin_path: Path) -> None:
    _distribution(plugin_path, "dccd_toyx", "[dccd.venues]\ntoyx = dccd_plugin_toy:ToyVenue\n",
                  {"dccd_plugin_toy": TOY})
    settings = EmulatorSettings(now=NOW, trades_scale=0.02, faults="toyx=empty")
    with EmulatorServer(settings) as emu:
        url = emu.venue_url("toyx")
        assert httpx.get(url + "/rows/ab").json() == {"ok": []}  # data=True: emptied
        assert httpx.get(url + "/listing").json() == {"ok": [["a"], ["b"]]}  # untouched
        emu.faults.configure({"toyx": "error200"})
        said = httpx.get(url + "/listing")
        assert said.status_code == 200 and said.json() == {"err": "toy maintenance"}


def test_a_venue_subclass_keeps_the_routes_of_the_methods_it_overrides(
        plugin_path: Path) -> None:
    child = TOY + textwrap.dedent('''
        class ToyTwoVenue(ToyVenue):
            name = "toyy"

            async def listing(self, params: dict[str, list[str]]) -> Any:
                return [["z"]]
        ''')
    _distribution(plugin_path, "dccd_toyy",
                  "[dccd.venues]\ntoyy = dccd_plugin_toy2:ToyTwoVenue\n",
                  {"dccd_plugin_toy2": child})
    with EmulatorServer(EmulatorSettings(now=NOW, trades_scale=0.02)) as emu:
        url = emu.venue_url("toyy")
        assert httpx.get(url + "/listing").json() == {"ok": [["z"]]}
        assert httpx.get(url + "/rows/ab").json() == {"ok": [["ab", 1], ["ab", 2]]}


@pytest.mark.parametrize("target,module,why", [
    ("dccd_plugin_broken:ToyVenue", "raise RuntimeError('half-written')\n", "half-written"),
    ("dccd_plugin_broken:Nothing", "X = 1\n", "Nothing"),
    ("dccd_plugin_broken:X", "X = 1\n", "is not a dccd emulator Venue class"),
    ("dccd_plugin_broken:ToyVenue", TOY, "calls itself 'toyx'"),
])
def test_a_broken_venue_is_a_clear_error_not_an_absence(plugin_path: Path, target: str,
                                                         module: str, why: str) -> None:
    _distribution(plugin_path, "dccd_broken", f"[dccd.venues]\nbroken = {target}\n",
                  {"dccd_plugin_broken": module})
    assert "broken" in venue_names()
    with pytest.raises(VenueLoadError) as caught:
        venue_class("broken")
    text = str(caught.value)
    assert text.startswith(f"venue 'broken' ({target})") and why in text
    with pytest.raises(VenueLoadError):
        EmulatorServer(EmulatorSettings(now=NOW))


def test_a_server_imports_the_venues_it_reads_only() -> None:
    code = ("import sys\n"
            "from dccd_cli.emulator.venues import venue_class, venue_names\n"
            "assert 'binance' in venue_names()\n"
            "loaded = lambda: sorted(m for m in sys.modules\n"
            "                        if m.startswith('dccd_cli.emulator.venues.'))\n"
            "assert loaded() == [], loaded()\n"
            "venue_class('kraken')\n"
            "print(loaded())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['dccd_cli.emulator.venues.kraken', " \
                          "'dccd_cli.emulator.venues.kraken_format']"


def test_a_server_mounts_and_imports_only_the_venues_it_is_asked_for() -> None:
    code = ("import sys\n"
            "from dccd_cli.emulator import EmulatorServer, EmulatorSettings\n"
            "import httpx\n"
            "with EmulatorServer(EmulatorSettings(mount=('okx',), trades_scale=0.02)) as emu:\n"
            "    print(httpx.get(emu.base_url + '/_emulator/health').json()['venues'])\n"
            "    print(httpx.get(emu.base_url + '/binance/api/v3/time').status_code)\n"
            "print(sorted(m for m in sys.modules if m.startswith('dccd_cli.emulator.venues.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["['okx']", "404", "['dccd_cli.emulator.venues.okx', "
                   "'dccd_cli.emulator.venues.query']"]
    with pytest.raises(ValueError, match="no venue to mount named \\['nowhere'\\]"):
        EmulatorServer(EmulatorSettings(mount=("binance", "nowhere")))


@pytest.mark.parametrize("name", venue_names())
def test_every_registered_venue_declares_what_the_emulator_needs(name: str) -> None:
    cls = venues()[name]
    assert cls.name == name
    assert cls.error_in_200 is not Venue.error_in_200, "error200 in the exchange's own words"
    assert cls.error_reply is not Venue.error_reply
    assert cls.strict_limits is not None and set(cls.strict_limits) <= set(cls.defaults)
    assert any(r.data for r in (*cls._exact.values(), *cls._patterned)), "no data page"
