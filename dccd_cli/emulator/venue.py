"""The emulator's small HTTP vocabulary: requests, responses, the clock, the venue base.

No web framework: the ASGI app in :mod:`.server` turns each HTTP exchange into a
:class:`Request`, hands it to a :class:`Venue`, and sends back its :class:`Response`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from dccd_cli.emulator.market import MarketModel


class Clock:
    """The market's 'now': real time, or a fixed instant that only moves when told.

    ``advance`` moves a fixed clock, or offsets real time when the clock is not fixed.
    """

    def __init__(self, fixed_ns: int | None = None) -> None:
        self._lock = threading.Lock()
        self._fixed = fixed_ns
        self._offset = 0

    def now_ns(self) -> int:
        with self._lock:
            if self._fixed is not None:
                return self._fixed
            return time.time_ns() + self._offset

    @property
    def fixed(self) -> bool:
        return self._fixed is not None

    def set(self, now_ns: int | None) -> None:
        """Freeze the clock at ``now_ns``, or back to real time with ``None``."""
        with self._lock:
            self._fixed = now_ns
            self._offset = 0

    def advance(self, seconds: float) -> None:
        with self._lock:
            step = int(seconds * 1e9)
            if self._fixed is not None:
                self._fixed += step
            else:
                self._offset += step

    def snapshot(self) -> dict[str, Any]:
        return {"now_ns": self.now_ns(), "fixed": self.fixed}


@dataclass
class Request:
    """One HTTP request, its path relative to the venue prefix (``/api/v3/klines``)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str] = field(default_factory=dict)
    client: str = "127.0.0.1"
    body: bytes = b""

    @classmethod
    def from_scope(cls, scope: dict[str, Any], path: str, body: bytes) -> Request:
        raw = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        client = scope.get("client") or ("127.0.0.1", 0)
        return cls(method=scope["method"], path=path,
                   query=parse_qsl(raw, keep_blank_values=True), headers=headers,
                   client=str(client[0]), body=body)

    def params(self) -> dict[str, list[str]]:
        """Query parameters by name, every value kept (venues reject duplicates)."""
        out: dict[str, list[str]] = {}
        for k, v in self.query:
            out.setdefault(k, []).append(v)
        return out

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else {}


@dataclass
class Response:
    """One HTTP response; ``headers`` are extra headers (Date and length are added)."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json;charset=UTF-8"

    @classmethod
    def json(cls, obj: Any, status: int = 200,
             headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(status=status, body=orjson.dumps(obj), headers=list(headers or []))


class Venue:
    """Base of an emulated exchange: one instance per server, mounted at ``/<name>``.

    ``settings`` are the venue's own options (``EmulatorSettings.venues[name]``) over
    ``defaults``; unknown keys are rejected so that a typo does not pass silently.
    """

    name = "venue"
    defaults: dict[str, Any] = {}

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        unknown = set(settings) - set(self.defaults)
        if unknown:
            raise ValueError(f"unknown {self.name} settings: {sorted(unknown)}; "
                             f"known: {sorted(self.defaults)}")
        self.market = market
        self.clock = clock
        self.settings = {**self.defaults, **settings}

    async def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget rate-limit state (bans, used weight)."""

