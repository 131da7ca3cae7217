"""Markets: what a user may name, resolved against an exchange's own market list.

A user names a market by its unified symbol (``BTC-USDT``, any case), by ccxt's spelling
(``BTC/USDT``), by the exchange's own name (``BTCUSDT`` on Binance, ``XBTUSDT`` or
``XXBTZUSD`` on Kraken, ``tBTCUSD`` on Bitfinex) or by an fnmatch pattern on the unified
symbols (``*-USDT``); ``dccd ohlc``/``trades``, ``dccd markets`` and ``dccd sync`` share
this one reading. The form is checked before anything touches the name (paths, URLs);
only a market from the exchange's list ever names a file.

The list is cached in the platformdirs user cache directory (``$DCCD_CACHE_DIR`` overrides
it), keyed by exchange and base URL — an emulator and the real exchange never share a
cache — and refreshed once a day, or at once when a name is not found in it. A name not
found is refused with the close ones the list does hold.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path

from dccd_cli.cachedir import cache_root
from dccd_cli.errors import UnknownSymbolError
from dccd_cli.exchange.adapter import Adapter, Market

TTL_S = 86_400
SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")
# ccxt's spelling of a spot market.
_SLASHED_RE = re.compile(r"^([A-Za-z0-9]{1,20})/([A-Za-z0-9]{1,20})$")
# An exchange's own name: BTCUSDT, XXBTZUSD, tBTCUSD, XBT_USDT, BTC-USDT-SWAP, tTESTBTC:TESTUSD.
_NATIVE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,39}$")
_PATTERN_RE = re.compile(r"^[A-Z0-9*?\[\]!-]{1,41}$")
_FORMS = ("BASE-QUOTE (e.g. BTC-USDT), BASE/QUOTE, the exchange's own name (e.g. BTCUSDT) "
          "or a pattern (e.g. '*-USDT')")


def cache_dir() -> Path:
    return cache_root() / "markets"


def is_pattern(symbol: str) -> bool:
    """A symbol with fnmatch wildcards: it names the markets of the list it matches."""
    return any(c in symbol for c in "*?[")


def check_symbol(symbol: str) -> str:
    """Check a market name as a user wrote it, before anything else touches it.

    Returns the name to look up: a unified symbol upper-cased (``btc/usdt`` becomes
    ``BTC-USDT``), a pattern upper-cased, or the exchange's own name as written. Anything
    else (spaces, paths, non-ASCII) is an UnknownSymbolError naming the accepted forms.
    """
    # Checked before upper-casing: str.upper() maps some non-ASCII letters to ASCII ones
    # ("ﬀ" -> "FF", "ı" -> "I"), which would let them pass as another symbol.
    s = symbol.strip()
    shown = symbol if len(symbol) <= 40 else symbol[:40] + "…"
    if s.isascii():
        if is_pattern(s):
            if _PATTERN_RE.fullmatch(s.upper()):
                return s.upper()
            raise UnknownSymbolError(f"pattern {shown!r} may hold letters, digits, '-' and the "
                                     "wildcards * ? [...] only, e.g. *-USDT")
        if slashed := _SLASHED_RE.fullmatch(s):
            return f"{slashed[1]}-{slashed[2]}".upper()
        if SYMBOL_RE.fullmatch(s.upper()):
            return s.upper()
        if _NATIVE_RE.fullmatch(s):
            return s
    raise UnknownSymbolError(f"symbol {shown!r} is not of the form {_FORMS}")


def match_symbol(name: str, markets: Mapping[str, Market]) -> list[Market]:
    """The markets a checked name (``check_symbol``) stands for, sorted: those a pattern
    matches, or the one market whose unified symbol or own name it is (any case)."""
    if is_pattern(name):
        pattern = name.upper()
        return [markets[s] for s in sorted(markets) if fnmatchcase(s, pattern)]
    if name.upper() in markets:
        return [markets[name.upper()]]
    wanted = name.upper()
    for m in markets.values():
        # Kraken's pair key (XXBTZUSD) is a second own name beside its altname (XBTUSD).
        if wanted in (m.native.upper(), str(m.extra.get("key", "")).upper()):
            return [m]
    return []


def close_markets(name: str, markets: Mapping[str, Market], n: int = 5) -> list[str]:
    """Unified symbols a user who wrote ``name`` may have meant: close spellings of a
    unified or own name first, then markets of the same base, then of the same quote."""
    names: dict[str, str] = {}  # unified and own names, upper-cased -> unified
    for m in markets.values():
        names.setdefault(m.symbol, m.symbol)
        names.setdefault(m.native.upper(), m.symbol)
    wanted = name.upper().replace("/", "-")
    found = [names[c] for c in difflib.get_close_matches(wanted, list(names), n=n, cutoff=0.6)]
    base, sep, quote = wanted.partition("-")
    if not sep:  # a bare currency (BTC) or an own name we could not split
        quote = base
    ranked = sorted(markets.values(), key=lambda m: (
        -difflib.SequenceMatcher(None, wanted, m.symbol).ratio(), m.symbol))
    found += [m.symbol for m in ranked if m.base == base]
    found += [m.symbol for m in ranked if m.quote == quote]
    return list(dict.fromkeys(found))[:n]


def unknown_symbol(name: str, exchange: str, markets: Mapping[str, Market]) -> str:
    """Why ``name`` is refused, with what the exchange does list that is close to it."""
    command = f"`dccd markets {exchange}` lists its {len(markets)} markets"
    if is_pattern(name):
        return f"pattern {name!r} matches no market on {exchange}; {command}"
    close = close_markets(name, markets)
    if close:
        return f"unknown symbol {name!r} on {exchange}; did you mean {', '.join(close)}?"
    return f"unknown symbol {name!r} on {exchange}, and none is close to it; {command}"


def _cache_file(exchange: str, base_url: str) -> Path:
    digest = hashlib.sha256(base_url.encode()).hexdigest()[:12]
    return cache_dir() / f"{exchange}-{digest}.json"


def _read_cache(path: Path) -> list[Market] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if time.time() - float(data.get("fetched_at", 0)) > TTL_S:
        return None
    return [Market(**m) for m in data["markets"]]


def _write_cache(path: Path, markets: list[Market]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        payload = {
            "fetched_at": time.time(),
            "markets": [
                {"symbol": m.symbol, "native": m.native, "base": m.base, "quote": m.quote,
                 "listed_ns": m.listed_ns, "extra": dict(m.extra)}
                for m in markets
            ],
        }
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache we cannot write only costs a request next time


async def load_markets(adapter: Adapter, base_url: str, *, refresh: bool = False) -> dict[str, Market]:
    path = _cache_file(adapter.name, base_url)
    markets = None if refresh else _read_cache(path)
    if markets is None:
        markets = await adapter.load_markets()
        _write_cache(path, markets)
    return {m.symbol: m for m in markets}


async def resolve(adapter: Adapter, base_url: str, symbols: list[str]) -> list[Market]:
    """The markets that market names (any form ``check_symbol`` accepts) stand for, each
    once however often or in how many spellings it is named, in the order first named.
    A stale cache is refreshed once before a name is refused."""
    wanted = [check_symbol(s) for s in symbols]
    markets = await load_markets(adapter, base_url)
    if not all(match_symbol(s, markets) for s in wanted):
        markets = await load_markets(adapter, base_url, refresh=True)
    found: dict[str, Market] = {}
    for s in wanted:
        matched = match_symbol(s, markets)
        if not matched:
            raise UnknownSymbolError(unknown_symbol(s, adapter.name, markets))
        for m in matched:
            found.setdefault(m.symbol, m)
    return list(found.values())
