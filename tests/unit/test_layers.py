"""The layers of DESIGN.md hold: every import of `jobq/` points to its own layer or one below,
and no modules import each other in a circle.

Imports inside functions count (a lazy import is still a dependency), and so do imports under
`if TYPE_CHECKING:` (a type names what a module depends on). One pair may name each other,
for types only: `TYPE_ONLY_PAIRS` says which, and why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jobq

PACKAGE = Path(jobq.__file__).parent

LAYERS: list[tuple[str, tuple[str, ...]]] = [  # from the top
    (
        "operations",
        (
            "jobq.cli",
            "jobq.monitor",
            "jobq.web",
            "jobq.bench",
            "jobq.chaos",
            "jobq.testing",
            "jobq.demo",
            "jobq.__main__",
        ),
    ),
    ("api", ("jobq", "jobq.database", "jobq.queue", "jobq.local")),
    ("worker", ("jobq.worker",)),
    ("jobs", ("jobq.jobs",)),
    ("store", ("jobq.store",)),
    ("model", ("jobq.model",)),
    ("base", ("jobq.errors", "jobq._clock", "jobq._urls", "jobq.types")),
]


TYPE_ONLY_PAIRS = {
    # A Database makes its queues; a Queue names the Database it belongs to (`queue.db`).
    ("jobq.queue", "jobq.database"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> int:
    """The index in LAYERS of the layer owning `module` (the longest matching prefix)."""
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "jobq" and module.startswith(prefix + "."))
            if matches and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def _target(name: str) -> str | None:
    """The jobq module an imported name lives in (a package's name for its attributes)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(module: str) -> tuple[set[str], set[str]]:
    """(modules imported when the code runs, modules imported only for type checking)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    runtime: set[str] = set()
    typing_only: set[str] = set()

    def visit(node: ast.AST, only_types: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, only_types)
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for name in names:
            target = _target(name) if name.startswith("jobq") else None
            if target is not None and target != module:
                (typing_only if only_types else runtime).add(target)
        for child in ast.iter_child_nodes(node):
            visit(child, only_types)

    visit(ast.parse(path.read_text()), False)
    return runtime, typing_only - runtime


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in MODULES if layer_of(m) < 0)
    assert not unplaced, f"add these modules to a layer in LAYERS: {unplaced}"


def test_imports_only_point_down() -> None:
    upward = []
    for module in sorted(MODULES):
        runtime, typing_only = imports(module)
        for target in sorted(runtime | typing_only):
            if layer_of(target) < layer_of(module):
                upward.append(
                    f"{module} ({LAYERS[layer_of(module)][0]}) -> "
                    f"{target} ({LAYERS[layer_of(target)][0]})"
                )
    assert upward == [], "imports reaching up a layer:\n" + "\n".join(upward)


def test_no_import_circles() -> None:
    edges = {}
    for module in MODULES:
        runtime, typing_only = imports(module)
        edges[module] = runtime | {t for t in typing_only if (module, t) not in TYPE_ONLY_PAIRS}
    found = circles(edges)
    assert len(found) == 0, f"{len(found)} import circle(s): {found}"
    for module, target in TYPE_ONLY_PAIRS:  # still only for types, and still each other's
        assert target in imports(module)[1] and module in imports(target)[0]


def test_the_checks_see_a_circle_and_an_upward_import() -> None:
    """The two checks above can fail: a made-up graph with a circle, and the real layer order."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("jobq.worker.runner") < layer_of("jobq.store.base")
    assert layer_of("jobq.model.job") > layer_of("jobq.store.sqlite")
    assert layer_of("jobq") < layer_of("jobq.worker.dispatcher")
    runtime, typing_only = imports("jobq.queue")
    assert "jobq.jobs.rows" not in runtime and "jobq.database" in typing_only
