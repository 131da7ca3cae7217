"""What a download command asks for, checked before any request.

Everything a user can get wrong without the network is refused here (a ``UsageError``,
exit 2, nothing written): the exchange, the kind and span it serves, the dates, the output
directory and the symbols' form. The job (``dccd_cli.job``) then resolves the symbols
against the exchange's market list and bounds the range by the exchange's clock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .capability import Adapter, Capability
from .errors import BadDateError, OutputPathError, UnsupportedRangeError, UnsupportedSpanError
from .markets import check_symbol
from .registry import get_adapter
from .timeutil import Span, format_ns, now_ns, parse_time


@dataclass
class DownloadRequest:
    kind: str  # "ohlc" | "trades"
    exchange: str
    symbols: list[str]
    start: str
    end: str | None
    out: Path
    span: str | None = None
    base_url: str | None = None
    include_partial: bool = False


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
    span: Span | None
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


def check_dates(start: str, end: str | None, *, now: int) -> None:
    """Parse START and END as a user wrote them (``origin``, ``now``, relative, dates); both
    fixed and START not before END is a BadDateError. Relative dates are checked against
    ``now``; the job reads them again against the exchange's clock."""
    first = None if start == "origin" else parse_time(start, now=now, what="start")
    last = now if end in (None, "now") else parse_time(end, now=now, what="end")
    if first is not None and first >= last:
        raise BadDateError(f"start {format_ns(first)} is not before end {format_ns(last)}; give --start earlier than --end")


def validate(req: DownloadRequest) -> _Plan:
    """Every check that needs no network. Raises a UsageError (exit 2) on the first problem."""
    adapter_cls = get_adapter(req.exchange)
    cap, span = check_kind(adapter_cls, req.kind, req.span)
    if not req.symbols:
        raise BadDateError("name at least one symbol, e.g. BTC-USDT")
    symbols = [check_symbol(s) for s in req.symbols]
    check_dates(req.start, req.end, now=now_ns())
    out = check_output_dir(req.out)
    return _Plan(adapter_cls, cap, span, symbols, out)

