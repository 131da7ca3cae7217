"""``dccd sync``: the jobs of a TOML file, incrementally, for cron and CI.

A run goes through four steps, and nothing is fetched until the first three pass:

1. **validate** the file (``run.jobfile``, ``run.jobcheck``): keys, exchanges, kinds,
   spans, dates, outputs; a problem is ``FILE:LINE`` and exit 2, before any request;
2. **lock** each output dataset (``storage.lock``), so overlapping cron runs never write one
   series at once (``--wait`` waits, ``--no-wait`` exits 75 naming the holder);
3. **plan**, per exchange endpoint: the market list (patterns such as ``*-USDT`` are
   matched against it; an unknown symbol is still a config error, exit 2), the
   exchange's clock, and per series the ranges its coverage ledger lacks (or whose files
   are gone, or that hold bars stored while forming) plus an overlap of the newest stored
   bars (``job.plan_ranges``) — ``--dry-run`` stops here and prints the plan with what it
   would cost (``estimate``: requests, rows, bytes, and time at each exchange's rate limit);
4. **fetch**: exchanges at once (``asyncio.gather``), a few series of one exchange at once
   sharing its one client and token bucket, each through ``job.run_series`` — the code
   path of ``dccd ohlc`` and ``dccd trades``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from dccd_cli.errors import ConfigError, DccdError, ExchangeError, FetchError, UsageError
from dccd_cli.exchange.adapter import Adapter, Market
from dccd_cli.exchange.markets import load_markets, match_symbol, unknown_symbol
from dccd_cli.exchange.registry import get_adapter
from dccd_cli.net import bans
from dccd_cli.net.client import AsyncHTTPClient
from dccd_cli.run.bounds import bound_series, exchange_now
from dccd_cli.run.download import (
    NoProgress,
    ProgressSink,
    SeriesTask,
    plan_ranges,
    run_series,
)
from dccd_cli.run.estimate import exchange_total, planned_series
from dccd_cli.run.jobfile import JobSpec, SyncConfig, load_config
from dccd_cli.run.request import check_kind, check_output_dir, not_an_api
from dccd_cli.run.results import JobFailure, SeriesResult, SyncResult
from dccd_cli.storage.lock import DatasetLock

#: Where a series stands in the file: (job, market within the job, kind or span within the
#: job), so results come back in the file's order.
Order = tuple[int, int, int]


@dataclass
class SyncOptions:
    """What ``dccd sync`` was asked. ``out`` (``--out``) overrides every job's output;
    ``default_out`` is for jobs that name none. ``base_urls`` (``--base-url EXCHANGE=URL``)
    override the jobs' own; ``emulator_url`` points every exchange at an emulator.
    ``jobs``, when given, are the validated jobs to run instead of ``config``'s."""

    config: Path | None
    default_out: Path
    out: Path | None = None
    base_urls: dict[str, str] = field(default_factory=dict)
    emulator_url: str | None = None
    dry_run: bool = False
    wait: bool = False
    wait_timeout: float = 3600.0
    max_series: int = 4  # series of one exchange in flight at once
    notify: Callable[[str], None] | None = None
    jobs: SyncConfig | None = None


@dataclass
class _Group:
    """The jobs that talk to one exchange endpoint, and what planning made of them."""

    exchange: str
    base_url: str
    adapter_cls: type[Adapter]
    jobs: list[JobSpec]
    adapter: Adapter | None = None
    tasks: list[tuple[Order, SeriesTask]] = field(default_factory=list)
    done: list[tuple[Order, SeriesResult]] = field(default_factory=list)  # no fetch needed
    failures: list[JobFailure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    given: list[str] = field(default_factory=list)  # how the user named base_url, if they did


def _base_url(opts: SyncOptions, job: JobSpec, cls: type[Adapter]) -> str:
    if opts.emulator_url:
        return f"{opts.emulator_url.rstrip('/')}/{job.exchange}"
    return (opts.base_urls.get(job.exchange) or job.base_url or cls.default_base_url).rstrip("/")


def _url_given(opts: SyncOptions, job: JobSpec) -> str | None:
    """How the user gave the job's base URL, for a message; None for the exchange's own."""
    if opts.emulator_url:
        return None
    if job.exchange in opts.base_urls:
        return f"--base-url {job.exchange}={opts.base_urls[job.exchange]}"
    if job.base_url:
        return f"{job.where('base_url')}: {job.title}: base_url {job.base_url!r}"
    return None


async def run_sync(opts: SyncOptions, progress: ProgressSink | None = None) -> SyncResult:
    """Run (or with ``dry_run`` plan) every job of ``opts.config``; say what happened."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    progress = progress or NoProgress()
    if opts.jobs is not None:
        config = opts.jobs
    elif opts.config is not None:
        config = load_config(opts.config)
    else:
        raise UsageError("give a job file or jobs to run")
    override = check_output_dir(opts.out) if opts.out is not None else None
    outs = {job.index: override or job.out or check_output_dir(opts.default_out) for job in config.jobs}
    groups: dict[tuple[str, str], _Group] = {}
    for job in config.jobs:
        cls = get_adapter(job.exchange)
        url = _base_url(opts, job, cls)
        group = groups.setdefault((job.exchange, url), _Group(job.exchange, url, cls, []))
        group.jobs.append(job)
        group.given.extend(g for g in [_url_given(opts, job)] if g and g not in group.given)
    result = SyncResult(config=str(config.path) if config.path is not None else None, outs=sorted({str(p) for p in outs.values()}),
                        dry_run=opts.dry_run)
    async with AsyncExitStack() as stack:
        if not opts.dry_run:  # a dry run writes nothing: it needs no lock and waits for none
            for root in sorted(set(outs.values())):
                await stack.enter_async_context(DatasetLock(
                    root, wait=opts.wait, timeout=opts.wait_timeout, notify=opts.notify))
        clients: list[AsyncHTTPClient] = []
        for g in groups.values():
            http = await stack.enter_async_context(AsyncHTTPClient.shared(
                g.exchange, g.base_url, g.adapter_cls.rate_limit, check=g.adapter_cls.check))
            clients.append(http)
            g.adapter = g.adapter_cls(http)
        await asyncio.gather(*(_plan(g, outs, dry_run=opts.dry_run) for g in groups.values()))
        _refuse_problems(list(groups.values()))
        planned = sorted((i, t) for g in groups.values() for i, t in g.tasks)
        result.failures = [f for g in groups.values() for f in g.failures]
        if opts.dry_run:
            ran = await asyncio.gather(*(_estimate(g) for g in groups.values()))
        else:
            progress.overall(sum(1 for _, t in planned if t.ranges),
                             sum(e - s for _, t in planned for s, e in t.ranges))
            ran = await asyncio.gather(*(_fetch(g, progress, opts.max_series) for g in groups.values()))
        finished = sorted([x for r in ran for x in r] + [x for g in groups.values() for x in g.done],
                          key=lambda x: x[0])
        result.series = [r for _, r in finished]
        if opts.dry_run:
            for name in dict.fromkeys(g.exchange for g in groups.values()):
                total = exchange_total(s.estimate for s in result.series
                                       if s.exchange == name and s.estimate is not None)
                total.probes = sum(c.stats.requests for c in clients if c.exchange == name)
                result.exchanges[name] = total
        result.retries = sum(c.stats.retries for c in clients)
        result.rate_limited = sum(c.stats.rate_limited for c in clients)
    result.seconds = loop.time() - t0
    return result


def _refuse_problems(groups: list[_Group]) -> None:
    """Config errors found while planning (unknown symbols, empty ranges, one series in two
    jobs) stop the whole run before any data request, as those found on reading."""
    problems = [p for g in groups for p in g.problems]
    owners: dict[tuple[Path, object], JobSpec] = {}
    for g in groups:
        for _, task in g.tasks:
            job = next(j for j in g.jobs if j.name == task.job)
            other = owners.setdefault((task.out, task.key), job)
            if other is not job:
                problems.append(
                    f"{job.where('symbols')}: {job.title}: the series {task.key} is "
                    f"also asked by the job {other.name!r} ({other.where('symbols')}); "
                    "a series may be in one job only")
    if problems:
        raise ConfigError("\n".join(sorted(set(problems))))


async def _markets_for(job: JobSpec, g: _Group, markets: dict[str, Market]) -> list[Market]:
    """The job's markets: named ones, and patterns matched on the market list (the reading
    ``dccd ohlc``/``trades`` use, ``markets.match_symbol``)."""
    assert g.adapter is not None
    found: dict[str, Market] = {}
    for sym in job.symbols:
        matched = match_symbol(sym, markets)
        if not matched:  # the cached list may be a day old: ask the exchange once more
            markets.update(await load_markets(g.adapter, g.base_url, refresh=True))
            matched = match_symbol(sym, markets)
        if not matched:
            g.problems.append(f"{job.where(symbol=sym)}: {job.title}: "
                              f"{unknown_symbol(sym, g.exchange, markets)}")
        for m in matched:
            found.setdefault(m.symbol, m)
    return list(found.values())


async def _plan(g: _Group, outs: dict[int, Path], *, dry_run: bool) -> None:
    """Markets, clock and the ranges of every series of the group's jobs. Config problems
    go to ``g.problems``; an exchange that cannot be reached fails its jobs only."""
    assert g.adapter is not None
    adapter = g.adapter
    if (ban := bans.active(g.exchange, g.base_url)) is not None:  # ask it nothing
        g.failures.extend(JobFailure(j.name, g.exchange, ban.refusal()) for j in g.jobs)
        return
    try:
        markets = dict(await load_markets(adapter, g.base_url))
        server_now = await exchange_now(adapter)
        expanded = [(job, await _markets_for(job, g, markets)) for job in g.jobs]
    except FetchError as exc:
        wrong = [w for how in g.given if isinstance(exc, ExchangeError)
                 for w in [not_an_api(exc, g.exchange, how)] if w is not None]
        if wrong:  # a wrong URL is a usage error (exit 2), not the exchange failing
            g.problems.extend(str(w) for w in wrong)
            return
        g.failures.extend(JobFailure(j.name, g.exchange, f"could not plan: {exc}") for j in g.jobs)
        return
    for job, found in expanded:
        for m_i, market in enumerate(found):
            for k_i, (kind, span_code) in enumerate(job.kinds):
                order = (job.index, m_i, k_i)
                cap, span = check_kind(g.adapter_cls, kind, span_code)
                task = SeriesTask(g.exchange, market, kind, span, cap, outs[job.index], 0, 0, job=job.name)
                try:
                    bounds = await bound_series(adapter, cap, kind, span, market, job.start, job.end,
                                                server_now, names=("start", "end"))
                    if bounds is None:
                        done = task.result()
                        done.notes.append("the exchange has no data for this market")
                        g.done.append((order, done))
                        continue
                    task.start_ns, task.end_ns, task.notes = bounds
                    task.ranges = plan_ranges(task, overlap_bars=job.overlap,
                                              overlap_ns=job.trades_overlap_ns, dry_run=dry_run)
                except UsageError as exc:
                    key = getattr(exc, "about", None) or "start"
                    g.problems.append(f"{job.where(key)}: {job.title}: "
                                      f"{market.symbol} {kind}{' ' + span_code if span_code else ''}: {exc}")
                    continue
                except DccdError as exc:  # the origin probe failed, a damaged ledger, ...
                    failed = task.result()
                    failed.error = str(exc)
                    g.done.append((order, failed))
                    continue
                g.tasks.append((order, task))


async def _fetch(g: _Group, progress: ProgressSink, max_series: int) -> list[tuple[Order, SeriesResult]]:
    """The group's series, a few at once: they share the exchange's client and bucket."""
    assert g.adapter is not None
    adapter = g.adapter
    gate = asyncio.Semaphore(max_series)

    async def one(order: Order, task: SeriesTask) -> tuple[Order, SeriesResult]:
        async with gate:
            try:
                return order, await run_series(adapter, task, progress)
            except DccdError as exc:  # this series failed (disk, a refused request): not the rest
                failed = task.result()
                failed.error = str(exc)
                return order, failed

    return list(await asyncio.gather(*(one(i, t) for i, t in g.tasks)))


async def _estimate(g: _Group) -> list[tuple[Order, SeriesResult]]:
    """The dry run's plan of the group: per series its ranges and what fetching them would
    cost (``dccd_cli.run.estimate``; trades take a few requests to tell)."""
    assert g.adapter is not None
    adapter = g.adapter

    async def one(order: Order, task: SeriesTask) -> tuple[Order, SeriesResult]:
        return order, await planned_series(adapter, task)

    return list(await asyncio.gather(*(one(i, t) for i, t in g.tasks)))
