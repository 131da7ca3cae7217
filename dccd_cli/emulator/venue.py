"""The emulator's small HTTP vocabulary: requests, responses, the clock, the venue base.

No web framework: the ASGI app in :mod:`.server` turns each HTTP exchange into a
:class:`Request`, hands it to a :class:`Venue`, and sends back its :class:`Response`.
Every venue answers through one template, :meth:`Venue.handle`; a venue declares its
routes (:func:`route`), its rate limits (:meth:`Venue.admit`), its 404, error and
success bodies, and the exchange's own facts and quirks in its handlers.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar
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


Headers = list[tuple[str, str]]
Handler = Callable[..., Awaitable[Any]]
H = TypeVar("H", bound=Handler)
E = TypeVar("E", bound=Exception)
_ROUTES = "_dccd_routes"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\*?)\}")


def route(*patterns: str, data: bool = False) -> Callable[[H], H]:
    """Declare a venue method the handler of ``patterns``, paths relative to the venue
    (``/api/v3/klines``).

    ``{name}`` matches one path segment and ``{name*}`` the rest of the path (one
    character at least); each reaches the handler as a keyword argument, after the
    venue's parsed query (:meth:`Venue.query`). ``data=True`` marks a data page (candles,
    trades): the pages whose rows the row faults of :mod:`.faults` rewrite.
    """

    def mark(handler: H) -> H:
        marks: list[tuple[str, bool]] = getattr(handler, _ROUTES, [])
        setattr(handler, _ROUTES, [*marks, *((p, data) for p in patterns)])
        return handler

    return mark


@dataclass(frozen=True)
class Route:
    """One declared path: its pattern, handler (a venue method) and whether it is a data
    page; ``regex`` is None for a literal path."""

    pattern: str
    handler: Handler
    data: bool
    regex: re.Pattern[str] | None

    @classmethod
    def compile(cls, pattern: str, handler: Handler, data: bool) -> Route:
        if "{" not in pattern:
            return cls(pattern, handler, data, None)
        out, at = [], 0
        for m in _PLACEHOLDER.finditer(pattern):
            out.append(re.escape(pattern[at:m.start()]))
            out.append(f"(?P<{m[1]}>{'.+' if m[2] else '[^/]+'})")
            at = m.end()
        out.append(re.escape(pattern[at:]))
        return cls(pattern, handler, data, re.compile("".join(out)))


class Refused(Exception):
    """Raised by :meth:`Venue.admit`: the request is answered with ``response`` (the
    venue's rate-limit or ban reply) and its handler is not called."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _with_headers(response: Response, headers: Headers) -> Response:
    if not headers:
        return response
    return Response(response.status, response.body, headers + response.headers,
                    response.content_type)


class Venue(Generic[E]):
    """Base of an emulated exchange: one instance per server, mounted at ``/<name>``.

    ``settings`` are the venue's own options (``EmulatorSettings.venues[name]``) over
    ``defaults``; unknown keys are rejected so that a typo does not pass silently.

    A venue declares, beside its handlers (:func:`route`):

    * ``methods``, ``trailing_slash``: the HTTP methods it serves, and whether a path
      may end in ``/``;
    * ``not_found``: its reply to an unknown path or method;
    * ``charge_unknown``: whether an unknown path still counts against its rate limit;
    * :meth:`admit` (its rate limits), :meth:`query` (how it reads parameters),
      ``error_type`` with :meth:`error_reply` (the exception its handlers raise to refuse
      a request, and the reply it becomes), :meth:`envelope` (the success body around a
      handler's result) and :meth:`error_in_200` (the ``error200`` fault's body);
    * ``strict_limits``: settings under which the venue is stricter than the exchange's
      documented limit, so that a client pacing itself by the documented limit meets the
      venue's rate-limit reply; ``limit_reply_is_ban``: that reply is a ban longer than a
      client should wait out.
    """

    name = "venue"
    defaults: dict[str, Any] = {}
    methods: ClassVar[tuple[str, ...]] = ("GET",)
    trailing_slash: ClassVar[bool] = False
    charge_unknown: ClassVar[bool] = False
    not_found: ClassVar[Response] = Response(404, b"", content_type="text/plain")
    error_type: type[E]
    strict_limits: ClassVar[dict[str, Any] | None] = None
    limit_reply_is_ban: ClassVar[bool] = False
    _exact: ClassVar[dict[str, Route]] = {}
    _patterned: ClassVar[tuple[Route, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        exact: dict[str, Route] = {}
        patterned: dict[str, Route] = {}
        names = dict.fromkeys(n for klass in reversed(cls.__mro__) for n in vars(klass))
        for attr in names:
            handler = getattr(cls, attr, None)
            if not callable(handler):
                continue
            # A method overridden without @route keeps the routes its base declared.
            marks = next((getattr(vars(k)[attr], _ROUTES) for k in cls.__mro__
                          if hasattr(vars(k).get(attr), _ROUTES)), ())
            for pattern, data in marks:
                if pattern in exact or pattern in patterned:
                    raise TypeError(f"{cls.__name__}: route {pattern!r} declared twice")
                r = Route.compile(pattern, handler, data)
                (exact if r.regex is None else patterned)[pattern] = r
        cls._exact, cls._patterned = exact, tuple(patterned.values())

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        unknown = set(settings) - set(self.defaults)
        if unknown:
            raise ValueError(f"unknown {self.name} settings: {sorted(unknown)}; "
                             f"known: {sorted(self.defaults)}")
        self.market = market
        self.clock = clock
        self.settings = {**self.defaults, **settings}

    # -- the template ---------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Find the route, charge the rate limit, call the handler, wrap its answer."""
        found = self.match(request.path) if request.method in self.methods else None
        headers: Headers = []
        if found is not None or self.charge_unknown:
            try:
                headers = self.admit(request, found[0] if found is not None else None)
            except Refused as refusal:
                return refusal.response
        if found is None:
            return _with_headers(self.not_found, headers)
        matched, args = found
        try:
            result = await matched.handler(self, self.query(request), **args)
        except self.error_type as exc:
            return _with_headers(self.error_reply(exc), headers)
        if isinstance(result, Response):  # a handler that sets its own headers
            return _with_headers(result, headers)
        return Response.json(self.envelope(result), 200, headers)

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route of a venue-relative path and its placeholders' values, or None."""
        if self.trailing_slash:
            path = path.rstrip("/")
        found = self._exact.get(path)
        if found is not None:
            return found, {}
        for r in self._patterned:
            assert r.regex is not None
            m = r.regex.fullmatch(path)
            if m is not None:
                return r, m.groupdict()
        return None

    def is_data_page(self, path: str) -> bool:
        """Whether ``path`` is one of the venue's data pages (``route(..., data=True)``)."""
        found = self.match(path)
        return found is not None and found[0].data

    # -- what each venue declares ---------------------------------------------------------

    def admit(self, request: Request, matched: Route | None) -> Headers:
        """Charge the request to the venue's rate limits: the headers every reply to it
        carries (usage counters), or :class:`Refused` with the venue's limit reply.
        ``matched`` is None for an unknown path (``charge_unknown``)."""
        return []

    def query(self, request: Request) -> Any:
        """The request's parameters as the venue's handlers read them."""
        return request.params()

    def error_reply(self, exc: E) -> Response:
        """The reply to a request a handler refused with ``error_type``."""
        raise NotImplementedError(f"{type(self).__name__} declares no error reply")

    def envelope(self, result: Any) -> Any:
        """The success body around a handler's result (the result itself by default)."""
        return result

    def error_in_200(self) -> Any:
        """The body of the ``error200`` fault: the exchange's own error, sent with HTTP
        200. A venue says it in its exchange's words; this generic one is the fallback."""
        return {"error": "internal error"}

    def reset(self) -> None:
        """Forget rate-limit state (bans, used weight)."""
