"""What paginators hand the storage writer: proven coverage with its rows, or a failed range.

A ``Chunk`` is a promise: *every* row the exchange has with ``ts`` in ``[start_ns, end_ns)``
is in ``table`` (which may be empty: the exchange had no data there). The writer records
that range in the series' coverage ledger only after the rows are safely on disk.
A ``FailedRange`` is a range that could not be fetched after retries; the ledger records it
as failed so the next run fetches it again, and the summary names it.
Paginators yield both kinds in time order for one series.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Chunk:
    start_ns: int
    end_ns: int
    table: pa.Table  # rows with start_ns <= ts < end_ns, by ts (trades: dccd_cli.tradeorder)
    requests: int = 1


@dataclass(frozen=True)
class FailedRange:
    start_ns: int
    end_ns: int
    error: str


Piece = Chunk | FailedRange
