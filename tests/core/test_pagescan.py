"""dccd_cli.exchange.pagescan: the page readers must equal the JSON path on every page they read,
and read nothing that is not exactly in the expected shape (None: the caller then parses
the JSON). Properties on generated Binance pages, their mutations, and the real samples,
for each reader: ``scan`` as dccd calls it, the numpy reader alone, and the compiled one
alone (which may leave a page it could read to the numpy one, never read it otherwise)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dccd_testing import SAMPLES as samples_dir
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dccd_cli.exchange import pagescan
from dccd_cli.exchange.pagescan import Layout, scan

SAMPLES = samples_dir / "binance"

AGG = Layout.objects(a="int", p="dec", q="dec", f="int", l="int", T="int", m="bool", M="bool")
AGG_KINDS = dict(AGG.fields)
KLINES = Layout.arrays(
    t="int", o="dec", h="dec", lo="dec", c="dec", v="dec", ct="int", qv="dec", n="int",
    tb="dec", tq="dec", ignore="str",
)

PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- the reference: the JSON path ------------------------------------------------------


def _column(values: list[Any], kind: str) -> list[Any]:
    """What the JSON path makes of one field's values, or raises if the scanner must not
    have read them (a type the layout does not allow)."""
    if kind == "int":
        assert all(type(v) is int and v >= 0 for v in values)
        return pa.array(values, pa.int64()).to_pylist()
    if kind == "bool":
        assert all(type(v) is bool for v in values)
        return values
    assert all(type(v) is str for v in values)
    if kind == "dec":  # the cast the schema builders apply to decimal strings
        return pc.cast(pa.array(values, pa.string()), pa.float64()).to_pylist()
    return values


def reference(body: bytes, layout: Layout) -> dict[str, list[Any]]:
    """The columns of ``body`` by orjson; raises if it is not a page in ``layout``."""
    rows = orjson.loads(body)
    assert isinstance(rows, list) and rows
    names = [name for name, _ in layout.fields]
    if layout.keyed:
        assert all(isinstance(r, dict) and list(r) == names for r in rows)
        cols = {name: [r[name] for r in rows] for name in names}
    else:
        assert all(isinstance(r, list) and len(r) == len(names) for r in rows)
        cols = {name: [r[j] for r in rows] for j, name in enumerate(names)}
    return {name: _column(cols[name], kind) for name, kind in layout.fields}


Reader = Callable[[bytes, Layout], "dict[str, pa.Array] | None"]


def _compiled(body: bytes, layout: Layout) -> dict[str, pa.Array] | None:
    return pagescan._scan_compiled(body, layout) if layout._spec is not None else None


#: Every reader of the module: scan itself, then each of the two it tries.
READERS: list[Reader] = [scan, pagescan._scan_numpy]
if pagescan._native is not None:
    READERS.append(_compiled)


def nothing_reads(body: bytes, layout: Layout) -> bool:
    return all(read(body, layout) is None for read in READERS)


def same_as_json(body: bytes, layout: Layout) -> bool:
    """The property: each reader reads ``body`` as the JSON path does, or not at all;
    ``scan`` reads exactly what the numpy reader does. Returns whether ``scan`` read it."""
    got = [read(body, layout) for read in READERS]
    assert (got[0] is None) == (got[1] is None)
    if all(g is None for g in got):
        return False
    want = reference(body, layout)  # one read it: so must the JSON path, and alike
    for g in got:
        if g is not None:
            assert {k: _nan_free(v.to_pylist()) for k, v in g.items()} == {
                k: _nan_free(v) for k, v in want.items() if k in layout.keep}
    return got[0] is not None


def _nan_free(values: list[Any]) -> list[Any]:
    """NaN (a "nan" decimal string, cast alike by both paths) made comparable."""
    return ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in values]


# -- generated pages -------------------------------------------------------------------

ints = st.integers(0, 2**63 - 1) | st.integers(0, 10**13)
digits = st.text("0123456789", min_size=1, max_size=12)
decimals = st.one_of(
    st.builds(lambda i, f: f"{int(i)}.{f}", digits, digits),  # Binance's own form
    st.just("0"),
    st.builds(lambda i: str(int(i)), digits),
    st.sampled_from(["1e-8", "1E5", "2.5e+3", ".5", "5.", "-1.5", "+1.5", "0.00000000"]),
    st.floats(min_value=0, max_value=1e12, allow_nan=False).map(repr),
)
trade = st.fixed_dictionaries({
    "a": ints, "p": decimals, "q": decimals, "f": ints, "l": ints, "T": ints,
    "m": st.booleans(), "M": st.booleans(),
}).map(lambda d: {k: d[k] for k in AGG_KINDS})  # Binance's key order
kline = st.tuples(ints, decimals, decimals, decimals, decimals, decimals, ints, decimals, ints,
                  decimals, decimals, st.sampled_from(["0", "", "x", "ignore-me", "{a:b}"]))


def compact(rows: list[Any]) -> bytes:
    return orjson.dumps(rows)  # no whitespace, keys in insertion order: Binance's shape


@PROPS
@given(st.lists(trade, min_size=1, max_size=40))
def test_generated_trade_pages_read_as_the_json_path(rows: list[dict[str, Any]]) -> None:
    body = compact(rows)
    castable = all(_castable(r["p"]) and _castable(r["q"]) for r in rows)
    assert same_as_json(body, AGG) == castable


@PROPS
@given(st.lists(kline, min_size=1, max_size=40))
def test_generated_kline_pages_read_as_the_json_path(rows: list[tuple[Any, ...]]) -> None:
    body = compact([list(r) for r in rows])
    castable = all(_castable(v) for r in rows for v in (*r[1:6], r[7], r[9], r[10]))
    assert same_as_json(body, KLINES) == castable


def _castable(text: str) -> bool:
    try:
        pc.cast(pa.array([text]), pa.float64())
    except pa.ArrowInvalid:
        return False
    return True


# -- mutations: whatever the scanner still reads, it reads as the JSON path does --------

PAGE = compact([
    {"a": 1697929871, "p": "40402.13000000", "q": "0.00585000", "f": 2376992525,
     "l": 2376992525, "T": 1704067200051, "m": True, "M": True},
    {"a": 1697929872, "p": "40383.80000000", "q": "0.00787000", "f": 2376992526,
     "l": 2376992527, "T": 1704067200108, "m": False, "M": True},
])
KPAGE = compact([
    [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815",
     1499644799999, "2434.19055334", 308, "1756.87402397", "28.46694368", "0"],
    [1499040060000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "0",
     1499040119999, "0", 0, "0", "0", "0"],
])
BYTES = st.sampled_from(list(b' \t\n\\"{}[],:0123456789.-+eEtrufalsnx') + [0x00, 0xC3, 0x7F])


@PROPS
@given(st.data())
@pytest.mark.parametrize("page,layout", [(PAGE, AGG), (KPAGE, KLINES)], ids=["aggTrades", "klines"])
def test_mutated_pages_are_read_as_the_json_path_or_not_at_all(
    page: bytes, layout: Layout, data: st.DataObject
) -> None:
    body = bytearray(page)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        if op == "insert":
            body[at:at] = bytes([data.draw(BYTES)])
        elif at < len(body):
            body[at:at + 1] = b"" if op == "delete" else bytes([data.draw(BYTES)])
    try:
        same_as_json(bytes(body), layout)
    except (orjson.JSONDecodeError, AssertionError) as exc:
        raise AssertionError(f"read a page the JSON path does not: {bytes(body)!r}") from exc


# -- shapes that must not be read --------------------------------------------------------

# One good record; the cases below are records (each tested alone in a page and next to
# this one) or whole bodies.
ONE = ('{"a":1697929871,"p":"40402.13000000","q":"0.00585000","f":2376992525,'
       '"l":2376992525,"T":1704067200051,"m":true,"M":true}')


@pytest.mark.parametrize("body", [
    "[]",
    "{}",
    '{"code":-1121,"msg":"Invalid symbol."}',
    '{"code":-1003,"msg":"Too much request weight used; current limit is 6000."}',
    f"[{ONE} ]",  # whitespace
    f"[ {ONE}]",
    f"[{ONE},\n{ONE}]",
    ONE.replace('"a":', '"a": '),
    ONE.replace('"p":"40402.13000000"', '"p":"40402.1300000\\u0030"'),  # an escape
    ONE.replace('"p":"40402.13000000"', '"p":null'),
    ONE.replace('"T":1704067200051', '"T":null'),
    ONE.replace('"m":true', '"m":null'),
    ONE.replace('"m":true', '"m":True'),
    ONE.replace('"m":true', '"m":1'),
    ONE.replace('"m":true', '"m":"true"'),
    ONE.replace('"m":true', '"m":tru'),
    ONE.replace('"m":true', '"m":truee'),
    ONE.replace('"M":true', '"M":falsy'),
    ONE.replace('"M":true', '"M":t'),  # a short value at the very end of the body
    ONE.replace('"M":true', '"M":fals'),
    ONE.replace('"a":1697929871', '"a":"1697929871"'),  # a string where a number belongs
    ONE.replace('"a":1697929871', '"a":01697929871'),  # leading zero
    ONE.replace('"a":1697929871', '"a":-1697929871'),
    ONE.replace('"a":1697929871', '"a":0x1697929871'),
    ONE.replace('"a":1697929871', '"a":1697929871.0'),
    ONE.replace('"a":1697929871', '"a":1.697929871e9'),
    ONE.replace('"a":1697929871', '"a":99999999999999999999'),  # beyond int64
    ONE.replace('"a":1697929871', '"a":'),
    ONE.replace('"p":"40402.13000000"', '"p":40402.13'),  # a number where a string belongs
    ONE.replace('"p":"40402.13000000"', '"p":"40402.13000000'),
    ONE.replace('"p":"40402.13000000"', '"p":""'),
    ONE.replace('"p":"40402.13000000"', '"p":"abc"'),
    ONE.replace('"p":"40402.13000000"', '"p":"4,2"'),
    ONE.replace('"p":"40402.13000000"', '"p":"4:2"'),
    ONE.replace('"p":"40402.13000000"', '"p":"4}2"'),
    ONE.replace('"p":"40402.13000000"', '"p":["1"]'),  # nested
    ONE.replace('"p":"40402.13000000"', '"p":{"x":"1"}'),
    ONE.replace('"a":', '"A":'),  # another key
    ONE.replace('"a":', '"aa":'),
    ONE.replace('"a":1697929871,"p":"40402.13000000"', '"p":"40402.13000000","a":1697929871'),
    ONE.replace(',"M":true', ""),  # a field missing
    ONE.replace(',"M":true', ","),  # a key cut short at the end of the body
    ONE.replace(',"M":true', ",M"),
    ONE.replace(',"M":true', ',"M"'),
    ONE.replace(',"M":true', ',"M":'),
    ONE.replace('"M":true', '"M":true,"x":1'),  # one more
    ONE.replace("{", "[", 1),
    "[" + ONE,
    ONE + "]",
    f"[{ONE}]x",
    f"[{ONE},]",
    f"[{ONE},,{ONE}]",
    f"[{ONE}{ONE}]",
    f"[[{ONE}]]",
    f"[{ONE},{{}}]",
    f"[{ONE},null]",
    f"[{ONE}]".replace("40402", "4040é"),  # non-ASCII
])
def test_unexpected_trade_shapes_are_not_read(body: str) -> None:
    assert nothing_reads(body.encode(), AGG)
    if body.startswith("{"):  # a record: as the page's only one, and after a good one
        assert nothing_reads(f"[{body}]".encode(), AGG)
        assert nothing_reads(f"[{ONE},{body}]".encode(), AGG)
        assert nothing_reads(f"[{body},{ONE}]".encode(), AGG)


KROW = ('[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",'
        '1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]')


def _k(old: str, new: str) -> str:
    """A page of one kline row with ``old`` replaced by ``new``."""
    assert old in KROW
    return "[" + KROW.replace(old, new, 1) + "]"


@pytest.mark.parametrize("body", [
    "[]",
    "[[]]",
    _k('"0"]', '"0","0"]'),  # 13 fields
    _k(',"0"]', "]"),  # 11 fields
    "[" + KROW + ", " + KROW + "]",
    _k('"0"]', '"0\n"]'),  # a control character in a string
    _k('"0"]', '"a b"]'),  # whitespace: valid in a string, but left to the JSON path
    _k('"0"]', '"a\\"b"]'),  # an escaped quote in a string
    _k('"0"]', '"a"b"]'),  # an unescaped one
    _k('"0"]', "null]"),
    _k('"0"]', "0]"),
    _k("308", "308.5"),
    _k("308", '"308"'),
    _k('"0.01634790"', "[1]"),
    _k("[", "{"),
    "[" + KROW + "," + KROW.replace("[", "{", 1) + "]",
    "[" + KROW + "][" + KROW + "]",
    '{"code":-1121,"msg":"Invalid symbol."}',
])
def test_unexpected_kline_shapes_are_not_read(body: str) -> None:
    assert nothing_reads(body.encode(), KLINES)


def test_a_string_may_hold_marks_of_the_other_record_kind() -> None:
    """In array records ``{``, ``}`` and ``:`` are no marks, and in a string they are text."""
    body = _k('"0"]', '"{a:b}"]').encode()
    assert same_as_json(body, KLINES)


# -- the real samples -----------------------------------------------------------------


@pytest.mark.parametrize("name,layout", [("aggTrades.json", AGG), ("klines.json", KLINES)])
def test_real_samples_decode_identically(name: str, layout: Layout) -> None:
    text = (SAMPLES / name).read_bytes()
    assert nothing_reads(text, layout)  # pretty-printed: the JSON path's
    body = compact(json.loads(text))  # as the exchange sends it
    assert same_as_json(body, layout)


def test_the_good_record_is_read() -> None:
    assert same_as_json(f"[{ONE}]".encode(), AGG) and same_as_json(f"[{ONE},{ONE}]".encode(), AGG)


def test_the_error_sample_is_not_read() -> None:
    assert nothing_reads((SAMPLES / "error_bad_symbol.json").read_bytes(), AGG)
    assert nothing_reads(compact(json.loads((SAMPLES / "error_bad_symbol.json").read_bytes())), AGG)


def test_only_kept_fields_are_returned_but_all_are_checked() -> None:
    layout = Layout.objects(
        a="int", p="dec", q="dec", f="int", l="int", T="int", m="bool", M="bool", keep=("a", "m"),
    )
    for read in READERS:
        got = read(PAGE, layout)
        assert got is not None and set(got) == {"a", "m"}
        assert got["m"].to_pylist() == [True, False]
    assert nothing_reads(PAGE.replace(b'"f":2376992526', b'"f":x'), layout)


@example(rows=[{"a": 0, "p": "0", "q": "1e-8", "f": 0, "l": 0, "T": 0, "m": False, "M": False}])
@PROPS
@given(st.lists(trade, min_size=1, max_size=5))
def test_types_of_the_columns(rows: list[dict[str, Any]]) -> None:
    for read in READERS:
        got = read(compact(rows), AGG)
        if got is None:
            continue
        want = {"int": pa.int64(), "dec": pa.float64(), "bool": pa.bool_()}
        assert {k: v.type for k, v in got.items()} == {k: want[AGG_KINDS[k]] for k in got}
        assert all(v.null_count == 0 and len(v) == len(rows) for v in got.values())


def test_layout_rejects_keys_it_could_not_match() -> None:
    with pytest.raises(ValueError):
        Layout.objects(**{"a b": "int"})
    with pytest.raises(ValueError):
        Layout.objects(a="int", keep=("b",))


# -- the compiled reader ------------------------------------------------------------------

needs_compiled = pytest.mark.skipif(pagescan._native is None, reason="built without a C compiler")


def test_the_compiled_reader_is_built_where_expected() -> None:
    """CI sets DCCD_EXPECT_COMPILED: there, an install that silently lost the extension
    (and with it most of the CPU budget) fails here rather than only in `make bench`."""
    if not os.environ.get("DCCD_EXPECT_COMPILED"):
        pytest.skip("DCCD_EXPECT_COMPILED is not set")
    assert pagescan._native is not None, "dccd_cli.exchange._pagescan was not built: is gcc installed?"


binance_decimals = st.builds(lambda i, f: f"{i}.{f:08d}", st.integers(0, 10**7), st.integers(0, 10**8 - 1))
binance_trade = st.fixed_dictionaries({
    "a": st.integers(0, 2**63 - 1), "p": binance_decimals, "q": binance_decimals,
    "f": st.integers(0, 10**12), "l": st.integers(0, 10**12), "T": st.integers(0, 2**63 - 1),
    "m": st.booleans(), "M": st.booleans(),
}).map(lambda d: {k: d[k] for k in AGG_KINDS})


@needs_compiled
@PROPS
@given(st.lists(binance_trade, min_size=1, max_size=60))
def test_the_compiled_reader_reads_binance_pages(rows: list[dict[str, Any]]) -> None:
    """Pages as Binance writes them are the compiled reader's: it must not leave them to
    the slower reader (which same_as_json alone would allow)."""
    body = compact(rows)
    assert _compiled(body, AGG) is not None
    assert same_as_json(body, AGG)


@needs_compiled
@PROPS
@given(st.lists(st.integers(0, 10**19 - 1).map(str) | digits, min_size=1, max_size=50),
       st.lists(st.integers(0, 25), min_size=1, max_size=50), st.booleans())
def test_compiled_decimals_are_arrows_bit_for_bit(ds: list[str], points: list[int], neg: bool) -> None:
    """Every decimal the compiled reader reads is the double Arrow's cast makes of it (one
    correctly rounded division), bit for bit; the rest it leaves to the numpy reader."""
    texts = []
    for d, at in zip(ds, points * len(ds)):
        text = d if at >= len(d) else f"{d[:len(d) - at] or '0'}.{d[len(d) - at:]}"
        texts.append(("-" if neg else "") + text)
    layout = Layout.arrays(v="dec")
    body = compact([[t] for t in texts])
    got = _compiled(body, layout)
    want = pc.cast(pa.array(texts), pa.float64())
    if got is not None:
        assert got["v"].to_numpy().view("i8").tolist() == want.to_numpy().view("i8").tolist()
    else:  # left to the numpy reader: some value is outside the fast path
        assert pagescan._scan_numpy(body, layout) is not None


@needs_compiled
@pytest.mark.parametrize("text,fast", [
    ("9007199254740992", True),  # 2**53: exact
    ("9007199254740993", False),  # 2**53 + 1: not in the fast path
    ("0.9007199254740992", True),
    ("0.0000000000000000000001", True),  # 22 fraction digits
    ("0.00000000000000000000001", False),  # 23
    ("00.5", True), ("-0.0", True), ("-12.25", True),
    ("1e5", False), (".5", False), ("5.", False), ("+1", False), ("1234567890123456789012", False),
])
def test_compiled_decimal_fast_path_bounds(text: str, fast: bool) -> None:
    layout = Layout.arrays(v="dec")
    body = compact([[text]])
    got = _compiled(body, layout)
    assert (got is not None) == fast
    if got is not None:
        want = pc.cast(pa.array([text]), pa.float64()).to_numpy()
        assert got["v"].to_numpy().view("i8").tolist() == want.view("i8").tolist()
    same_as_json(body, layout)


@needs_compiled
@pytest.mark.parametrize("text,fast", [
    ("0", True), ("9223372036854775807", True), ("9223372036854775808", False),
    ("99999999999999999999", False), ("00", False), ("-1", False),
])
def test_compiled_integer_bounds(text: str, fast: bool) -> None:
    layout = Layout.arrays(v="int")
    body = f"[[{text}]]".encode()
    got = _compiled(body, layout)
    assert (got is not None) == fast
    if got is not None:
        assert got["v"].to_pylist() == [int(text)]
