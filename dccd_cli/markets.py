"""Unified symbols (``BTC-USDT``) resolved against an exchange's own market list.

The list is cached in the platformdirs user cache directory (``$DCCD_CACHE_DIR`` overrides
it), keyed by exchange and base URL — an emulator and the real exchange never share a
cache — and refreshed once a day, or at once when a symbol is not found in it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import time
from pathlib import Path

from platformdirs import user_cache_dir

from .capability import Adapter, Market
from .errors import UnknownSymbolError

TTL_S = 86_400
SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")


def cache_dir() -> Path:
    return Path(os.environ.get("DCCD_CACHE_DIR") or user_cache_dir("dccd")) / "markets"


def check_symbol(symbol: str) -> str:
    """Validate a unified symbol's form before anything else touches it (paths, URLs)."""
    # Checked before upper-casing: str.upper() maps some non-ASCII letters to ASCII ones
    # ("ﬀ" -> "FF", "ı" -> "I"), which would let them pass as another symbol.
    s = symbol.strip()
    if not (s.isascii() and SYMBOL_RE.fullmatch(s.upper())):
        shown = symbol if len(symbol) <= 40 else symbol[:40] + "…"
        raise UnknownSymbolError(
            f"symbol {shown!r} is not of the form BASE-QUOTE (letters and digits, e.g. BTC-USDT)"
        )
    return s.upper()


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
    """Markets for unified symbols, refreshing a stale cache once before giving up."""
    wanted = [check_symbol(s) for s in symbols]
    markets = await load_markets(adapter, base_url)
    if any(s not in markets for s in wanted):
        markets = await load_markets(adapter, base_url, refresh=True)
    out = []
    for s in wanted:
        m = markets.get(s)
        if m is None:
            close = difflib.get_close_matches(s, list(markets), n=3, cutoff=0.8)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownSymbolError(
                f"unknown symbol {s!r} on {adapter.name} ({len(markets)} markets listed){hint}"
            )
        out.append(m)
    return out
