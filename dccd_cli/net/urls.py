"""How a request's URL is made: query pairs, the URL as shown, and plain URLs made without
httpx's parse.

Why plain URLs: ``httpx.URL(target, params=...)`` parses and re-quotes the whole URL,
~20-25 µs a request — as much as the rest of a request's own work on dccd's direct path
(``dccd_cli.net.client``). An exchange's requests all go to a handful of targets with simple
parameters, so each target is parsed once and a query of unreserved characters only,
which httpx writes as it is, is appended. Anything unusual is left to httpx.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

QueryPairs = list[tuple[str, str | int | float | bool | None]]

#: Query keys and values that no step of httpx's encoding changes: RFC 3986's unreserved
#: characters, which urlencode's quote_plus and the URL's own quoting both keep as they are.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*").fullmatch
_QUERY_MAX = 4096  # far below httpx's limit on a URL component (65536)
_TARGETS_MAX = 256  # targets whose parse is kept (adapters use a handful)


def query_pairs(params: Mapping[str, Any]) -> QueryPairs:
    """Query pairs; None values are dropped (adapters pass optional parameters as None)."""
    pairs: QueryPairs = []
    for key, value in params.items():
        values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        for v in values:
            if v is not None:
                pairs.append((key, "true" if v is True else "false" if v is False else str(v)))
    return pairs


def redact(url: httpx.URL) -> str:
    """The URL as it may be logged or shown: without user:password."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


@dataclass(frozen=True, slots=True)
class PlainURL:
    """What ``httpx.URL(target, params=pairs)`` would be, for what the direct path sends —
    scheme, host, port, the request target (``raw_path``) — and the URL as shown, exactly
    as httpx makes them. ``full()`` is httpx's URL itself, for requests that go through
    httpx's client after all (a reply that is not plain)."""

    scheme: str
    host: str
    port: int | None
    raw_path: bytes
    shown: str
    target: str
    pairs: QueryPairs

    def full(self) -> httpx.URL:
        return httpx.URL(self.target, params=self.pairs)


def full_url(url: httpx.URL | PlainURL) -> httpx.URL:
    return url.full() if isinstance(url, PlainURL) else url


class PlainURLs:
    """Plain URLs of one client: each target's parse, kept."""

    def __init__(self) -> None:
        # Per target (URL without query): its parts, or None when httpx makes its URLs
        # (credentials, a fragment, another scheme, unparsable).
        self._targets: dict[str, tuple[str, str, int | None, bytes, str] | None] = {}

    def __len__(self) -> int:
        return len(self._targets)

    def make(self, target: str, pairs: QueryPairs) -> PlainURL | None:
        """``httpx.URL(target, params=pairs)`` as a ``PlainURL`` where that is exact: the
        target (which has no "?": the caller checked) parses to an http(s) URL with neither
        credentials nor a fragment, and every key and value is of unreserved characters
        only, which httpx writes as they are (``key=value`` joined by ``&``). Else None:
        httpx makes the URL (tests/transport/test_plain_url.py)."""
        if not pairs:
            return None
        try:
            base = self._targets[target]
        except KeyError:
            if len(self._targets) >= _TARGETS_MAX:
                return None
            try:
                parsed = httpx.URL(target)
            except httpx.InvalidURL:
                return None  # httpx raises it again, as it did
            plain = "#" not in target and not parsed.userinfo and parsed.scheme in ("http", "https")
            base = self._targets[target] = (
                (parsed.scheme, parsed.host, parsed.port, parsed.raw_path, str(parsed)) if plain else None
            )
        if base is None:
            return None
        parts = []
        for key, value in pairs:
            if not (type(key) is str and type(value) is str and _UNRESERVED(key) and _UNRESERVED(value)):
                return None
            parts.append(f"{key}={value}")
        query = "&".join(parts)
        if len(query) > _QUERY_MAX:
            return None
        scheme, host, port, raw_path, shown = base
        return PlainURL(scheme, host, port, raw_path + b"?" + query.encode("ascii"),
                        f"{shown}?{query}", target, pairs)
