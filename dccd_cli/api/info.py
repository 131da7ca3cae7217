"""What a dataset holds, which exchanges dccd serves, and an exchange's markets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dccd_cli.api._loop import run_blocking
from dccd_cli.api.emulate import emulated
from dccd_cli.api.paths import out_path
from dccd_cli.errors import ExchangeError, UsageError
from dccd_cli.exchange.adapter import Adapter
from dccd_cli.exchange.registry import adapters, get_adapter
from dccd_cli.run.markets import run_markets
from dccd_cli.run.request import check_base_url, not_an_api
from dccd_cli.run.results import MarketsResult
from dccd_cli.storage.inventory import Inventory, take_inventory


def inventory(out: str | os.PathLike[str] | None = None, *, verify: bool = False) -> Inventory:
    """What the dataset ``out`` holds (None: the default dataset directory): per series its
    range, rows, files, bytes, coverage and gaps (failed, never fetched, no data at the
    exchange). ``verify`` re-reads every file against the data contract (``problems`` per
    series). ``to_json()`` is ``dccd inventory --json``'s object. ``OutputPathError`` (a
    ``UsageError``) when ``out`` is not a directory."""
    return inventory_of(out, verify=verify)


def inventory_of(out: str | os.PathLike[str] | None, *, verify: bool = False, width: int = 60,
                 what: str = "out") -> Inventory:
    """``inventory()`` with its coverage strips ``width`` cells wide (the CLI's ``--width``)."""
    return take_inventory(out_path(out, what=what), verify=verify, width=width)


@dataclass(frozen=True)
class KindInfo:
    """What an exchange serves of one data kind over REST, as its adapter declares it."""

    max_per_request: int
    page_direction: str
    weight: int
    spans: tuple[str, ...]  # ohlc: the unified span codes; trades: none
    history: str  # "full" or "recent"
    history_text: str  # "full", "the last 23 hours", ...
    recent_bars: int | None
    recent_seconds: int | None
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"max_per_request": self.max_per_request, "page_direction": self.page_direction,
                "weight": self.weight, "spans": list(self.spans), "history": self.history,
                "history_text": self.history_text, "recent_bars": self.recent_bars,
                "recent_seconds": self.recent_seconds, "note": self.note}


@dataclass(frozen=True)
class ExchangeInfo:
    """One exchange as its adapter declares it; ``to_json()`` is its entry in
    ``dccd exchanges --json``."""

    name: str
    title: str
    base_url: str
    rate_limit_capacity: float
    rate_limit_window_s: float
    history: str  # "OHLC full; trades the last 23 hours"
    ohlc: KindInfo | None
    trades: KindInfo | None
    unsupported: Mapping[str, str]

    @property
    def spans(self) -> tuple[str, ...]:
        """The candle spans it serves (none without OHLC)."""
        return self.ohlc.spans if self.ohlc is not None else ()

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The kinds it serves over REST: ``("ohlc", "trades")``, or fewer."""
        return tuple(k for k, cap in (("ohlc", self.ohlc), ("trades", self.trades)) if cap is not None)

    @classmethod
    def of(cls, adapter_cls: type[Adapter]) -> ExchangeInfo:
        d = adapter_cls.describe()

        def kind(c: dict[str, Any] | None) -> KindInfo | None:
            return None if c is None else KindInfo(**{**c, "spans": tuple(c["spans"])})

        return cls(name=d["name"], title=d["title"], base_url=d["base_url"],
                   rate_limit_capacity=d["rate_limit"]["capacity"],
                   rate_limit_window_s=d["rate_limit"]["window_s"], history=d["history"],
                   ohlc=kind(d["ohlc"]), trades=kind(d["trades"]), unsupported=dict(d["unsupported"]))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "base_url": self.base_url,
                "rate_limit": {"capacity": self.rate_limit_capacity, "window_s": self.rate_limit_window_s},
                "history": self.history,
                "ohlc": self.ohlc.to_json() if self.ohlc is not None else None,
                "trades": self.trades.to_json() if self.trades is not None else None,
                "unsupported": dict(self.unsupported)}


def exchanges() -> dict[str, ExchangeInfo]:
    """Every exchange dccd serves (its adapters, entry points included), by name."""
    return {name: ExchangeInfo.of(cls) for name, cls in adapters().items()}


async def markets_async(exchange: str, pattern: str | None = None, *, base_url: str | None = None,
                        emulate: bool = False) -> MarketsResult:
    """The exchange's markets (its market list, cached for a day), or those ``pattern``
    stands for (``*-USDT``, or one market's name), sorted by unified symbol; ``to_json()``
    is ``dccd markets --json``'s object. ``base_url``: another endpoint; ``emulate``: an
    in-process emulator's. A ``base_url`` that answers 404 for the market list is a
    ``BaseUrlError``; an exchange that cannot be reached a ``FetchError``."""
    if emulate and base_url is not None:
        raise UsageError("give base_url or emulate, not both")
    given = check_base_url(base_url) if base_url is not None else None
    name = get_adapter(exchange).name
    async with emulated(emulate, name) as url:
        try:
            return await run_markets(name, pattern, url or given)
        except ExchangeError as exc:
            wrong = not_an_api(exc, name, f"--base-url {given}") if given else None
            if wrong is not None:
                raise wrong from exc
            raise


def markets(exchange: str, pattern: str | None = None, *, base_url: str | None = None,
            emulate: bool = False) -> MarketsResult:
    """``markets_async`` run to its end, from a plain script or inside a running loop."""
    return run_blocking(lambda: markets_async(exchange, pattern, base_url=base_url, emulate=emulate))
