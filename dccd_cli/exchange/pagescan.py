"""A vectorised reader of compact JSON pages straight into Arrow columns, or None.

Why: a Binance page is a JSON array of 1000 flat records. Parsing it into 1000 Python
dicts or lists (orjson, ~0.4 ms) and converting those to Arrow (~0.25 ms) is a large share of the
CPU dccd spends on a page. The pages are machine-written, always in one exact compact
shape, so their structure can be checked and their values located with a few numpy passes
over the bytes, and the values converted by Arrow's own casts, with no Python object per
cell: ~0.4 ms for an aggTrades page, ~0.5 ms for a klines page (against ~0.65 and ~1.5 ms).

Only that exact shape is read: ``[`` records separated by ``,`` ``]``, each record either an
object with the layout's keys in the layout's order (``{"a":1,"p":"0.1",...}``) or an
array of the layout's fields (``[1,"0.1",...]``); no whitespace, escapes, non-ASCII bytes,
nulls, nesting, extra or missing fields. Every byte of the body is accounted for — each
structural character and key at its expected place, each value checked against its kind
— and anything else makes ``scan`` return None, so that the caller parses the body the
general way (and raises there if it is not valid). A value is never guessed: integers
are plain non-negative decimals, decimals are the JSON strings Arrow's cast accepts (the
same cast the general path applies), booleans exactly ``true``/``false``.

Two readers of that shape, tried in turn: the compiled one (``dccd_cli/exchange/_pagescan.c``, built
by setup.py where a C compiler is at hand; one pass over the bytes, ~0.09 ms a page),
which reads only values inside its exact fast paths and leaves any other page to the
numpy one here (``_scan``), which accepts exactly what Arrow's casts accept. The two agree
value for value wherever the compiled one reads a page (tests/core/test_pagescan.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

_native: ModuleType | None
try:
    from dccd_cli.exchange import _pagescan as _native
except ImportError:  # pragma: no cover - an install without a C compiler
    _native = None

__all__ = ["Kind", "Layout", "scan"]

#: What a field holds: ``int`` a JSON integer (plain non-negative decimal, to int64);
#: ``dec`` a decimal in a JSON string (``"40402.13000000"``, to float64); ``str`` any other
#: JSON string (to string); ``bool`` true or false.
Kind = Literal["int", "dec", "str", "bool"]

_U8 = npt.NDArray[np.uint8]
_I64 = npt.NDArray[np.int64]

_QUOTE, _COLON, _COMMA = ord('"'), ord(":"), ord(",")
_LBRACKET, _RBRACKET, _LBRACE, _RBRACE = ord("["), ord("]"), ord("{"), ord("}")
_ZERO, _BACKSLASH, _T, _F, _E = ord("0"), ord("\\"), ord("t"), ord("f"), ord("e")
_TRUE_WORD = np.frombuffer(b"true", "<u4")[0]
_FALS_WORD = np.frombuffer(b"fals", "<u4")[0]
_MAX_BODY = 2**31 - 1  # Arrow string offsets are int32


@dataclass(frozen=True, eq=False)
class Layout:
    """The record shape of a page: its fields (name, kind) in order, whether records are
    objects (keyed by the names, in that order) or arrays, and which fields ``scan``
    returns (``keep``; the others are only checked)."""

    fields: tuple[tuple[str, Kind], ...]
    keyed: bool
    keep: frozenset[str]
    # Tables derived once per layout, for ``_scan``.
    _cols: dict[str, _I64] = field(init=False, repr=False)  # field indexes by kind
    _take: dict[str, slice | _I64] = field(init=False, repr=False)  # the same, as a slice if it can
    _width: _I64 = field(init=False, repr=False)  # per key: from the mark before it to its colon
    # Per byte offset back from a colon (0: the colon): (offset, the byte every field has
    # there, or else the fields that have a byte there and those bytes).
    _key_checks: tuple[tuple[int, int, _I64 | None, _U8 | None], ...] = field(init=False, repr=False)
    # For the compiled reader: the layout as bytes (see _pagescan.c), the kept fields in
    # output order with their numpy types, and the fewest bytes a record takes (which
    # sizes the outputs); None where it does not read this layout (a kept string).
    _spec: bytes | None = field(init=False, repr=False)
    _outputs: tuple[tuple[str, type], ...] = field(init=False, repr=False)
    _min_record: int = field(init=False, repr=False)

    @classmethod
    def objects(cls, keep: tuple[str, ...] | None = None, **fields: Kind) -> Layout:
        """Records like ``{"a":1,"p":"0.1"}``: ``Layout.objects(a="int", p="dec")``."""
        return cls(tuple(fields.items()), True, frozenset(fields if keep is None else keep))

    @classmethod
    def arrays(cls, keep: tuple[str, ...] | None = None, **fields: Kind) -> Layout:
        """Records like ``[1,"0.1"]``, named here by position: ``Layout.arrays(t="int", o="dec")``."""
        return cls(tuple(fields.items()), False, frozenset(fields if keep is None else keep))

    def __post_init__(self) -> None:
        names = [name for name, _ in self.fields]
        if not names or len(set(names)) != len(names) or not self.keep <= set(names):
            raise ValueError("a layout needs distinct field names, and keeps only its own")
        cols = {k: np.array([j for j, (_, kind) in enumerate(self.fields) if kind == k], np.int64)
                for k in ("int", "dec", "str", "bool")}
        quoted = [b'"' + name.encode() + b'"' for name in names]
        if self.keyed and any(
            c in b'"\\:,{}[]' or c < 0x21 or c > 0x7E for q in quoted for c in q[1:-1]
        ):
            # Keys are matched byte for byte: one a JSON writer would escape never matches.
            raise ValueError(f"keys {names} are not all plain ASCII names")
        checks: list[tuple[int, int, _I64 | None, _U8 | None]] = []
        with_colon = [q + b":" for q in quoted]
        for back in range(1, max(map(len, with_colon)) + 1):
            there = [j for j, q in enumerate(with_colon) if back <= len(q)]
            row = np.array([with_colon[j][-back] for j in there], np.uint8)
            if len(there) == len(quoted) and (row == row[0]).all():
                checks.append((back - 1, int(row[0]), None, None))
            else:
                checks.append((back - 1, 0, np.array(there, np.int64), row))
        object.__setattr__(self, "_cols", cols)
        # A slice selects a run of columns without copying them.
        take = {k: slice(int(c[0]), int(c[-1]) + 1) if len(c) and (np.diff(c) == 1).all() else c
                for k, c in cols.items()}
        object.__setattr__(self, "_take", take)
        object.__setattr__(self, "_width", np.array([len(q) + 1 for q in quoted], np.int64))
        object.__setattr__(self, "_key_checks", tuple(checks))
        self._compile_spec(with_colon)

    def _compile_spec(self, keys: list[bytes]) -> None:
        """The compiled reader's view of the layout (``keys``: each field's '"name":')."""
        kept = [(name, kind) for name, kind in self.fields if name in self.keep]
        readable = len(self.fields) <= 64 and all(kind != "str" for _, kind in kept)
        outputs = tuple((name, _NUMPY_OF[kind]) for name, kind in kept)
        slot = {name: i for i, (name, _) in enumerate(outputs)}
        spec = bytearray([int(self.keyed), len(self.fields)])
        for (name, kind), key in zip(self.fields, keys):
            key = key if self.keyed else b""
            spec += bytes([ord(kind[0]), slot.get(name, 255), len(key)]) + key
            readable = readable and len(key) < 256
        smallest = {"int": 1, "dec": 3, "str": 2, "bool": 4}
        # Opener, separators between fields, closer, the separator after the record.
        least = 2 + len(self.fields) + sum(smallest[k] for _, k in self.fields)
        if self.keyed:
            least += sum(len(key) for key in keys)
        object.__setattr__(self, "_spec", bytes(spec) if readable else None)
        object.__setattr__(self, "_outputs", outputs)
        object.__setattr__(self, "_min_record", least)


_NUMPY_OF: dict[str, type] = {"int": np.int64, "dec": np.float64, "bool": np.uint8, "str": object}


def scan(body: bytes, layout: Layout) -> dict[str, pa.Array] | None:
    """The kept columns of a page in ``layout`` (int64, float64, string or bool by kind),
    or None when the body is not exactly in that shape. An empty array is None too: the
    general path handles it as cheaply."""
    if _native is not None and layout._spec is not None:
        fast = _scan_compiled(body, layout)
        if fast is not None:
            return fast
    return _scan_numpy(body, layout)


def _scan_numpy(body: bytes, layout: Layout) -> dict[str, pa.Array] | None:
    """``scan`` by the numpy reader alone."""
    try:
        return _scan(body, layout)
    except pa.ArrowInvalid:
        return None  # a value Arrow's cast refuses (not a number, out of int64's range)
    except IndexError:  # never seen: a shape the checks missed is the JSON path's, too
        return None


def _scan_compiled(body: bytes, layout: Layout) -> dict[str, pa.Array] | None:
    """The compiled reader's columns, or None where it leaves the page to ``_scan``."""
    assert _native is not None and layout._spec is not None
    rows = len(body) // layout._min_record + 1
    outs: list[npt.NDArray[Any]] = [np.empty(rows, dtype) for _, dtype in layout._outputs]
    n = _native.scan_into(body, layout._spec, outs)
    if not n:
        return None
    # pa.array wraps int64 and float64 memory as it is (booleans are packed into bits), so
    # the rows are copied out of the outputs, which are sized for the smallest possible
    # records (about twice a Binance page's rows): pages wait in buffers, and the spare
    # half would be held with them (~13 MB at 8 cursors of 48 pages).
    return {name: pa.array(out[:n].view(np.bool_) if dtype is np.uint8 else out[:n].copy())
            for (name, dtype), out in zip(layout._outputs, outs)}


def _scan(body: bytes, layout: Layout) -> dict[str, pa.Array] | None:
    size = len(body)
    if size < 4 or size > _MAX_BODY:
        return None
    a: _U8 = np.frombuffer(body, np.uint8)
    if a[0] != _LBRACKET or a[-1] != _RBRACKET:
        return None  # e.g. an error object {"code":...,"msg":...}
    cols = layout._cols
    if len(cols["str"]) and (
        ((a - np.uint8(0x21)) > np.uint8(0x7E - 0x21)).any() or (a == _BACKSLASH).any()
    ):
        # A string is taken byte for byte, so none may hold whitespace, a control or
        # non-ASCII byte, or an escape (uint8 arithmetic wraps: bytes below 0x21 become
        # >= 0xE0). Without strings no such byte can pass: every other byte is a mark, a
        # key, a bracket or a value checked below, and casts refuse them.
        return None

    # The marks that delimit values: commas, and for objects the colons after keys. A
    # mark inside a value (a string with a comma, a nested value) shifts every later one,
    # which the distance checks below catch; the braces or brackets of records are
    # checked at their fixed places next to the separators instead of being searched for.
    m = len(layout.fields)
    commas = np.flatnonzero(a == _COMMA)
    n, rest = divmod(len(commas) + 1, m)
    if rest or n == 0:
        return None
    # Per record, the comma after each field; the last one is the separator to the next
    # record, or for the last record the closing "]" of the page.
    ends = np.append(commas, size - 1).reshape(n, m)
    seps = ends[:, -1]
    before = np.empty(n, np.int64)  # the "[" or "," before each record
    before[0] = 0
    before[1:] = seps[:-1]
    opener, closer = (_LBRACE, _RBRACE) if layout.keyed else (_LBRACKET, _RBRACKET)
    if (a[before + 1] != opener).any() or (a[seps - 1] != closer).any():
        return None
    if layout.keyed:
        # Each key sits right after the mark before it ("{" or a comma), and its colon
        # right after it: so where each colon must be is known, and every byte of
        # '"key":' is compared there (once the spans are known to lie inside the body).
        # A colon anywhere else would be inside a value, which its own check refuses (or,
        # in a string, is text).
        key_at = np.empty((n, m), np.int64)
        key_at[:, 0] = before + 1
        key_at[:, 1:] = ends[:, :-1]
        colons = key_at + layout._width
        starts = colons + 1
    else:
        starts = np.empty((n, m), np.int64)
        starts[:, 0] = before + 2  # after the record's "["
        starts[:, 1:] = ends[:, :-1] + 1
    stops = ends.copy()
    stops[:, -1] = seps - 1  # the last value ends before the record's "}" or "]"
    if (stops <= starts).any():
        # An empty value, or marks out of order (a key running past the next comma or the
        # body's end): every index read below is now inside the body.
        return None
    if layout.keyed:
        for back, byte, sel, row in layout._key_checks:
            # One byte of every key at a time, counted back from the colons; the colon
            # and the quotes are the same in every field, so compared as a scalar.
            got = a[(colons if sel is None else colons[:, sel]) - back]
            if (got != (byte if row is None else row)).any():
                return None

    if len(cols["str"]):
        # Strings are taken as they are, so none may hold a quote (it would have had to
        # be escaped): every quote of the body must be one checked elsewhere, two per key
        # and two per string value.
        quotes = 2 * (len(cols["dec"]) + len(cols["str"]) + (m if layout.keyed else 0))
        if np.count_nonzero(a == _QUOTE) != n * quotes:
            return None

    out: dict[str, pa.Array] = {}
    if len(cols["int"]):
        s, e = starts[:, layout._take["int"]], stops[:, layout._take["int"]]
        first = a[s]
        # A plain decimal: no sign, no leading zero but for 0 itself. Once the first byte
        # is a digit other than such a 0, Arrow's cast refuses any byte but digits ("-",
        # "0x" and leading zeros, which it would take, being ruled out here).
        odd = first - np.uint8(_ZERO + 1) > 8
        if odd.any() and ((first[odd] != _ZERO) | (e[odd] - s[odd] != 1)).any():
            return None
        _keep(out, layout, "int", _cast_spans(body, s, e, pa.int64()))
    for kind in ("dec", "str"):
        if not len(cols[kind]):
            continue
        s, e = starts[:, layout._take[kind]], stops[:, layout._take[kind]]
        # A JSON string, quote to quote; a decimal not empty inside.
        if ((e - s < (3 if kind == "dec" else 2)).any() or (a[s] != _QUOTE).any()
                or (a[e - 1] != _QUOTE).any()):
            return None
        if kind == "dec":
            _keep(out, layout, "dec", _cast_spans(body, s + 1, e - 1, pa.float64()))
        else:
            for k, j in enumerate(cols["str"]):
                name = layout.fields[j][0]
                if name in layout.keep:
                    out[name] = _spans_array(body, s[:, k] + 1, e[:, k] - 1).drop_null()
    if len(cols["bool"]):
        s = starts[:, layout._take["bool"]].ravel()
        length = stops[:, layout._take["bool"]].ravel() - s
        if ((length < 4) | (length > 5)).any():
            return None  # (also keeps the reads below inside the body)
        # Exactly "true" or "false": the first four bytes as one word say which, then the
        # length, and for false the fifth byte, must agree.
        words = np.ndarray((size - 3,), "<u4", body, 0, (1,))  # each 4 bytes on, unaligned
        word = words[s]
        is_true = word == _TRUE_WORD
        if (length != 5 - is_true).any():
            return None
        if (~is_true & ((word != _FALS_WORD) | (a[s + 4] != _E))).any():
            return None
        _keep(out, layout, "bool", is_true.reshape(n, -1))
    return out


def _keep(out: dict[str, pa.Array], layout: Layout, kind: str, values: npt.NDArray[Any]) -> None:
    """The kept fields of ``kind``, from its values (records × fields of that kind)."""
    for k, j in enumerate(layout._cols[kind]):
        name = layout.fields[j][0]
        if name in layout.keep:
            out[name] = pa.array(values[:, k])


@lru_cache(maxsize=8)
def _alternate_validity(length: int) -> pa.Buffer:
    """A validity bitmap 1, 0, 1, 0, ...: the values of a spans array are valid and the
    gaps between them null, so that a cast never reads the gaps."""
    return pa.py_buffer(np.full((length + 7) // 8, 0x55, np.uint8).tobytes())


def _spans_array(body: bytes, s: _I64, e: _I64) -> pa.StringArray:
    """A string array over ``body`` itself (no copy): the spans ``s[i]..e[i]`` in row-major
    order at even indexes, the gaps between them as nulls at odd ones. Spans are in body
    order, so the offsets are non-decreasing as Arrow requires."""
    count = s.size
    offsets = np.empty(2 * count, np.int32)
    offsets[0::2] = s.ravel()
    offsets[1::2] = e.ravel()
    length = 2 * count - 1
    return pa.StringArray.from_buffers(
        length, pa.py_buffer(offsets), pa.py_buffer(body), _alternate_validity(length)
    )


def _cast_spans(body: bytes, s: _I64, e: _I64, target: pa.DataType) -> npt.NDArray[Any]:
    """The spans parsed by one Arrow cast, shaped like ``s`` (records × fields). Raises
    ``ArrowInvalid`` when a span is not a value of ``target``."""
    cast = pc.cast(_spans_array(body, s, e), target)
    flat = np.frombuffer(cast.buffers()[1], target.to_pandas_dtype(), count=len(cast))
    return flat[0::2].reshape(s.shape)
