"""The public API is what __all__ says, and the layers of DESIGN.md hold."""

from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import jobq

PACKAGE = Path(jobq.__file__).parent


def test_all_is_sorted_and_complete() -> None:
    assert list(jobq.__all__) == sorted(jobq.__all__)
    # Submodules become attributes once imported, and pytest's assert rewriting (jobq ships a
    # pytest11 plugin) adds "@py_builtins"/"@pytest_ar": neither is API.
    public = {
        name
        for name, value in vars(jobq).items()
        if not name.startswith(("_", "@"))
        and name != "annotations"
        and not isinstance(value, types.ModuleType)
    }
    assert public == set(jobq.__all__) - {"local"}
    assert isinstance(jobq.local, types.ModuleType)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_model_does_no_io_and_store_does_not_reach_up() -> None:
    for path in (PACKAGE / "model").glob("*.py"):
        bad = {
            m
            for m in _imports(path)
            if m.startswith(("jobq.store", "jobq.worker", "jobq.database"))
        }
        assert not bad, f"{path.name} imports {bad}"
    for path in (PACKAGE / "store").glob("*.py"):
        bad = {
            m
            for m in _imports(path)
            if m.startswith(("jobq.worker", "jobq.database", "jobq.queue"))
        }
        assert not bad, f"{path.name} imports {bad}"


def test_sql_lives_only_in_the_store() -> None:
    sql = re.compile(r"\b(SELECT|UPDATE|INSERT INTO|DELETE FROM)\b[^\n]*\b(FROM|SET|VALUES|jobq_)")
    for path in PACKAGE.rglob("*.py"):
        # bench and chaos observe jobq from outside, as an operator would, with their own
        # read-only queries (and the chaos harness's own application table).
        if {"store", "bench", "chaos"} & set(path.relative_to(PACKAGE).parts):
            continue
        assert not sql.search(path.read_text()), f"SQL outside jobq/store: {path}"
