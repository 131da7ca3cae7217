"""Kraken spot: ``/0/public/OHLC`` for OHLC, ``/0/public/Trades`` for trades.

Facts (docs/exchanges.md#kraken): every reply is ``{"error": [...], "result": {...}}``
and errors arrive with HTTP 200 inside ``error``. OHLC takes ``interval`` in minutes
(1 5 15 30 60 240 1440 10080 21600) and ``since`` in seconds, and serves only the 720 most
recent bars, oldest first, the last one still forming; rows ``[time(s), open, high, low,
close, vwap, volume, count]``. Trades take ``since`` in ns and ``count`` (≤ 1000), oldest
first; rows ``[price, volume, time(float s), "b"|"s", "m"|"l", misc, trade_id]`` where
b/s is the taker's side; ``last`` (ns, a string) is the documented cursor. Results are
keyed by Kraken's internal pair name (``XXBTZUSD``), whatever name was asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import DccdError, ExchangeError, ProtocolError
from dccd_cli.exchange.adapter import Adapter, Capability, Market, RateLimit
from dccd_cli.exchange.markets import SYMBOL_RE
from dccd_cli.exchange.replies import Envelope, ErrorTable
from dccd_cli.exchange.rows import columns, s_column
from dccd_cli.net.headers import parse_http_date
from dccd_cli.schema import empty_ohlc, empty_trades, ohlc_table, require_on_span_grid, trades_table
from dccd_cli.timeutil import NS, Span, format_ns, s_to_ns

# Kraken's 10080 and 21600 minute bars count from the Unix epoch (a Thursday), while dccd's
# weeks open on Monday: they are left out rather than stored off our grid. Fetch 1d instead.
_INTERVALS = {"1m": "1", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "4h": "240", "1d": "1440"}
_RECENT = 720  # "Returns up to 720 of the most recent entries" [C]
_MAX_TRADES = 1000
_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
_SIDE = {"b": "buy", "s": "sell"}
_US = 1_000
# A rate-limit reply carries no wait; Kraken's public counter drains at about one request a
# second [B], so a few seconds' pause lets a small burst drain before anyone retries.
_RATE_LIMIT_WAIT_S = 5.0
_THROTTLED_UNTIL = re.compile(r"EService:Throttled:\s*(\d+)")

_NOTE = ("Kraken's REST API serves only its 720 most recent bars of each interval, the last "
         "one still forming. For older history use Kraken's downloadable OHLCVT files "
         "(support.kraken.com, 'Downloadable historical OHLCVT data') or its full trade "
         "history: `dccd trades kraken ...`.")


class _Errors(ErrorTable):
    """Errors inside HTTP 200: ``{"error":["EQuery:Unknown asset pair"]}``. Entries starting
    with W are warnings and go with a result."""

    def read(self, body: Any) -> tuple[Any, str] | None:
        errors = body.get("error") if isinstance(body, Mapping) else None
        errors = [e for e in errors or [] if isinstance(e, str) and e.startswith("E")]
        return (None, "; ".join(errors)) if errors else None


def _rate_limit_wait(headers: Mapping[str, str], body: Any) -> float:
    """Until the instant ``EService:Throttled: <unix s>`` names, on the reply's own clock
    (between 1 s and a minute), else a few seconds."""
    until = _THROTTLED_UNTIL.search(str(body.get("error") if isinstance(body, Mapping) else ""))
    date = headers.get("date")
    now = parse_http_date(date) if date else None
    if until and now is not None:
        return min(60.0, max(1.0, int(until.group(1)) - now))
    return _RATE_LIMIT_WAIT_S


_ERRORS = _Errors(
    rate_limited_words=("eapi:rate limit exceeded", "egeneral:too many requests",
                        "eservice:throttled"),
    unknown_symbol_words=("equery:unknown asset pair",),
    server_words=("eservice:",),  # Unavailable, Busy, ...: retried
    rate_limit_wait=_rate_limit_wait,
)
# OHLC and Trades results are keyed by Kraken's internal pair name, beside ``last``.
_PAIR_ROWS = Envelope("result.*")


def _asset(code: str) -> str:
    """Kraken asset code -> common code: XXBT -> BTC, ZUSD -> USD, XDG -> DOGE."""
    code = code.upper()
    if len(code) == 4 and code[0] in "XZ":
        code = code[1:]  # the legacy X (crypto) / Z (fiat) prefix of the old 3-letter codes
    return _ALIASES.get(code, code)


class KrakenAdapter(Adapter):
    name = "kraken"
    title = "Kraken (spot)"
    default_base_url = "https://api.kraken.com"
    # About 1 request/s per IP [B: no official number; ccxt paces at 1 s]. Written per minute
    # so the bucket's small burst and safety margin leave ~0.95 req/s, not half of it.
    rate_limit = RateLimit(capacity=60, window_s=60)
    ohlc = Capability(
        kind="ohlc", max_per_request=_RECENT, page_direction="forward", spans=_INTERVALS,
        # Of the 720 entries Kraken keeps, the last is still forming (not stored) and the
        # oldest rolls off when a new bar opens between our clock reading and the request:
        # 718 finished bars can be fetched.
        history="recent", recent_bars=_RECENT - 2, note=_NOTE,
    )
    trades = Capability(kind="trades", max_per_request=_MAX_TRADES, page_direction="forward")

    errors = _ERRORS

    async def server_time_ns(self) -> int | None:
        """Kraken's clock from ``/0/public/Time``, e.g. ``{"error": [], "result":
        {"unixtime": 1688669448, "rfc1123": "Thu, 06 Jul 23 18:50:48 +0000"}}``; if that
        fails, the ``Date`` header of whatever reply came back (an error reply has one too)."""
        try:
            body = await self.http.get_json("/0/public/Time")
            return s_to_ns(body["result"]["unixtime"])
        except (DccdError, KeyError, TypeError, ValueError):
            return self.http.server_time_ns()

    async def load_markets(self) -> list[Market]:
        """Parse ``/0/public/AssetPairs`` entries, e.g. ``"XXBTZUSD": {"altname": "XBTUSD",
        "wsname": "XBT/USD", "base": "XXBT", "quote": "ZUSD", "status": "online", ...}``.

        ``wsname`` carries today's asset codes; the X/Z-prefixed ``base``/``quote`` are the
        fallback. The native name is ``altname``, which OHLC and Trades accept."""
        body = await self.http.get_json("/0/public/AssetPairs")
        pairs = body.get("result") if isinstance(body, Mapping) else None
        if not isinstance(pairs, Mapping):
            raise ProtocolError("AssetPairs: reply without a result", exchange=self.name)
        out: dict[str, Market] = {}
        for key, p in pairs.items():
            if key.endswith(".d"):
                continue  # dark-pool books: the same pair again, without public trades
            ws = str(p.get("wsname") or "")
            if ws.count("/") == 1:
                base, quote = (_ALIASES.get(c.upper(), c.upper()) for c in ws.split("/"))
            else:
                base, quote = _asset(str(p["base"])), _asset(str(p["quote"]))
            symbol = f"{base}-{quote}"
            if SYMBOL_RE.match(symbol) and symbol not in out:
                out[symbol] = Market(symbol=symbol, native=str(p.get("altname") or key),
                                     base=base, quote=quote,
                                     extra={"key": key, "status": p.get("status")})
        return list(out.values())

    async def fetch_ohlc_page(
        self, market: Market, span: str, start_ns: int, end_ns: int, limit: int
    ) -> pa.Table:
        """Parse OHLC rows, e.g. ``[1688671200, "30306.1", "30306.2", "30305.7", "30305.7",
        "30306.1", "3.39243896", 23]`` (time in s, O, H, L, C, vwap, volume, trade count).

        ``since`` is sent one interval early, as ccxt does, in case it is exclusive [B];
        the extra bar and everything after the window are filtered by the core.
        """
        interval_s = int(_INTERVALS[span]) * 60
        first_s = -(-start_ns // NS)
        body = await self.http.get_json(
            "/0/public/OHLC",
            {"pair": market.native, "interval": _INTERVALS[span], "since": first_s - interval_s},
        )
        rows = _PAIR_ROWS.unwrap(body, what="OHLC", exchange=self.name)
        if not rows:
            return empty_ohlc()
        if len(rows) >= _RECENT and rows[0][0] > first_s:
            # Kraken's 720 bars no longer reach the window's start: the bars before its
            # oldest row are gone, not merely quiet. Fail the window rather than leave a gap.
            raise ExchangeError(
                f"kraken now serves {span} bars only from {format_ns(rows[0][0] * NS)}; "
                f"{format_ns(first_s * NS)} onwards can no longer be fetched", exchange=self.name)
        t, open_, high, low, close, vwap, volume, count = columns(rows, 8, "OHLC", exchange=self.name)
        ts = s_column(t)
        require_on_span_grid(ts, Span.parse(span), exchange=self.name, what="OHLC")
        return ohlc_table(ts, open_, high, low, close, volume, vwap=vwap, trades=count)

    async def fetch_trades_page(
        self, market: Market, start_ns: int, end_ns: int, limit: int, cursor: Any
    ) -> tuple[pa.Table, Any]:
        """Parse trade rows, e.g. ``["30243.40000", "0.34507674", 1688669597.8277369, "b",
        "m", "", 61044952]`` (price, volume, time in float s, taker side, market/limit,
        misc, trade id).

        The cursor is the ``since`` (ns) of the next page: 1 µs before the newest row's
        time, so that trades sharing that instant are asked again (the core drops repeats
        by id) whether ``since`` is inclusive or not. ``last`` is not used: it is not
        documented to be exactly the newest row's time, and trusting a later value would
        skip trades.
        """
        since = start_ns - 1 if cursor is None else int(cursor)
        count = min(limit, _MAX_TRADES)
        body = await self.http.get_json(
            "/0/public/Trades", {"pair": market.native, "since": since, "count": count}
        )
        rows = _PAIR_ROWS.unwrap(body, what="Trades", exchange=self.name)
        if not rows:
            return empty_trades(), None
        # Rows of old had 6 fields and no trade id, which we cannot do without.
        price, volume, t, side, _, _, trade_id = columns(rows, 7, "Trades", exchange=self.name)
        # Float seconds carry about 0.1 µs of precision at today's epoch: round to the µs.
        us = pc.cast(pc.round(pc.multiply(pa.array(t, pa.float64()), 1e6)), pa.int64())
        ts = pc.multiply(us, _US)
        table = trades_table(ts, trade_id, price, volume, [_SIDE.get(s) for s in side])
        newest = ts[len(ts) - 1].as_py()
        # Drained: the page reaches past the window, or it is short — nothing newer exists.
        if newest >= end_ns or len(rows) < count:
            return table, None
        nxt = newest - _US
        if nxt <= since:
            raise ProtocolError(f"Trades: {len(rows)} trades within 1 µs at {format_ns(newest)}; "
                                "cannot page past them", exchange=self.name)
        return table, nxt

    async def first_data_ns(self, market: Market, kind: str, span: str | None) -> int | None:
        """Trades: the first trade (``since=0``). OHLC: the oldest bar Kraken still serves
        but one (the same slack as ``recent_bars``) — older bars exist only in its files."""
        if kind == "trades":
            body = await self.http.get_json(
                "/0/public/Trades", {"pair": market.native, "since": 0, "count": 1})
            rows = _PAIR_ROWS.unwrap(body, what="Trades", exchange=self.name)
            return round(float(rows[0][2]) * 1e6) * _US if rows else None
        code = span or "1d"
        body = await self.http.get_json(
            "/0/public/OHLC", {"pair": market.native, "interval": _INTERVALS[code]})
        rows = _PAIR_ROWS.unwrap(body, what="OHLC", exchange=self.name)
        if not rows:
            return None
        # A full 720-bar reply starts at the edge of what Kraken keeps: take the next bar.
        return s_to_ns(rows[1 if len(rows) >= _RECENT else 0][0])
