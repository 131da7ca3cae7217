"""What a download command asks for, checked before any request.

Everything a user can get wrong without the network is refused here (a ``UsageError``,
exit 2, nothing written): the exchange, the kind and span it serves, the dates, the output
directory and the symbols' form. The job (``dccd_cli.run.download``) then resolves the symbols
against the exchange's market list and bounds the range by the exchange's clock.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dccd_cli.errors import (
    BadDateError,
    BaseUrlError,
    ExchangeError,
    OutputPathError,
    UnsupportedRangeError,
    UnsupportedSpanError,
    UsageError,
)
from dccd_cli.exchange.adapter import Adapter, Capability
from dccd_cli.exchange.markets import check_symbol
from dccd_cli.exchange.registry import get_adapter
from dccd_cli.timeutil import Span, as_typed, parse_time, reads_clock

# A clock in the middle of the accepted years: a relative date's form is checked against
# it, its range only against the exchange's clock.
_MIDDLE_NS = parse_time("2100-01-01", now=0)


@dataclass
class DownloadRequest:
    kind: str  # "ohlc" | "trades"
    exchange: str
    symbols: list[str]
    start: str
    end: str | None
    out: Path
    # ohlc: the spans as typed ("1h", or "1h,1d"); one series per symbol and span
    spans: list[str] = field(default_factory=list)
    base_url: str | None = None
    include_partial: bool = False
    refetch: bool = False  # fetch the whole range whatever the ledger holds
    dry_run: bool = False  # the plan and its cost only: nothing fetched or written
    # How messages name the dates: as options (the command line) or as arguments (the API).
    names: tuple[str, str] = ("--start", "--end")


# "s3://bucket/x", "file:///data": a scheme of two or more characters (so "C:/data" is a path).
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
_BASE_URL_RE = re.compile(r"^https?://[^\s/?#]+(/\S*)?$")
_USERINFO_RE = re.compile(r"(?<=//)[^/@\s]*@")
BASE_URL_EXAMPLE = "http://127.0.0.1:8765/binance"


def local_dir(text: str, what: str = "--out") -> Path:
    """The dataset directory a user typed, as a local path. A URL is refused (exit 2):
    dccd writes to a local directory only, and ``Path("s3://b/x")`` would quietly become a
    folder named ``s3:``. ``file://`` is refused too, naming the path to give instead, so
    that one spelling means one thing."""
    m = _URL_RE.match(text.strip())
    if m is None:
        return Path(text).expanduser()
    if m.group(1).lower() == "file":
        path = text.strip()[len(m.group(0)):]
        hint = f"give the path itself: {'/' + path.lstrip('/')}"
    else:
        hint = "object storage is not supported yet; give a local directory"
    raise OutputPathError(f"{what} {text!r} is a URL; dccd writes to a local directory only: {hint}")


def check_base_url(url: str, what: str = "--base-url") -> str:
    """An exchange's base URL as typed: ``http(s)://host[:port][/path]``, without the
    trailing slash. Anything else is refused at once (exit 2), before a request is retried
    against a host that cannot exist."""
    text = url.strip()
    if not _BASE_URL_RE.match(text):
        raise BaseUrlError(f"{what} {shown_url(url)!r} is not an http(s) URL; give the exchange's API root "
                           f"with its scheme, e.g. {BASE_URL_EXAMPLE}")
    return text.rstrip("/")


def shown_url(text: str) -> str:
    """A URL as typed, fit for a message: ``user:password@`` becomes ``***@``."""
    return _USERINFO_RE.sub("***@", text)


def not_an_api(exc: ExchangeError, exchange: str, given: str) -> BaseUrlError | None:
    """A base URL the user gave (``given``: how, e.g. ``--base-url URL``) that answers
    HTTP 404 for the market list is a wrong URL, not an exchange fault: the error to raise
    instead, naming the URL asked and what was expected; None for any other error."""
    if exc.status != 404:
        return None
    return BaseUrlError(f"{shown_url(given)}: {exc.url or 'the market list'} answered HTTP 404 where {exchange}'s "
                        f"market list was expected; is it the exchange's API root, like "
                        f"{BASE_URL_EXAMPLE.replace('binance', exchange)}?")


def check_output_dir(out: Path) -> Path:
    """The output directory must be a directory we can create or write; nothing is created."""
    out = out.expanduser().absolute()
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputPathError(f"output path {str(probe)!r} is a file; --out must name a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"output directory {str(probe)!r} is not writable; pass --out DIR you can write to")
    return out


@dataclass
class _Plan:
    """What was validated before any request."""

    adapter_cls: type[Adapter]
    cap: Capability
    spans: list[Span | None]  # [None] for trades
    symbols: list[str]
    out: Path


def check_kind(adapter_cls: type[Adapter], kind: str, span: str | None) -> tuple[Capability, Span | None]:
    """The capability of ``kind`` and the parsed span; a UsageError if the exchange lacks it."""
    cap = adapter_cls.capability(kind)
    if cap is None:
        instead = adapter_cls.unsupported.get(kind, "")
        raise UnsupportedRangeError(
            f"{adapter_cls.name} does not serve {kind} history over its REST API"
            + (f"; {instead}" if instead else "")
        )
    if kind != "ohlc":
        return cap, None
    if span is None:
        raise UnsupportedSpanError(f"--span is required for ohlc; {adapter_cls.name} offers {', '.join(cap.spans)}")
    parsed = Span.parse(span)
    if parsed.code not in cap.spans:
        raise UnsupportedSpanError(
            f"span {parsed.code!r} is not offered by {adapter_cls.name}; it offers {', '.join(cap.spans)}"
        )
    return cap, parsed


def check_spans(adapter_cls: type[Adapter], kind: str, given: list[str]) -> tuple[Capability, list[Span | None]]:
    """The capability of ``kind`` and every span asked (``--span 1h --span 1d``, or
    ``--span 1h,1d``), each checked before any request and each once, in the order given.
    Trades have no span: ``[None]``."""
    codes = [code.strip() for text in given for code in text.split(",") if code.strip()]
    if kind != "ohlc" or not codes:
        cap, span = check_kind(adapter_cls, kind, None)
        return cap, [span]
    checked = [check_kind(adapter_cls, kind, code) for code in codes]
    spans = {span.code: span for _, span in checked if span is not None}  # 1h twice: once
    return checked[0][0], list(spans.values())


def check_dates(start: str, end: str | None, *, names: tuple[str, str] = ("--start", "--end")) -> None:
    """Check START and END as a user wrote them, before any request: each must parse, and
    when both are fixed dates START must be before END (a BadDateError otherwise, naming
    each as ``names`` says the user gave it: ``--start``, or ``start`` in a sync file).

    ``now`` and relative dates (``-30m``) are checked for form only: they mean something
    only against the exchange's clock, which the job reads (``bounds.bound_series``). Against
    this machine's clock a check could refuse a range the exchange's clock makes valid, or
    let through one it makes empty."""
    fixed: list[int | None] = []
    for text, name in ((start, names[0]), (end, names[1])):
        about = name.lstrip("-")
        if text is None or (text == "origin" and about == "start"):
            fixed.append(None)
        elif reads_clock(text):
            parse_time(text, now=_MIDDLE_NS, what=name, about=about)  # its form only
            fixed.append(None)
        else:
            fixed.append(parse_time(text, now=0, what=name, about=about))
    first, last = fixed
    if first is not None and last is not None and first >= last:
        assert end is not None
        raise BadDateError(f"{as_typed(names[0], start)} is not before {as_typed(names[1], end)}; "
                           "give a start before the end", about="start")


def validate(req: DownloadRequest) -> _Plan:
    """Every check that needs no network. Raises a UsageError (exit 2) on the first problem."""
    adapter_cls = get_adapter(req.exchange)
    cap, spans = check_spans(adapter_cls, req.kind, req.spans)
    if not req.symbols:
        raise UsageError("name at least one symbol, e.g. BTC-USDT")
    symbols = [check_symbol(s) for s in req.symbols]
    if req.base_url is not None:
        req.base_url = check_base_url(req.base_url)
    check_dates(req.start, req.end, names=req.names)
    out = check_output_dir(req.out)
    return _Plan(adapter_cls, cap, spans, symbols, out)

