"""jobq.testing's own tests: the plugin's `jobq_*` fixtures run on both engines in the test
modules that import these two fixtures (not a conftest.py: the suite imports the top-level
`conftest` module by name, and a second one would shadow it).

`jobq_engine` follows the suite's parametrised `engine` fixture (which skips or fails
PostgreSQL as the rest of the suite does), and `jobq_pg_url` is the suite's server.
"""

from __future__ import annotations

import os

import pytest

PG_URL = os.environ.get("JOBQ_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def jobq_engine(engine: str) -> str:
    return engine


@pytest.fixture
def jobq_pg_url() -> str:
    return PG_URL
