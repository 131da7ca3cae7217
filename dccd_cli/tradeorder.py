"""The order of trades that share a timestamp: the exchange's execution order.

A taker order that sweeps the book fills many makers in one millisecond, so ``ts`` alone
does not order trades. One rule, used by the paginator, the writer, merges into stored
files and ``dccd inventory --verify``:

* **Integer ids** (every venue but BitMEX: Binance aggregate ids, Coinbase ``trade_id``,
  OKX ``tradeId``, Bitfinex, Bitstamp and Kraken ids) number a market's trades in
  execution order, so rows sharing a ``ts`` are ordered by id *as a number*: ``"999999"``
  before ``"1000000"``, which a text sort would put the other way round.
* **Other ids** (BitMEX's ``trdMatchID`` is a UUID) say nothing about order, so rows
  sharing a ``ts`` keep the order the exchange listed them in (BitMEX lists trades in
  execution order, and its adapter hands them on oldest first): only stable sorts and
  order-keeping merges touch them. A merge puts a re-fetched row where the newest fetch
  had it, after the stored rows of its ``ts`` that fetch did not return.

The ids of a table count as integers when every one of them is (``integer_ids``); the id
column stays a string in the files, as the data contract says.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dccd_cli.schema import ts_ns_column

I64 = npt.NDArray[np.int64]

_INTEGER = re.compile(r"-?[0-9]+")


def integer_ids(ids: pa.Array | pa.ChunkedArray) -> I64 | None:
    """The ids as int64 when every one is a decimal integer, else None.

    The first id is looked at first: a failed cast of a long column of UUIDs costs ~0.27 µs
    a row, a successful one ~0.007 µs.
    """
    if len(ids) == 0:
        return np.empty(0, np.int64)
    first = ids[0].as_py()
    if ids.null_count or not isinstance(first, str) or not _INTEGER.fullmatch(first):
        return None
    try:
        nums = pc.cast(ids, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not digits, or past int64
        return None
    return np.asarray(nums.to_numpy(), dtype=np.int64)


def in_trade_order(ts: npt.NDArray[Any], nums: I64 | None, *, strict: bool = False) -> bool:
    """Whether rows with times ``ts`` and integer ids ``nums`` (None: other ids) are in
    trade order (vectorised); with ``strict``, also that no two rows repeat a (ts, id).

    Rows with other ids are in order when ``ts`` never falls: their order within a
    timestamp is the exchange's and cannot be checked, nor can their repeats.
    """
    if len(ts) < 2:
        return True
    step = np.diff(ts)
    if step.min() < 0:
        return False
    if nums is None:
        return True
    rise = np.diff(nums)
    bad = rise <= 0 if strict else rise < 0
    return not bool((bad & (step == 0)).any())


def trade_order(ts: npt.NDArray[Any], nums: I64 | None) -> I64:
    """The permutation that puts rows in trade order: by ``ts``, then by ``nums`` where the
    ids are integers; stable, so rows that tie keep their order."""
    if nums is None:
        return np.argsort(ts, kind="stable").astype(np.int64)
    return np.lexsort((nums, ts)).astype(np.int64)  # lexsort is stable


def sort_trades(table: pa.Table) -> pa.Table:
    """``table`` (trades) in trade order; the same table when it already is."""
    if table.num_rows < 2:
        return table
    ts_np = ts_ns_column(table).to_numpy()
    nums = integer_ids(table.column("id"))
    if in_trade_order(ts_np, nums):
        return table
    return table.take(pa.array(trade_order(ts_np, nums)))
