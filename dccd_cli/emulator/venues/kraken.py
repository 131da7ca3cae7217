"""Kraken spot public market data (``https://api.kraken.com/0/public/...``).

Facts (``docs/exchanges.md#kraken``) are tagged [C] documented (docs.kraken.com API
reference, support articles), [B] believed — every [B] behaviour is a venue setting.
Every answer is ``{"error": [...], "result": {...}}`` and errors come with HTTP 200 [C].
One real row of each response, from the docs' examples::

    OHLC:   [1688671200, "30306.1", "30306.2", "30305.7", "30305.7", "30306.1",
             "3.39243896", 23]                  [time, open, high, low, close, vwap, volume, count]
    Trades: ["30243.40000", "0.34507674", 1688669597.8277369, "b", "m", "", 61044952]
            with "last": "1688671969993150842"  (ns, a string: the next ``since``)

OHLC keeps only the 720 most recent bars, the last one still forming [C]; Trades pages
forward in time by ``since=<last>``.
"""

from __future__ import annotations

import asyncio
import re
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from dccd_cli.emulator.instruments import Instrument
from dccd_cli.emulator.limiter import TokenBuckets
from dccd_cli.emulator.market import MarketModel
from dccd_cli.emulator.venue import Clock, Headers, Refused, Request, Response, Route, Venue, route
from dccd_cli.emulator.venues import kraken_format as fmt
from dccd_cli.timeutil import MS, NS, Span

# [C] OHLC intervals in minutes. 10080 and 21600 (a week, 15 days) open on multiples of
# their length since the epoch unless week_anchor is "monday".
INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
_SECONDS = re.compile(r"^[0-9]{1,10}(\.[0-9]+)?$")  # 10 digits of seconds: until 2286
_INTEGER = re.compile(r"^[0-9]{1,19}$")


class KrakenError(Exception):
    """A refused request: ``{"error": [message]}`` (with HTTP 200, as Kraken does)."""


class KrakenVenue(Venue[KrakenError]):
    """``/kraken/0/public/{Time,Assets,AssetPairs,OHLC,Trades}`` over the shared market.
    Pairs are named by internal name or altname (``XBTUSDT``); results are keyed by the
    internal name."""

    name = "kraken"
    defaults: dict[str, Any] = {
        "counter_max": 15,  # [B] public limit per IP: ~1 call/s with a small burst
        "counter_decay_per_s": 1.0,  # [B] (ccxt spaces calls 1 s apart)
        "counter_penalize_rejected": True,  # [B] refused calls still count
        "rate_limit_status": 200,  # [B] HTTP status of EAPI:Rate limit exceeded (or 429)
        "ohlc_entries": 720,  # [C] "up to 720 of the most recent entries"; 721 measured [B]
        "ohlc_since": "exclusive",  # [B] "exclusive": time > since; or "inclusive"
        "ohlc_empty": "flat",  # [B] live rows show flat, zero-volume bars; or "omit"
        "week_anchor": "epoch",  # [B] 7/15-day bars on epoch multiples, or "monday"
        "trades_since": "exclusive",  # [B] old docs: "since ... (exclusive)"; or "inclusive"
        "trades_since_seconds": True,  # [B] since < 1e11 (or with a fraction) is seconds
        "last_cursor": "position",  # [B] `last`: "position" (exact, see kraken_format) or
        # "time" (the last trade's ms in ns: exclusive paging then skips the rest of it)
        "trade_price_decimals": 5,  # [B] the docs' example "30243.40000" for a 1-decimal pair
        "count_over_max": "clamp",  # [B] count > 1000: "clamp" or "error"
    }
    methods = ("GET", "POST")  # [C] public calls may POST a form
    trailing_slash = True
    not_found = Response.json({"error": ["EGeneral:Unknown method"]}, 404)  # [B]
    error_type = KrakenError
    # Kraken's rate-limit reply carries no wait (clients wait their own): a counter that
    # refuses the third quick call pushes a client back once, not at every call.
    strict_limits = {"counter_max": 2, "counter_decay_per_s": 0.3}

    def __init__(self, market: MarketModel, settings: dict[str, Any], clock: Clock) -> None:
        super().__init__(market, settings, clock)
        s = self.settings
        for key, allowed in (("ohlc_since", ("exclusive", "inclusive")),
                             ("trades_since", ("exclusive", "inclusive")),
                             ("ohlc_empty", ("flat", "omit")),
                             ("week_anchor", ("epoch", "monday")),
                             ("count_over_max", ("clamp", "error")),
                             ("last_cursor", ("position", "time"))):
            if s[key] not in allowed:
                raise ValueError(f"kraken {key} must be one of {allowed}")
        maximum, decay = float(s["counter_max"]), float(s["counter_decay_per_s"])
        if maximum < 1 or decay <= 0:
            raise ValueError("counter maximum must be >= 1 and decay positive")
        # Kraken's "call counter" [C docs, private API]: each call adds one, the counter
        # decays by ``decay`` a second, and a call that would take it past ``maximum`` is
        # refused. That is a token bucket upside down (counter = maximum - tokens).
        self.counter = TokenBuckets(maximum, decay,
                                    penalize=bool(s["counter_penalize_rejected"]))
        self.pairs: dict[str, Instrument] = {}
        for inst in market.instruments:
            # [B] the usual codes (BTCUSDT) are accepted too, as aliases.
            for name in (inst.base + inst.quote, fmt.altname(inst), fmt.pair_key(inst)):
                self.pairs[name] = inst

    def reset(self) -> None:
        self.counter.reset()

    def admit(self, request: Request, matched: Route | None) -> Headers:
        if not self.counter.take(request.client).admitted:
            raise Refused(Response.json({"error": ["EAPI:Rate limit exceeded"]},  # [C] wording
                                        int(self.settings["rate_limit_status"])))
        return []

    def query(self, request: Request) -> dict[str, str]:
        params = {k: v[-1] for k, v in request.params().items()}
        if request.method == "POST" and request.body:  # a POSTed form joins the query
            params.update(parse_qsl(request.body.decode("latin-1")))
        return params

    def error_reply(self, exc: KrakenError) -> Response:
        return Response.json({"error": [str(exc)]})  # [B] no result key

    def envelope(self, result: Any) -> Any:
        return {"error": [], "result": result}

    def error_in_200(self) -> Any:
        return {"error": ["EService:Unavailable"]}

    # -- helpers ----------------------------------------------------------------------

    def _listed(self, now: int) -> list[Instrument]:
        return [i for i in self.market.instruments if self.market.is_listed(i.symbol, now)]

    def _pair(self, params: dict[str, str], now: int) -> Instrument:
        name = params.get("pair", "")
        inst = self.pairs.get(name.upper())
        if inst is None or not self.market.is_listed(inst.symbol, now):
            raise KrakenError("EQuery:Unknown asset pair")  # [B] live reports
        return inst

    def _span(self, minutes: int) -> Span:
        if minutes in (10080, 21600):
            if minutes == 10080 and self.settings["week_anchor"] == "monday":
                return Span.parse("1w")
            return Span.parse(f"{minutes // 1440}d")  # epoch-aligned multiples of days
        return Span.parse(f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m")

    # -- endpoints --------------------------------------------------------------------

    @route("/0/public/Time")
    async def server_time(self, params: dict[str, str]) -> Any:
        now = self.clock.now_ns()
        # [C] {"unixtime": 1688669448, "rfc1123": "Thu, 06 Jul 23 18:50:48 +0000"}
        stamp = formatdate(now // NS, usegmt=True)  # "Thu, 06 Jul 2023 18:50:48 GMT"
        day, rest = stamp.split(", ", 1)
        d, mon, year, hms, _ = rest.split(" ")
        return {"unixtime": now // NS, "rfc1123": f"{day}, {d} {mon} {year[2:]} {hms} +0000"}

    @route("/0/public/Assets")
    async def assets(self, params: dict[str, str]) -> Any:
        now = self.clock.now_ns()
        codes = dict.fromkeys(c for i in self._listed(now) for c in (i.base, i.quote))
        return {fmt.asset_id(c): fmt.asset(c) for c in codes}

    @route("/0/public/AssetPairs")
    async def asset_pairs(self, params: dict[str, str]) -> Any:
        now = self.clock.now_ns()
        listed = {fmt.pair_key(i): i for i in self._listed(now)}
        wanted = params.get("pair")
        if wanted:
            chosen = {}
            for name in wanted.split(","):
                inst = self.pairs.get(name.strip().upper())
                if inst is None or inst not in listed.values():
                    raise KrakenError("EQuery:Unknown asset pair")
                chosen[fmt.pair_key(inst)] = inst
            listed = chosen
        return {key: fmt.asset_pair(inst) for key, inst in listed.items()}

    @route("/0/public/OHLC", data=True)
    async def ohlc(self, params: dict[str, str]) -> Any:
        now = self.clock.now_ns()
        inst = self._pair(params, now)
        raw = params.get("interval") or "1"  # [C] default 1
        if not raw.isdigit() or int(raw) not in INTERVALS:
            raise KrakenError("EGeneral:Invalid arguments")  # [B]
        span = self._span(int(raw))
        since_raw = params.get("since")
        since = None
        if since_raw:
            if not _SECONDS.match(since_raw):
                raise KrakenError("EGeneral:Invalid arguments")
            since = int(float(since_raw) * NS) if "." in since_raw else int(since_raw) * NS
        # [C] only the most recent entries exist, whatever `since` says; the last one is
        # the still-forming bar and is always present.
        forming = span.floor(now)
        lo = span.add(forming, 1 - int(self.settings["ohlc_entries"]))
        flat = self.settings["ohlc_empty"] == "flat"
        bars = await asyncio.to_thread(self.market.bars, inst.symbol, span, lo, now + 1, now,
                                       empty=True)
        keep = (bars.trades > 0) | (bars.open_ns == forming) if not flat else None
        if since is not None:
            after = bars.open_ns > since if self.settings["ohlc_since"] == "exclusive" \
                else bars.open_ns >= since
            after |= bars.open_ns == forming
            keep = after if keep is None else keep & after
        if keep is not None:
            bars = bars.take(keep)
        # [C] `last`: the id (open time, s) to send as `since` to poll for committed data.
        last = span.add(forming, -1) // NS
        return {fmt.pair_key(inst): fmt.ohlc_rows(bars, inst), "last": last}

    def _since_ns(self, raw: str) -> int:
        """[C] ns; [B] seconds when small or fractional."""
        if self.settings["trades_since_seconds"] and _SECONDS.match(raw):
            whole, _, frac = raw.partition(".")
            if "." in raw or int(whole) < 10**11:
                return int(whole) * NS + int((frac + "0" * 9)[:9])
        if not _INTEGER.match(raw):
            raise KrakenError("EGeneral:Invalid arguments")
        return int(raw)

    def _first_id(self, sym: str, since: int) -> int:
        """Id of the first trade stamped after ``since`` (or at it, when inclusive)."""
        exclusive = self.settings["trades_since"] == "exclusive"
        if self.settings["last_cursor"] == "time":
            return self.market.trade_id_at(sym, since + 1 if exclusive else since)
        # The k-th trade (from 0) of millisecond M sits at M + (k + 1) us on the cursor's
        # scale (see kraken_format.position_cursor).
        ms0 = since // MS * MS
        off = since - ms0
        k = off // 1000 if exclusive else max(0, -(-off // 1000) - 1)
        base = self.market.trade_id_at(sym, ms0)
        return min(base + k, self.market.trade_id_at(sym, ms0 + MS))

    @route("/0/public/Trades", data=True)
    async def trades(self, params: dict[str, str]) -> Any:
        now = self.clock.now_ns()
        inst = self._pair(params, now)
        raw = params.get("count")
        count = 1000  # [C] 1-1000, default 1000
        if raw:
            if not raw.isdigit() or int(raw) < 1:
                raise KrakenError("EGeneral:Invalid arguments")
            count = int(raw)
            if count > 1000:
                if self.settings["count_over_max"] == "error":
                    raise KrakenError("EGeneral:Invalid arguments")
                count = 1000
        since_raw = params.get("since")
        sym = inst.symbol
        since = self._since_ns(since_raw) if since_raw else None
        if since is None:  # [C] "Returns the last 1000 trades by default"
            tr = await asyncio.to_thread(self.market.trades_window, sym, 0, now, count, True)
        else:
            first = await asyncio.to_thread(self._first_id, sym, since)
            tr = await asyncio.to_thread(self.market.trades_from_id, sym, first, count, now)
        rows = fmt.trade_rows(tr, inst, int(self.settings["trade_price_decimals"]))
        if not len(tr):  # [B] nothing new: `last` repeats the cursor
            last = since if since is not None else now
        elif self.settings["last_cursor"] == "time":
            last = int(tr.ts_ns[-1])
        else:
            ts = int(tr.ts_ns[-1])
            rank = int(tr.id[-1]) - await asyncio.to_thread(self.market.trade_id_at, sym, ts)
            last = fmt.position_cursor(ts, rank)
        # [C] `last` is a string of ns, the `since` of the next page.
        return {fmt.pair_key(inst): rows, "last": str(last)}
