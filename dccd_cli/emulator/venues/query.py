"""Query parameters read the way exchanges read them: the first value wins, an empty value
is absent, and a missing or malformed value is the venue's own error."""

from __future__ import annotations

from collections.abc import Callable


class QueryParams:
    """``missing(name)`` / ``malformed(name)`` build the venue's error for a parameter."""

    def __init__(
        self,
        params: dict[str, list[str]],
        *,
        missing: Callable[[str], Exception],
        malformed: Callable[[str], Exception],
        signed: bool = False,
    ) -> None:
        self.params = params
        self._missing = missing
        self._malformed = malformed
        self._signed = signed

    def get(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values and values[0] != "" else None

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise self._missing(name)
        return value

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        digits = value.lstrip("-") if self._signed else value
        if not digits.isdigit() or len(value) > 19:
            raise self._malformed(name)
        return int(value)
