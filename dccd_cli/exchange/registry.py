"""The adapter registry: every exchange adapter registers through the ``dccd.adapters``
entry-point group, the built-in ones exactly like third-party ones (see pyproject.toml)."""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import entry_points

from dccd_cli.errors import UnknownExchangeError
from dccd_cli.exchange.adapter import Adapter

GROUP = "dccd.adapters"
log = logging.getLogger("dccd.registry")


@cache
def adapters() -> dict[str, type[Adapter]]:
    """Name -> adapter class, sorted by name. A broken third-party plugin is skipped, logged."""
    found: dict[str, type[Adapter]] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 — one bad plugin must not break the tool
            log.warning("adapter %s could not be loaded: %s", ep.name, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            log.warning("adapter %s is not a dccd Adapter subclass; skipped", ep.name)
            continue
        found[ep.name] = cls
    return dict(sorted(found.items()))


def get_adapter(name: str) -> type[Adapter]:
    known = adapters()
    cls = known.get(name.lower())
    if cls is None:
        raise UnknownExchangeError(
            f"unknown exchange {name!r}; supported: {', '.join(known) or '(none installed)'}"
        )
    return cls
