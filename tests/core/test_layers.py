"""The package's layers point one way, and no module imports another in a circle.

An AST walk over every ``import`` in ``dccd_cli/`` and ``adapters/`` (module level, inside
functions, and under ``TYPE_CHECKING``: a lazy import is still a dependency). Each module
belongs to a layer; a module may import its own layer and the layers below it only:

    vocabulary (errors, timeutil, schema, tradeorder, pieces, cachedir, _version)
    < storage < net < exchange < adapters < sources < run < api < cli < the package itself

The emulator stands apart: it imports the vocabulary only, and only the command line and
the API import it (to start one in-process). Cycles are looked for among the imports that
run when a module is loaded (module level, not under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "dccd_cli"
ADAPTERS = ROOT / "adapters"

VOCABULARY = {"_version", "errors", "timeutil", "schema", "tradeorder", "cachedir", "pieces"}
ORDER = ["vocabulary", "storage", "net", "exchange", "adapters", "sources", "run", "api", "cli",
         "package"]
RANK = {name: i for i, name in enumerate(ORDER)}
MAX_LINES = 400
#: Modules still over the guide, each to be split along its seams; the list only shrinks.
STILL_OVER: set[str] = set()


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base, prefix in ((PACKAGE, "dccd_cli"), (ADAPTERS, "dccd_cli.adapters")):
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("").parts
            parts = [prefix, *rel]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in {"__init__", "__main__"}:
        return "package"
    top = parts[1]
    if top in VOCABULARY:
        return "vocabulary"
    if top == "emulator":
        return "emulator"
    return top


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, runs at load time) for each import of a dccd_cli module."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"

    def resolve(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = module.split(".")
        if not is_pkg:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(body: list[ast.stmt], at_load: bool) -> Iterator[tuple[str, int, bool]]:
        for node in body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("dccd_cli"):
                        yield alias.name, node.lineno, at_load
            elif isinstance(node, ast.ImportFrom):
                target = resolve(node)
                if not target.startswith("dccd_cli"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    # ``from pkg import module`` depends on the module, not only on pkg.
                    yield (sub if sub in MODULES else target), node.lineno, at_load
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from visit(node.body, False)
                yield from visit(node.orelse, at_load)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(node.body, False)
            elif isinstance(node, ast.ClassDef):
                yield from visit(node.body, at_load)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list) and inner and isinstance(inner[0], ast.AST):
                        stmts = [getattr(h, "body", [h]) for h in inner] if field == "handlers" else [inner]
                        for s in stmts:
                            yield from visit(s, at_load)

    yield from visit(tree.body, True)


GRAPH = {m: list(_imports(m, p)) for m, p in MODULES.items()}


def _allowed(src: str, dst: str) -> bool:
    a, b = layer(src), layer(dst)
    if b == "package" and a != "package":
        return False  # only the package's own __init__/__main__ may import the package
    if a == "emulator":
        return b in {"emulator", "vocabulary"}
    if b == "emulator":
        return a in {"emulator", "cli", "api", "package"}
    return RANK[b] <= RANK[a]


def test_the_walk_sees_every_layer() -> None:
    layers = {layer(m) for m in MODULES}
    assert {"vocabulary", "storage", "net", "exchange", "adapters", "sources", "run", "cli",
            "emulator", "package"} <= layers
    assert sum(len(v) for v in GRAPH.values()) > 200


def test_every_module_belongs_to_a_known_layer() -> None:
    unknown = sorted(m for m in MODULES if layer(m) not in RANK and layer(m) != "emulator")
    assert not unknown, f"modules outside every layer: {unknown}"


def test_imports_point_down_the_layers_only() -> None:
    wrong = sorted({f"{MODULES[src].relative_to(ROOT)}:{line}: {layer(src)} imports {dst} ({layer(dst)})"
             for src, edges in GRAPH.items() for dst, line, _ in edges if not _allowed(src, dst)})
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_at_load_time() -> None:
    edges = {m: sorted({d for d, _, at_load in GRAPH[m] if at_load and d in MODULES and d != m})
             for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan, recursive: the graph is small
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            strongconnect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_a_cycle_is_caught() -> None:
    """The walk itself: a relative import resolves, and an upward one is refused."""
    assert not _allowed("dccd_cli.net.client", "dccd_cli.run.results")
    assert not _allowed("dccd_cli.emulator.market", "dccd_cli.storage")
    assert _allowed("dccd_cli.cli.app", "dccd_cli.emulator")
    assert _allowed("dccd_cli.adapters.okx", "dccd_cli.exchange.adapter")


def test_no_module_is_over_the_size_guide() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    over = [f"{MODULES[m].relative_to(ROOT)}: {n} lines" for m, n in sorted(sizes.items())
            if n > MAX_LINES and m not in STILL_OVER]
    assert not over, f"over the guide of {MAX_LINES} lines: {over}"
    split = sorted(m for m in STILL_OVER if sizes.get(m, 0) <= MAX_LINES)
    assert not split, f"now within the guide, take them off STILL_OVER: {split}"
