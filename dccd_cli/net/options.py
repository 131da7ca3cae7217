"""How hard the HTTP client tries: ``HTTPOptions``, given explicitly or read from the
``DCCD_HTTP_*`` environment variables (for slow links, and for tests that want a failure
to be quick)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from dccd_cli.errors import UsageError

__all__ = ["ENV_OPTIONS", "HTTPOptions"]

#: The environment variables ``HTTPOptions.from_env`` reads, and the field each sets.
ENV_OPTIONS: dict[str, str] = {
    "DCCD_HTTP_TIMEOUT": "timeout",
    "DCCD_HTTP_RETRIES": "max_retries",
    "DCCD_HTTP_BACKOFF": "backoff_base",
}
_WHOLE = frozenset({"max_retries", "max_rate_limit_waits"})


@dataclass(frozen=True, slots=True)
class HTTPOptions:
    """Seconds per attempt (the whole attempt, redirects included), retries of a failed
    request, the base and cap of the exponential backoff between them (seconds), and how
    many rate-limit waits a request may make before it fails."""

    timeout: float = 30.0
    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_rate_limit_waits: int = 50

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            whole = f.name in _WHOLE
            kind = int if whole else (int, float)
            if (isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value)
                    or value < 0 or (f.name == "timeout" and value == 0)):
                unit = "a whole number" if whole else "a positive number of seconds"
                raise UsageError(f"HTTP option {f.name}={value!r} is not valid; give {unit}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> HTTPOptions:
        """The defaults, with what ``ENV_OPTIONS`` set in ``environ`` (the process's by
        default), then with ``given``. A bad value is a ``UsageError`` naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var, name in ENV_OPTIONS.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            whole = name in _WHOLE
            try:
                value: float = int(raw) if whole else float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0 or (name == "timeout" and value == 0):
                unit = "a whole number" if whole else "a positive number of seconds"
                raise UsageError(f"{var}={raw!r} is not valid; give {unit}")
            values[name] = value
        return cls(**{**values, **given})

    def with_(self, **changes: Any) -> HTTPOptions:
        """These options with ``changes`` (None values ignored)."""
        set_ = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **set_) if set_ else self
