"""Replies that parse but cannot be trusted: what dccd does before it believes a page.

``dccd_cli.net.client`` handles what goes wrong on the way (network errors, 5xx, 429, 418,
bodies that are not JSON). This module handles the next layer, where the reply is valid
JSON but not the page it should be:

* **Unreadable pages.** A page its adapter cannot read — an error object where rows were
  expected, a row of the wrong shape — is a ``ProtocolError``: asked again (up to
  ``PAGE_RETRIES`` times, with backoff) and then reported as a failed range, never stored.
  An adapter that trips over such a page (``KeyError``, ``ValueError``, …) is treated the
  same way, so the failure is named instead of ending in a traceback.
* **Empty pages.** An empty page is asked a second time before it is believed. A client
  cannot tell an empty answer from a quiet market in general; two empty answers in a row
  are taken as the truth (a maintenance window, a market not yet listed).
* **Dense ids.** Where the exchange numbers its trades consecutively and pages by id
  (Binance aggregate trades: ``Capability.dense_ids``), :func:`verify_dense_ids` proves
  every range complete: each chunk's first id must follow the previous chunk's last, the
  range's first trade must be the first at or after its start, its last the last before
  its end. A missing stretch — an empty or short page inside a range that has data — is
  fetched by id and put back where it belongs; if that fails the stretch is reported as a
  failed range, so the ledger never claims trades it does not hold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.errors import DccdError, FetchError, ProtocolError
from dccd_cli.pieces import Chunk, FailedRange, Piece
from dccd_cli.schema import TRADES_SCHEMA, ts_ns_column
from dccd_cli.tradeorder import sort_trades

__all__ = ["PAGE_RETRIES", "guarded", "is_empty_page", "verify_dense_ids"]

log = logging.getLogger("dccd.guard")

T = TypeVar("T")

#: Extra attempts for a page its adapter could not read (after the HTTP layer's own).
PAGE_RETRIES = 3
_BACKOFF_S = 0.2
_US = 1_000

#: Exceptions of an adapter reading a page it did not expect (translated to ProtocolError).
_PARSE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, pa.ArrowException)


def is_empty_page(result: object) -> bool:
    """True for an empty OHLC table or an empty ``(trades table, cursor)`` page."""
    table = result[0] if isinstance(result, tuple) else result
    return isinstance(table, pa.Table) and table.num_rows == 0


async def guarded(
    call: Callable[[], Awaitable[T]],
    *,
    exchange: str,
    what: str,
    reask_empty: bool = True,
    retries: int = PAGE_RETRIES,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``await call()`` (one page), re-asked while it cannot be read or comes back empty.

    Raises ``ProtocolError`` (a ``FetchError``: the caller reports a failed range) once
    ``retries`` re-asks of an unreadable page are spent; other ``FetchError``s — those of
    the HTTP client included, already retried there — and usage errors pass through.
    """
    failures = 0
    reasked = False
    while True:
        try:
            result = await call()
        except DccdError as exc:
            # The HTTP layer's own ProtocolErrors (a body that is not JSON) carry the
            # reply's status and were retried there already; the adapter's do not.
            if not isinstance(exc, ProtocolError) or exc.status is not None:
                raise
            err: ProtocolError = exc
        except _PARSE_ERRORS as exc:
            err = ProtocolError(
                f"{exchange} sent a {what} page that cannot be read "
                f"({type(exc).__name__}: {exc})", exchange=exchange)
            err.__cause__ = exc
        else:
            if reask_empty and not reasked and is_empty_page(result):
                reasked = True  # believed only when it is empty twice in a row
                continue
            return result
        if failures >= retries:
            raise err
        failures += 1
        log.info("%s: %s; asking again (%d/%d)", exchange, err, failures, retries)
        await sleep(_BACKOFF_S * 2 ** (failures - 1))


# -- dense ids -------------------------------------------------------------------------

#: ``fetch_from(first_id)``: one page of trades with ids from ``first_id`` on (oldest first).
IdFetch = Callable[[int], Awaitable[pa.Table]]


def _ids(table: pa.Table) -> npt.NDArray[np.int64]:
    return np.asarray(pc.cast(table.column("id"), pa.int64()).to_numpy(zero_copy_only=False),
                      dtype=np.int64)


def _ts(table: pa.Table) -> npt.NDArray[np.int64]:
    return np.asarray(ts_ns_column(table).to_numpy(), dtype=np.int64)


def _run_from(ids: npt.NDArray[np.int64], first: int) -> npt.NDArray[np.bool_]:
    """Which of ``ids`` form the run of consecutive ids ``first, first + 1, ...``."""
    unique = np.unique(ids[ids >= first])
    n = int(np.count_nonzero(unique == first + np.arange(len(unique))))
    return (ids >= first) & (ids < first + n)


def _sorted_unique(table: pa.Table) -> pa.Table:
    """Trades in trade order (ts, then id as a number) without repeated ids."""
    if table.num_rows < 2:
        return table
    table = sort_trades(table)
    ids = _ids(table)
    _, first = np.unique(ids, return_index=True)
    if len(first) == table.num_rows:
        return table
    return table.take(pa.array(np.sort(first)))


def _with_rows(piece: Chunk, rows: pa.Table) -> Chunk:
    """``piece`` with those of ``rows`` that fall in its range added."""
    ts = _ts(rows)
    mine = rows.filter(pa.array((ts >= piece.start_ns) & (ts < piece.end_ns)))
    if mine.num_rows == 0:
        return piece
    table = _sorted_unique(pa.concat_tables([piece.table, mine]))
    return Chunk(piece.start_ns, piece.end_ns, table, piece.requests)


Gap = tuple[int, int, str]  # [t0, t1) that could not be proven complete, and why


def _slice(piece: Chunk, t0: int, t1: int) -> Chunk:
    ts = _ts(piece.table)
    rows = piece.table.filter(pa.array((ts >= t0) & (ts < t1)))
    return Chunk(t0, t1, rows, piece.requests)


def _carve(chunks: list[Chunk], gaps: list[Gap]) -> list[Piece]:
    """Contiguous ``chunks`` with the ``gaps`` cut out as failed ranges, in time order.

    Gaps are widened to whole microseconds (the precision of the summary's times, so the
    range it names is exact), clipped to the chunks' span and merged where they overlap,
    so the pieces stay disjoint (the writer's rule); rows inside a gap are dropped — the
    next run fetches the failed range again.
    """
    if not gaps or not chunks:
        return list(chunks)
    lo, hi = chunks[0].start_ns, chunks[-1].end_ns
    merged: list[Gap] = []
    for t0, t1, error in sorted(gaps):
        t0, t1 = max(t0 // _US * _US, lo), min(-(-t1 // _US) * _US, hi)
        if t0 >= t1:
            continue
        if merged and t0 <= merged[-1][1]:
            m0, m1, merror = merged[-1]
            merged[-1] = (m0, max(m1, t1), merror)
        else:
            merged.append((t0, t1, error))
    out: list[Piece] = [FailedRange(t0, t1, error) for t0, t1, error in merged]
    for c in chunks:
        cursor = c.start_ns
        for t0, t1, _ in merged:
            if t1 <= cursor or t0 >= c.end_ns:
                continue
            if t0 > cursor:
                out.append(_slice(c, cursor, t0))
            cursor = min(t1, c.end_ns)
        if cursor < c.end_ns:
            out.append(_slice(c, cursor, c.end_ns))
    return sorted(out, key=lambda p: p.start_ns)


class _DenseIds:
    """The state of one verified range: chunks held until their last id is proven."""

    def __init__(self, fetch_from: IdFetch, cap: int, exchange: str) -> None:
        self.fetch_from = fetch_from
        self.cap = max(1, cap)
        self.exchange = exchange
        self.held: list[Chunk] = []  # the chunk with the newest row, and empty ones after it
        self.last: tuple[int, int] | None = None  # (id, ts) of the newest row so far
        self.broken: str | None = None  # the error of a failed range just before the chain

    async def _page(self, first_id: int, *, must: bool = True) -> pa.Table:
        """Trades from ``first_id`` on. When they ``must`` exist (ids below a known one),
        an empty answer is a lie and is asked again, like an unreadable page."""
        for _ in range(PAGE_RETRIES):
            page = await self.fetch_from(max(0, first_id))
            if page.num_rows or not must:
                break
        return _sorted_unique(page)

    async def forward(self, first_id: int, *, stop_id: int | None = None,
                      stop_ts: int | None = None) -> pa.Table:
        """Trades from ``first_id`` up to (not including) ``stop_id``, or those before
        ``stop_ts`` (a tail: where the exchange's trades may simply end).

        Only the run of consecutive ids from the cursor counts on each page: rows a page
        repeats from elsewhere neither end the walk early nor move it past rows unseen.
        """
        found: list[pa.Table] = []
        cursor = first_id
        while True:
            page = await self._page(cursor, must=stop_id is not None)
            ids, ts = _ids(page), _ts(page)
            run = _run_from(ids, cursor)
            if not run.any():
                if stop_id is not None:  # ids that must exist did not come
                    raise FetchError(f"{self.exchange} did not return trade ids "
                                     f"{cursor}..{stop_id - 1}", exchange=self.exchange)
                break  # no trade after the last one: the tail is complete
            keep = run.copy()
            if stop_id is not None:
                keep &= ids < stop_id
            if stop_ts is not None:
                keep &= ts < stop_ts
            found.append(page.filter(pa.array(keep)))
            newest = int(ids[run].max())
            if stop_id is not None and newest >= stop_id - 1:
                break
            if stop_ts is not None and (int(ts[run].max()) >= stop_ts
                                        or int(run.sum()) < self.cap):
                break  # past the end, or a short page: nothing more has happened yet
            cursor = newest + 1
        rows = _sorted_unique(pa.concat_tables(found)) if found else TRADES_SCHEMA.empty_table()
        if stop_id is not None and rows.num_rows != stop_id - first_id:
            raise FetchError(f"{self.exchange} skipped trade ids between {first_id} and "
                             f"{stop_id - 1}", exchange=self.exchange)
        return rows

    async def backward(self, first_id: int, start_ns: int) -> pa.Table:
        """Trades with ids below ``first_id`` and ``ts >= start_ns`` (a missing head)."""
        found: list[pa.Table] = []
        hi = first_id
        while hi > 0:
            lo = max(0, hi - self.cap)
            page = await self._page(lo)
            ids, ts = _ids(page), _ts(page)
            inside = (ids >= lo) & (ids < hi)
            if int(inside.sum()) != hi - lo:
                raise FetchError(f"{self.exchange} did not return trade ids {lo}..{hi - 1}",
                                 exchange=self.exchange)
            found.append(page.filter(pa.array(inside & (ts >= start_ns))))
            if (ts[inside] < start_ns).any() or lo == 0:
                break
            hi = lo
        return _sorted_unique(pa.concat_tables(found)) if found else TRADES_SCHEMA.empty_table()

    def _place(self, group: list[Chunk], rows: pa.Table) -> list[Chunk]:
        """The missing ``rows`` put into the chunks whose ranges hold them."""
        if rows.num_rows == 0:
            return group
        log.warning("%s: %d trades missing from the pages were fetched by id",
                    self.exchange, rows.num_rows)
        return [_with_rows(p, rows) for p in group]

    async def add(self, chunk: Chunk) -> list[Piece]:
        """Take the next chunk; returns the pieces now proven (or carved out as failed)."""
        if chunk.table.num_rows == 0:
            self.held.append(chunk)
            return []
        ids, ts = _ids(chunk.table), _ts(chunk.table)
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            # Not the usual page (ids rising, none repeated): sort and de-duplicate first.
            chunk = Chunk(chunk.start_ns, chunk.end_ns, _sorted_unique(chunk.table), chunk.requests)
            ids, ts = _ids(chunk.table), _ts(chunk.table)
            order = np.argsort(ids, kind="stable")
            ids, ts = ids[order], ts[order]
        if self.last is not None and ids[0] == self.last[0] + 1 and ids[-1] == self.last[0] + len(ids):
            # The usual chunk: rising ids that go on from the last proven one, none missing.
            # It proves the held chunks complete and is held in turn (as below, for less).
            proven, self.held = self.held, [chunk]
            self.last = (int(ids[-1]), int(ts[-1]))
            return list(proven)
        group: list[Chunk] = [*self.held, chunk]
        gaps: list[Gap] = []
        if self.last is None and self.broken is not None:
            # Just after a failed range nothing can be proven about the trades before this
            # one: the failure is widened to it rather than probed (the exchange is failing).
            gaps.append((group[0].start_ns, int(ts[0]) + 1, self.broken))
        elif self.last is None and ids[0] > 0:
            # The range's first trade must be the first at or after its start.
            start = group[0].start_ns
            try:
                group = self._place(group, await self.backward(int(ids[0]), start))
            except FetchError as exc:
                gaps.append((start, int(ts[0]) + 1, str(exc)))
        self.broken = None
        # Ids a+1 .. b-1 are missing wherever consecutive ids a, b jump: they traded in
        # [ts(a), ts(b)]. Found with numpy; the loop runs over the jumps only.
        all_ids, all_ts = ids, ts
        if self.last is not None:
            all_ids = np.concatenate(([self.last[0]], ids))
            all_ts = np.concatenate(([self.last[1]], ts))
        for k in np.flatnonzero(np.diff(all_ids) > 1).tolist():
            a, b = int(all_ids[k]), int(all_ids[k + 1])
            try:
                group = self._place(group, await self.forward(a + 1, stop_id=b))
            except FetchError as exc:
                gaps.append((int(all_ts[k]), int(all_ts[k + 1]) + 1, str(exc)))
        self.last = (int(ids[-1]), int(ts[-1]))
        pieces = _carve(group, gaps)
        # Hold the piece with the newest row: a gap found later may fall in its range.
        if isinstance(pieces[-1], Chunk):
            self.held = [pieces[-1]]
            return pieces[:-1]
        self.held = []
        return pieces

    async def close(self, error: str | None = None) -> list[Piece]:
        """End of a verified chain: prove its tail — or, when ``error`` says the chain ends
        at a failed range (or a ban), widen that failure back to the newest proven trade."""
        self.broken = error
        held, self.held = self.held, []
        last, self.last = self.last, None
        if not held or last is None:
            return list(held)
        end = held[-1].end_ns
        if error is None:
            try:
                rows = await self.forward(last[0] + 1, stop_ts=end)
                return list(self._place(held, rows))
            except FetchError as exc:
                error = str(exc)
        return _carve(held, [(last[1], end, error)])


async def verify_dense_ids(
    pieces: AsyncIterator[Piece], fetch_from: IdFetch, cap: int, *, exchange: str
) -> AsyncIterator[Piece]:
    """The paginator's pieces, proven complete by their consecutive trade ids.

    Chunks are held back until the next chunk's first id (or, at the end of the range, a
    look past its last trade) proves that no id between them is missing; missing trades
    are fetched by id with ``fetch_from``. A stretch that cannot be fetched becomes a
    ``FailedRange``, and a failed range from the paginator is widened to the nearest trades
    proven on either side. Costs two requests per range (its head and its tail).
    """
    state = _DenseIds(fetch_from, cap, exchange)
    try:
        async for piece in pieces:
            if isinstance(piece, FailedRange):
                # A failed range breaks the chain of ids; the trades on either side of it
                # cannot be proven without asking a failing exchange again and again, so
                # the failure is widened to the nearest proven trade on each side.
                for p in await state.close(piece.error):
                    yield p
                yield piece
                continue
            for p in await state.add(piece):
                yield p
    except FetchError as exc:
        for p in await state.close(str(exc)):  # a ban: nothing more can be asked
            yield p
        raise
    for p in await state.close():
        yield p
