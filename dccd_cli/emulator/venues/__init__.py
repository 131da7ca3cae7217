"""The emulated venues, registered through the ``dccd.venues`` entry-point group.

A venue is one class (a :class:`..venue.Venue`) and one entry point, ``name =
"module:Class"`` in ``[project.entry-points."dccd.venues"]`` of pyproject.toml; a
third-party package ships its venue beside its adapter (``dccd.adapters``) the same way.
The server mounts each at ``/<name>``. Listing the names imports nothing; a venue's module
is imported when its class is first asked for. A venue whose entry point cannot be loaded
is a bug, not an absence: :class:`VenueLoadError` says which one and why.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from dccd_cli.emulator.venue import Venue

GROUP = "dccd.venues"


class VenueLoadError(RuntimeError):
    """A registered venue that cannot be loaded, or is not a :class:`Venue` of its name."""


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)}


def venue_names() -> list[str]:
    """The registered venues' names, sorted; no venue module is imported."""
    return list(_entry_points())


@cache
def venue_class(name: str) -> type[Venue[Any]]:
    """The class of the venue registered as ``name`` (KeyError when none is)."""
    ep = _entry_points()[name]
    try:
        cls = ep.load()
    except Exception as exc:
        raise VenueLoadError(f"venue {name!r} ({ep.value}) could not be loaded: "
                             f"{type(exc).__name__}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Venue)):
        raise VenueLoadError(f"venue {name!r} ({ep.value}) is not a dccd emulator Venue class")
    if cls.name != name:
        raise VenueLoadError(f"venue {name!r} ({ep.value}) calls itself {cls.name!r}; "
                             "the entry point's name and the class's name must agree")
    return cls


def venues() -> dict[str, type[Venue[Any]]]:
    """Name -> venue class for every registered venue (each module imported once)."""
    return {name: venue_class(name) for name in venue_names()}


def clear_cache() -> None:
    """Read the entry points again (after a distribution was installed or removed)."""
    _entry_points.cache_clear()
    venue_class.cache_clear()


__all__ = ["GROUP", "VenueLoadError", "clear_cache", "venue_class", "venue_names", "venues"]
