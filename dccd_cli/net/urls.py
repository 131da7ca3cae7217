"""How a request's URL is made: query pairs, the URL as shown, and ``PlainURL``, the one
form of a request URL that every transport is given (``dccd_cli.net.transport``).

Why plain URLs: ``httpx.URL(target, params=...)`` parses and re-quotes the whole URL,
~20-25 µs a request — as much as the rest of a request's own work in dccd's client
(``dccd_cli.net.client``). An exchange's requests all go to a handful of targets with simple
parameters, so each target is parsed once and a query of unreserved characters only,
which httpx writes as it is, is appended. Anything unusual is parsed by httpx, and its
URL becomes a ``PlainURL`` too (``PlainURL.of``).
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
    """A request URL in the parts a transport sends — scheme, host, port, the ``Host``
    header's value (``netloc``), the request target (``raw_path``: path and query, encoded)
    — and the URL as shown (never with credentials), exactly as httpx makes them."""

    scheme: str
    host: str
    port: int | None
    netloc: bytes
    raw_path: bytes
    shown: str

    @classmethod
    def of(cls, url: httpx.URL) -> PlainURL:
        """The parts of httpx's ``url``; its credentials, if any, are not part of them."""
        return cls(url.scheme, url.host, url.port, url.netloc, url.raw_path, redact(url))

    @property
    def origin(self) -> tuple[str, str, int]:
        """(scheme, host, port) with the scheme's default port filled in."""
        return self.scheme, self.host, self.port or (443 if self.scheme == "https" else 80)

    def httpx(self) -> httpx.URL:
        """httpx's URL of these very parts (the request target byte for byte)."""
        return httpx.URL(scheme=self.scheme, host=self.host, port=self.port, raw_path=self.raw_path)


def request_url(target: str, params: Mapping[str, Any] | None, plain: PlainURLs) -> PlainURL:
    """The URL of a GET of ``target`` with ``params``: made by ``plain`` where it can be,
    else by httpx (which raises ``httpx.InvalidURL`` for a URL it cannot make)."""
    if params and "?" not in target:
        pairs = query_pairs(params)
        made = plain.make(target, pairs)
        return made if made is not None else PlainURL.of(httpx.URL(target, params=pairs))
    url = httpx.URL(target)
    if params:
        url = url.copy_merge_params(query_pairs(params))
    return PlainURL.of(url)


class PlainURLs:
    """Plain URLs of one client: each target's parse, kept."""

    def __init__(self) -> None:
        # Per target (URL without query): its parts, or None when httpx makes its URLs
        # (credentials, a fragment, another scheme, unparsable).
        self._targets: dict[str, tuple[str, str, int | None, bytes, bytes, str] | None] = {}

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
                return None  # httpx's own parse then raises it for the caller
            plain = "#" not in target and not parsed.userinfo and parsed.scheme in ("http", "https")
            base = self._targets[target] = (
                (parsed.scheme, parsed.host, parsed.port, parsed.netloc, parsed.raw_path, str(parsed))
                if plain else None
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
        scheme, host, port, netloc, raw_path, shown = base
        return PlainURL(scheme, host, port, netloc, raw_path + b"?" + query.encode("ascii"),
                        f"{shown}?{query}")
