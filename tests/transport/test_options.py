"""HTTPOptions: read from the DCCD_HTTP_* variables, or given to the client explicitly."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dccd_cli.errors import ServerError, UsageError
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.net.options import HTTPOptions


def test_the_environment_sets_them_and_the_rest_are_defaults() -> None:
    env = {"DCCD_HTTP_TIMEOUT": "2.5", "DCCD_HTTP_RETRIES": " 1 ", "DCCD_HTTP_BACKOFF": ""}
    assert HTTPOptions.from_env(env) == HTTPOptions(timeout=2.5, max_retries=1)
    assert HTTPOptions.from_env({}) == HTTPOptions()
    assert HTTPOptions.from_env({"DCCD_HTTP_RETRIES": "2"}, max_retries=5).max_retries == 5


@pytest.mark.parametrize("var,raw,unit", [
    ("DCCD_HTTP_TIMEOUT", "0", "a positive number of seconds"),
    ("DCCD_HTTP_TIMEOUT", "soon", "a positive number of seconds"),
    ("DCCD_HTTP_BACKOFF", "-1", "a positive number of seconds"),
    ("DCCD_HTTP_BACKOFF", "inf", "a positive number of seconds"),
    ("DCCD_HTTP_RETRIES", "1.5", "a whole number"),
])
def test_a_bad_variable_is_named(var: str, raw: str, unit: str) -> None:
    with pytest.raises(UsageError, match=f"^{var}='{raw}' is not valid; give {unit}$"):
        HTTPOptions.from_env({var: raw})


@pytest.mark.parametrize("given", [{"timeout": 0}, {"max_retries": -1}, {"max_retries": 1.5},
                                   {"backoff_base": float("nan")}, {"max_rate_limit_waits": True}])
def test_a_bad_explicit_option_is_named(given: dict[str, float]) -> None:
    (name, value), = given.items()
    with pytest.raises(UsageError, match=f"^HTTP option {name}={value!r} is not valid"):
        HTTPOptions(**given)  # type: ignore[arg-type]


def failing(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503)

    return httpx.MockTransport(handler)


async def test_a_client_takes_them_explicitly_without_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCCD_HTTP_RETRIES", "5")
    seen: list[httpx.Request] = []
    options = HTTPOptions(timeout=3.0, max_retries=2, backoff_base=0.0)
    async with AsyncHTTPClient("x", "https://x.test", options=options, transport=failing(seen)) as c:
        assert c.options is options
        with pytest.raises(ServerError, match="gave up after 2 retries"):
            await c.get("/a")
    assert len(seen) == 3
    one = AsyncHTTPClient("x", "https://x.test", options=options, max_retries=0, transport=failing(seen))
    assert one.options == HTTPOptions(timeout=3.0, max_retries=0, backoff_base=0.0)  # one overridden
    await one.aclose()


async def test_a_shared_client_reads_the_environment_unless_given_options(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCCD_HTTP_RETRIES", "1")
    monkeypatch.setenv("DCCD_HTTP_BACKOFF", "0")
    seen: list[httpx.Request] = []
    async with AsyncHTTPClient.shared("x", "https://x.test", transport=failing(seen)) as c:
        assert c.options == HTTPOptions(max_retries=1, backoff_base=0.0)
        with pytest.raises(ServerError, match="gave up after 1 retries"):
            await c.get("/a")
    assert len(seen) == 2
    given = HTTPOptions(max_retries=0)
    async with AsyncHTTPClient.shared("x", "https://x.test", options=given, transport=failing(seen)) as c:
        assert c.options is given


def test_a_bad_variable_stops_a_shared_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCCD_HTTP_TIMEOUT", "-3")

    async def acquire() -> None:
        async with AsyncHTTPClient.shared("x", "https://x.test"):
            pass

    with pytest.raises(UsageError, match="DCCD_HTTP_TIMEOUT='-3'"):
        asyncio.run(acquire())
