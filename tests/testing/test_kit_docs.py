"""docs/testing.md shows only code that runs: each of its Python blocks is in docs/examples."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing.md"


def test_every_python_block_of_the_testing_page_is_in_a_run_example() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 6
    examples = "\n".join(p.read_text() for p in (ROOT / "docs" / "examples").glob("*.py"))
    for block in blocks:
        assert block in examples, f"not in docs/examples/*.py:\n{block}"


def test_the_examples_are_collected_and_the_readme_links_the_page() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'testpaths = \[[^\]]*"docs/examples"', pyproject)
    assert "(docs/testing.md)" in (ROOT / "README.md").read_text()
