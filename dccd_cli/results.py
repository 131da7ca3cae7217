"""Result objects: what a command did, for one renderer to print for people or as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .timeutil import format_ns


@dataclass
class FailedSpan:
    start_ns: int
    end_ns: int
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"start": format_ns(self.start_ns), "end": format_ns(self.end_ns), "error": self.error}


@dataclass
class SeriesResult:
    """One series (exchange, symbol, kind, span) of one run."""

    exchange: str
    symbol: str
    native_symbol: str
    kind: str
    span: str | None
    start_ns: int
    end_ns: int
    rows_added: int = 0
    rows_written: int = 0
    requests: int = 0
    files: list[str] = field(default_factory=list)
    already_stored: bool = False
    failed: list[FailedSpan] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and self.error is None

    @property
    def label(self) -> str:
        tail = f" {self.span}" if self.span else ""
        return f"{self.exchange} {self.symbol} {self.kind}{tail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "symbol": self.symbol,
            "native_symbol": self.native_symbol,
            "kind": self.kind,
            "span": self.span,
            "start": format_ns(self.start_ns),
            "end": format_ns(self.end_ns),
            "rows_added": self.rows_added,
            "rows_written": self.rows_written,
            "requests": self.requests,
            "files": self.files,
            "already_stored": self.already_stored,
            "failed": [f.to_json() for f in self.failed],
            "error": self.error,
            "notes": self.notes,
        }


@dataclass
class RunResult:
    command: str
    out: str
    series: list[SeriesResult] = field(default_factory=list)
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 0 if all(s.ok for s in self.series) else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "out": self.out,
            "ok": self.exit_code == 0,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "series": [s.to_json() for s in self.series],
        }
