"""An exchange's market list, declared as data: where the list is, which fields name a
market, and the exchange's own asset codes that have a usual name elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from dccd_cli.exchange.adapter import Market
from dccd_cli.exchange.replies import Envelope, pick
from dccd_cli.schema import TS_TYPE
from dccd_cli.timeutil import ms_to_ns

__all__ = ["MarketFields"]


@dataclass(frozen=True)
class MarketFields:
    """Where an exchange lists its markets and how one item reads.

    The generic loader (``Adapter.load_markets``) GETs ``endpoint`` with ``params``, takes
    the list at ``rows`` and makes one ``Market`` per item: ``BASE-QUOTE`` from the
    upper-cased ``base`` and ``quote`` fields (through ``aliases``), ``native`` as the
    exchange's own name, ``listed`` as the first instant of data (``listed_unit``: Unix ms
    or ISO 8601), the ``extra`` fields kept as they are. Items whose ``only`` fields differ
    from the values given (missing or empty fields read as their ``only`` value when
    ``only_default`` says so) are not markets of ours (futures, swaps).
    """

    endpoint: str
    native: str
    base: str
    quote: str
    rows: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    weight: int = 1
    listed: str | None = None
    listed_unit: Literal["ms", "iso"] = "ms"
    extra: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    only: Mapping[str, str] = field(default_factory=dict)
    only_default: bool = False

    @property
    def envelope(self) -> Envelope:
        return Envelope(self.rows)

    def asset(self, code: Any) -> str:
        """An exchange's asset code as dccd names it: upper case, through ``aliases``."""
        text = str(code or "").upper()
        return self.aliases.get(text, text)

    def market(self, item: Mapping[str, Any]) -> Market | None:
        """The market one list item describes, or None when it is not one of ours."""
        for name, wanted in self.only.items():
            value = item.get(name)
            if value in (None, "") and self.only_default:
                value = wanted
            if str(value).upper() != wanted.upper():
                return None
        base, quote = self.asset(pick(item, self.base)), self.asset(pick(item, self.quote))
        return Market(symbol=f"{base}-{quote}", native=str(pick(item, self.native)), base=base,
                      quote=quote, listed_ns=self._listed(item),
                      extra={name: item.get(name) for name in self.extra})

    def markets(self, items: list[Any]) -> list[Market]:
        return [m for item in items if (m := self.market(item)) is not None]

    def _listed(self, item: Mapping[str, Any]) -> int | None:
        value = pick(item, self.listed) if self.listed else None
        if self.listed_unit == "iso":
            if not isinstance(value, str) or not value:
                return None
            listed: int = pa.array([value]).cast(TS_TYPE).view(pa.int64())[0].as_py()
            return listed
        text = str(value or "")
        return ms_to_ns(text) if text.isdigit() and int(text) > 0 else None
