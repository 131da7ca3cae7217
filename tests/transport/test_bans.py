"""Bans remembered across runs (dccd_cli.net.bans) and how a new client honours them."""

from __future__ import annotations

import json

import httpx
import pytest

from dccd_cli.errors import BannedError
from dccd_cli.net.bans import UNKNOWN_BAN_S, active, ban_file, remember
from dccd_cli.net.client import AsyncHTTPClient

T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z
BASE = "https://api.test"


def test_a_ban_is_kept_until_it_ends_then_forgotten() -> None:
    ban = remember("binance", BASE, 120, "banned", now=T0)
    assert ban.until == "2024-01-01T00:02Z" and ban.known
    doc = json.loads(ban_file("binance", BASE).read_text())
    assert doc["until"] == "2024-01-01T00:02Z" and doc["exchange"] == "binance" and doc["base_url"] == BASE
    assert active("binance", BASE, now=T0 + 119) == ban
    assert active("binance", BASE + "/", now=T0 + 1) == ban  # a trailing slash is the same URL
    assert active("binance", "http://127.0.0.1:8765/binance", now=T0 + 1) is None  # another endpoint
    assert active("kraken", BASE, now=T0 + 1) is None
    assert active("binance", BASE, now=T0 + 120) is None
    assert not ban_file("binance", BASE).exists(), "an expired record is removed"


def test_a_ban_without_an_end_is_remembered_for_the_default_time() -> None:
    ban = remember("bybit", BASE, None, "banned", now=T0)
    assert not ban.known and ban.until_s == T0 + UNKNOWN_BAN_S
    assert "for a time it did not say; dccd asks it nothing until 2024-01-01T00:10Z" in ban.refusal()


def test_an_unreadable_record_is_ignored() -> None:
    path = ban_file("binance", BASE)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert active("binance", BASE, now=T0) is None


def _client(handler: httpx.MockTransport, now: list[float]) -> AsyncHTTPClient:
    return AsyncHTTPClient("binance", BASE, transport=handler, clock=lambda: now[0],
                           wall_clock=lambda: now[0])


async def test_a_new_client_sends_nothing_while_an_earlier_ban_holds() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(418, headers={"Retry-After": "300"})
        return httpx.Response(200, json=[])

    now = [T0]
    first = _client(httpx.MockTransport(handler), now)
    with pytest.raises(BannedError):
        await first.get_json("/x")
    await first.aclose()

    now[0] = T0 + 100  # a later run, within the ban
    later = _client(httpx.MockTransport(handler), now)
    with pytest.raises(BannedError) as info:
        await later.get_json("/y")
    assert len(seen) == 1, "nothing is sent while the remembered ban holds"
    assert str(info.value) == ("binance has banned this IP until 2024-01-01T00:05Z (remembered "
                               "from an earlier run); nothing was requested")
    assert info.value.retry_after == pytest.approx(200)
    now[0] = T0 + 301  # the ban has ended while this run waited
    assert await later.get_json("/z") == []
    await later.aclose()

    now[0] = T0 + 400  # and the next run does not know it any more
    assert active("binance", BASE, now=now[0]) is None
