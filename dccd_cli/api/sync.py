"""``sync()``: what ``dccd sync`` does, from a job file or from jobs given as Python objects."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dccd_cli.api._args import TimeArg, time_text
from dccd_cli.api._loop import run_blocking
from dccd_cli.api.emulate import emulated
from dccd_cli.api.paths import default_out, out_path
from dccd_cli.errors import UsageError
from dccd_cli.run.download import ProgressSink
from dccd_cli.run.jobfile import config_from_jobs
from dccd_cli.run.request import check_base_url
from dccd_cli.run.results import SyncResult
from dccd_cli.run.sync import SyncOptions, run_sync

log = logging.getLogger("dccd")


@dataclass(frozen=True)
class Job:
    """One sync job as a Python object: the keys of a job file's ``[[job]]`` table, checked
    by the same rules (``sync(jobs=[Job(...)])``; a plain mapping with those keys works too).

    ``ohlc``: candle spans; ``trades``: every trade; at least one of them. ``start``/``end``
    as ``download()`` takes them. ``out`` None: ``sync()``'s ``out``, else the default
    dataset directory. ``overlap``/``trades_overlap``: the newest stored bars (or span of
    trades, ``"1m"``) fetched again each run, for late corrections.
    """

    exchange: str
    symbols: Sequence[str]
    start: TimeArg
    ohlc: Sequence[str] = ()
    trades: bool = False
    end: TimeArg | None = None
    name: str | None = None
    out: str | os.PathLike[str] | None = None
    overlap: int = 3
    trades_overlap: str = "1m"
    base_url: str | None = None

    def as_mapping(self) -> dict[str, Any]:
        """The job as a job file's keys (those left unset are left out)."""
        doc: dict[str, Any] = {
            "exchange": self.exchange, "start": time_text(self.start, "start"),
            "symbols": _listed(self.symbols), "ohlc": _listed(self.ohlc),
            "trades": self.trades, "overlap": self.overlap, "trades_overlap": self.trades_overlap,
        }
        optional = {"end": None if self.end is None else time_text(self.end, "end"), "name": self.name,
                    "out": None if self.out is None else os.fspath(self.out), "base_url": self.base_url}
        doc.update({k: v for k, v in optional.items() if v is not None})
        return doc


def _listed(value: object) -> object:
    """Texts as a job file's list; anything else as it is, for the job's checks to name."""
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, (list, tuple)) else value


def _base_urls(urls: Mapping[str, str] | None) -> dict[str, str]:
    if urls is not None and not isinstance(urls, Mapping):
        raise UsageError(f"base_urls must map an exchange to its URL, e.g. "
                         f"{{'binance': 'http://127.0.0.1:8765/binance'}}, not {urls!r}")
    return {name.strip().lower(): check_base_url(url, what=f"base_urls[{name!r}]")
            for name, url in (urls or {}).items()}


def sync_options(
    config: str | os.PathLike[str] | None = None, *, jobs: Sequence[Job | Mapping[str, Any]] | None = None,
    out: str | os.PathLike[str] | None = None, dry_run: bool = False, wait: bool = False,
    wait_timeout: float = 3600.0, base_urls: Mapping[str, str] | None = None,
) -> SyncOptions:
    """What ``sync()`` runs, its jobs validated (a ``ConfigError`` naming every problem)."""
    if (config is None) == (jobs is None):
        raise UsageError("give a job file (config=PATH) or jobs=[...], one of them")
    checked = None
    if jobs is not None:
        if isinstance(jobs, (str, bytes, Mapping)) or not isinstance(jobs, Sequence):
            raise UsageError(f"jobs must be a list of jobs, not {type(jobs).__name__}")
        checked = config_from_jobs([j.as_mapping() if isinstance(j, Job) else j for j in jobs])
    return SyncOptions(config=None if config is None else Path(config).expanduser(), jobs=checked,
                       default_out=default_out(), out=None if out is None else out_path(out, what="out"),
                       base_urls=_base_urls(base_urls), dry_run=dry_run, wait=wait,
                       wait_timeout=wait_timeout, notify=log.warning)


async def run_options(opts: SyncOptions, *, emulate: bool = False,
                      progress: ProgressSink | None = None) -> SyncResult:
    """Run checked sync options; with ``emulate``, every exchange is an in-process emulator's."""
    async with emulated(emulate) as url:
        opts.emulator_url = url
        return await run_sync(opts, progress)


async def sync_async(
    config: str | os.PathLike[str] | None = None, *, jobs: Sequence[Job | Mapping[str, Any]] | None = None,
    out: str | os.PathLike[str] | None = None, dry_run: bool = False, wait: bool = False,
    wait_timeout: float = 3600.0, base_urls: Mapping[str, str] | None = None,
    progress: ProgressSink | None = None, emulate: bool = False,
) -> SyncResult:
    """Run the jobs of a job file (``config``) or the ``jobs`` given (``Job`` objects or
    mappings with a job file's keys) incrementally, as ``dccd sync`` does: only what is
    not stored yet, plus an overlap of the newest bars. Return what was done
    (``SyncResult``; its ``to_json()`` is ``dccd sync --json``'s object).

    ``out`` overrides every job's dataset directory; ``base_urls`` maps an exchange to
    another endpoint; ``emulate=True`` points every exchange at an in-process emulator.
    ``dry_run``: the plan and its cost, nothing fetched or written. ``wait``: wait up to
    ``wait_timeout`` seconds for another sync holding the dataset's lock, instead of raising
    ``DatasetLockedError`` at once (an orchestrator reschedules on it).

    Jobs that do not validate raise ``ConfigError`` (a ``UsageError``) naming every problem,
    before any request. Data that could not be fetched does not raise:
    ``result.raise_for_failures()`` raises ``PartialDownloadError`` naming it.
    """
    opts = sync_options(config, jobs=jobs, out=out, dry_run=dry_run, wait=wait,
                        wait_timeout=wait_timeout, base_urls=base_urls)
    result = await run_options(opts, emulate=emulate, progress=progress)
    log.info("sync: %d series, %d rows added", len(result.series), result.rows_added)
    return result


def sync(
    config: str | os.PathLike[str] | None = None, *, jobs: Sequence[Job | Mapping[str, Any]] | None = None,
    out: str | os.PathLike[str] | None = None, dry_run: bool = False, wait: bool = False,
    wait_timeout: float = 3600.0, base_urls: Mapping[str, str] | None = None,
    progress: ProgressSink | None = None, emulate: bool = False,
) -> SyncResult:
    """``sync_async`` run to its end, from a plain script or inside a running event loop
    (on a thread of its own). Same arguments, result and errors as ``sync_async``."""
    return run_blocking(lambda: sync_async(
        config, jobs=jobs, out=out, dry_run=dry_run, wait=wait, wait_timeout=wait_timeout,
        base_urls=base_urls, progress=progress, emulate=emulate))
