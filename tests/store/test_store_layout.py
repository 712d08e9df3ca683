"""The store's modules import one another only downward: topic modules over the driver,
`SqlStore` over the topics, the engines over `SqlStore` (no import circle in `store/`)."""

from __future__ import annotations

import ast
from pathlib import Path

import jobq

STORE = Path(jobq.__file__).parent / "store"


def _store_imports(path: Path) -> set[str]:
    """The modules of jobq.store that `path` imports (by their short names)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "jobq.store":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("jobq.store."):
                found.add(node.module.split(".")[2])
    return found


def test_store_modules_import_without_a_circle() -> None:
    graph = {p.stem: _store_imports(p) for p in STORE.glob("*.py")}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph.get(module, set()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_topic_modules_do_not_import_the_store_or_the_engines() -> None:
    topics = ["_queue", "_claim", "_outcomes", "_dispatchers", "_monitor", "_schema", "_rows"]
    for topic in topics:
        imported = _store_imports(STORE / f"{topic}.py")
        assert not imported & {"_sql", "sqlite", "postgres"}, f"{topic} imports {imported}"
