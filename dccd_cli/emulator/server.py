"""The emulator server: one plain ASGI app, one path prefix per venue, served by uvicorn.

``/binance/api/v3/klines`` goes to the Binance venue with path ``/api/v3/klines``; the
admin endpoints live under ``/_emulator``:

* ``GET /_emulator/health`` — ``{"status": "ok", "venues": [...], "clock": {...}}``
* ``GET /_emulator/clock`` — ``{"now_ns": ..., "fixed": bool}``
* ``POST /_emulator/clock`` — ``{"now_ns": N}`` freezes the market's now at N (``null``
  back to real time), ``{"advance_s": S}`` moves it forward S seconds
* ``POST /_emulator/reset`` — forget every venue's rate-limit state and bans
* ``GET /_emulator/faults`` — the fault plans, requests seen and faults injected per venue
* ``POST /_emulator/faults`` — ``{"faults": "5xx:0.1" | {"binance": "429@3-7"}, "seed": 0}``
  replaces the fault plans (``{"faults": ""}`` turns them off) and resets their counts

Every response carries a ``Date`` header from the emulator's clock. ``EmulatorServer``
runs the app on a background thread with its own event loop (usable from sync and async
code alike); ``serve`` runs it in the foreground for the ``dccd emulator`` command.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from types import TracebackType
from typing import Any

import orjson
import uvicorn

from dccd_cli.emulator.faults import FaultPlan, FaultSpecError, resolve_faults
from dccd_cli.emulator.injector import FaultInjector
from dccd_cli.emulator.instruments import Instrument
from dccd_cli.emulator.market import MarketModel
from dccd_cli.emulator.venue import Clock, Request, Response, Venue
from dccd_cli.emulator.venues import venue_class, venue_names

log = logging.getLogger("dccd.emulator")

ASGIReceive = Any
ASGISend = Any


@dataclass
class EmulatorSettings:
    """Everything that shapes the emulated exchanges.

    ``now``: None for real time, or a fixed ns instant (the unfinished bar is then
    deterministic; move it with ``/_emulator/clock``). ``latency_ms``: delay added to every
    response. ``trades_scale``: multiplies every instrument's trade counts.
    ``venues``: per-venue settings, e.g. ``{"binance": {"weight_limit": 100}}``.
    ``maintenance``: ``(start_ns, end_ns)`` windows without trades or bars.
    ``instruments``: None for the defaults (BTC-USDT, ETH-USDT, SOL-EUR).
    ``access_log``: log one line per request (uvicorn's access log).
    ``faults``: fault injection (see :mod:`.faults`): a spec string for every venue
    (``"5xx:0.05,binance=429@3-7"``), or a plan or spec per venue; ``fault_seed`` seeds
    the probabilistic rules of spec strings. ``mount``: the venues to serve (None: every
    registered one); only their modules are imported.
    """

    seed: int = 0
    now: int | None = None
    latency_ms: float = 0.0
    trades_scale: float = 1.0
    venues: dict[str, dict[str, Any]] = field(default_factory=dict)
    maintenance: list[tuple[int, int]] = field(default_factory=list)
    instruments: tuple[Instrument, ...] | None = None
    access_log: bool = False
    faults: dict[str, FaultPlan | str] | str | None = None
    fault_seed: int = 0
    mount: tuple[str, ...] | None = None


class EmulatorApp:
    """The ASGI callable: routes to venues and the admin endpoints."""

    def __init__(self, settings: EmulatorSettings | None = None) -> None:
        self.settings = settings or EmulatorSettings()
        registered = venue_names()
        unknown = set(self.settings.venues) - set(registered)
        if unknown:
            raise ValueError(f"settings for unknown venues: {sorted(unknown)}")
        mount = registered if self.settings.mount is None else list(self.settings.mount)
        absent = set(mount) - set(registered)
        if absent:
            raise ValueError(f"no venue to mount named {sorted(absent)}; "
                             f"registered: {', '.join(registered)}")
        self.clock = Clock(self.settings.now)
        self.market = MarketModel(seed=self.settings.seed,
                                  instruments=self.settings.instruments,
                                  trades_scale=self.settings.trades_scale,
                                  maintenance=self.settings.maintenance)
        self.venues: dict[str, Venue[Any]] = {
            name: venue_class(name)(self.market, dict(self.settings.venues.get(name, {})),
                                    self.clock)
            for name in mount}
        self.faults = FaultInjector(resolve_faults(self.settings.faults, self.venues,
                                             self.settings.fault_seed))

    async def __call__(self, scope: dict[str, Any], receive: ASGIReceive,
                       send: ASGISend) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            await receive()  # websocket.connect: no feeds yet, refuse politely
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        # Faults (if any are planned for this venue) wrap the venue's handler.
        prefix, vpath = _split(scope["path"])
        fault = None
        faulty = bool(self.faults) and prefix in self.venues
        data_page = faulty and self.venues[prefix].is_data_page(vpath)
        if faulty:
            fault = self.faults.pick(prefix, scope["method"], vpath,
                                     scope.get("query_string", b"").decode("latin-1"),
                                     data_page)
        response = None
        if fault is not None:
            response = self.faults.reply(fault, self.venues[prefix],
                                         self.clock.now_ns() // 1_000_000)
        if response is None:
            try:
                response = await self._dispatch(scope, body)
            except Exception:  # a bug in a venue must not kill the connection silently
                log.exception("emulator error on %s", scope.get("path"))
                response = Response.json({"error": "internal emulator error"}, 500)
            if faulty:
                query = Request.from_scope(scope, vpath, b"").query
                response = self.faults.alter(fault, prefix, vpath, query, response, data_page)
        if self.settings.latency_ms > 0:
            await asyncio.sleep(self.settings.latency_ms / 1000.0)
        headers = [(b"content-type", response.content_type.encode()),
                   (b"content-length", str(len(response.body)).encode()),
                   (b"date", formatdate(self.clock.now_ns() / 1e9, usegmt=True).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in response.headers]
        start = {"type": "http.response.start", "status": response.status, "headers": headers}
        payload = b"" if scope["method"] == "HEAD" else response.body
        if fault is not None and fault.on_wire:
            await self.faults.deliver(fault, start, payload, receive, send)
            return
        await send(start)
        await send({"type": "http.response.body", "body": payload})

    async def _dispatch(self, scope: dict[str, Any], body: bytes) -> Response:
        prefix, vpath = _split(scope["path"])
        if prefix == "_emulator":
            return self._admin(scope["method"], vpath[1:], body)
        venue = self.venues.get(prefix)
        if venue is None:
            return Response.json({"error": f"no venue at /{prefix}",
                                  "venues": sorted(self.venues)}, 404)
        return await venue.handle(Request.from_scope(scope, vpath, body))

    def _admin(self, method: str, what: str, body: bytes) -> Response:
        if what == "health" and method == "GET":
            return Response.json({"status": "ok", "venues": sorted(self.venues),
                                  "clock": self.clock.snapshot()})
        if what == "clock" and method == "GET":
            return Response.json(self.clock.snapshot())
        if what == "clock" and method == "POST":
            try:
                req = orjson.loads(body) if body else {}
            except orjson.JSONDecodeError:
                req = None
            if isinstance(req, dict) and "now_ns" in req and (
                    req["now_ns"] is None or isinstance(req["now_ns"], int)):
                self.clock.set(req["now_ns"])
            elif isinstance(req, dict) and isinstance(req.get("advance_s"), (int, float)):
                self.clock.advance(float(req["advance_s"]))
            else:
                return Response.json({"error": 'send {"now_ns": int|null} or '
                                      '{"advance_s": number}'}, 400)
            return Response.json(self.clock.snapshot())
        if what == "faults" and method == "GET":
            return Response.json(self.faults.summary())
        if what == "faults" and method == "POST":
            try:
                req = orjson.loads(body) if body else {}
                if not isinstance(req, dict) or not isinstance(req.get("faults"), (str, dict)):
                    raise FaultSpecError('send {"faults": "SPEC" | {"venue": "SPEC"}, '
                                         '"seed": int}')
                seed = req.get("seed", 0)
                if not isinstance(seed, int):
                    raise FaultSpecError("the fault seed must be an integer")
                self.faults.configure(resolve_faults(req["faults"], self.venues, seed))
            except (orjson.JSONDecodeError, FaultSpecError) as exc:
                return Response.json({"error": str(exc)}, 400)
            return Response.json(self.faults.summary())
        if what == "reset" and method == "POST":
            for venue in self.venues.values():
                venue.reset()
            return Response.json({"status": "ok"})
        return Response.json({"error": f"no admin endpoint {method} /_emulator/{what}"}, 404)


def _split(path: str) -> tuple[str, str]:
    """``/binance/api/v3/klines`` -> ``("binance", "/api/v3/klines")``."""
    _, _, rest = path.partition("/")
    prefix, slash, tail = rest.partition("/")
    return prefix, slash + tail


def _config(app: EmulatorApp, log_level: str, **kw: Any) -> uvicorn.Config:
    return uvicorn.Config(app, lifespan="off", log_level=log_level, log_config=None,
                          access_log=app.settings.access_log, date_header=False,
                          server_header=False, timeout_graceful_shutdown=2, loop="asyncio",
                          **kw)


class EmulatorServer:
    """The emulator on a background thread, for tests and ``--emulate``::

        with EmulatorServer(EmulatorSettings(now=T, trades_scale=0.01)) as emu:
            httpx.get(emu.venue_url("binance") + "/api/v3/time")

    Binds ``host:port`` itself (port 0: any free port) so the real port is known before
    uvicorn starts. Works as ``async with`` too: start and stop then run off the caller's
    event loop, which never blocks on the server's.
    """

    def __init__(self, settings: EmulatorSettings | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.app = EmulatorApp(settings)
        self.host = host
        self._requested_port = port
        self.port = 0
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def settings(self) -> EmulatorSettings:
        return self.app.settings

    @property
    def clock(self) -> Clock:
        return self.app.clock

    @property
    def market(self) -> MarketModel:
        return self.app.market

    @property
    def faults(self) -> FaultInjector:
        """The fault layer: ``faults.configure({...})`` switches scenarios while running."""
        return self.app.faults

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def venue_url(self, venue: str) -> str:
        """``http://127.0.0.1:PORT/<venue>``; raises KeyError for an unknown venue."""
        if venue not in self.app.venues:
            raise KeyError(f"no venue {venue!r}; have {sorted(self.app.venues)}")
        return f"{self.base_url}/{venue}"

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            return self
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it Nagle + delayed ACK add ~40 ms to every response.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        self._sock = sock
        server = uvicorn.Server(_config(self.app, "warning"))
        self._server = server
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name=f"dccd-emulator:{self.port}", daemon=True)
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + 15.0
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> EmulatorServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)


def serve(settings: EmulatorSettings | None = None, host: str = "127.0.0.1",
          port: int = 8765, log_level: str = "info") -> None:
    """Serve the emulator in the foreground until interrupted (Ctrl-C / SIGTERM)."""
    app = EmulatorApp(settings)
    if log_level.lower() in ("info", "debug") and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("dccd emulator: venues %s at http://%s:%d/<venue>", ", ".join(sorted(app.venues)),
             host, port)
    for venue, plan in sorted(app.faults.plans.items()):
        log.info("faults at %s: %s (seed %d)", venue, plan, plan.seed)
    uvicorn.Server(_config(app, log_level, host=host, port=port)).run()
