"""jobq's pytest plugin, loaded automatically once jobq is installed (`pytest11` entry point).

Fixtures (all prefixed `jobq_`, so they never clash with a project's own):

- `jobq_engine`: "sqlite" (default; `--jobq-engine`) or "postgres". Run a test on both with
  `@pytest.mark.parametrize("jobq_engine", ["sqlite", "postgres"])`.
- `jobq_db_url`: a fresh, empty database for this test: a SQLite file in `tmp_path`, or a new
  PostgreSQL schema (dropped afterwards) on the server of `--jobq-pg-url` / `JOBQ_TEST_PG_URL`
  (the test is skipped, saying why, when none is set or it does not answer; with
  `JOBQ_REQUIRE_POSTGRES=1` it fails instead).
- `jobq_db`: `jobq.connect(jobq_db_url)`, closed afterwards. If the test also asks for
  `jobq_clock`, the database uses that clock.
- `jobq_clock`: a `MovableClock` frozen at the real time of the test's start.
- `jobq_queue`: the default queue of `jobq_db`.
- `jobq_worker`: an `InProcessWorker` on `jobq_db`'s default queue, polling fast; a job still
  running at teardown is a `TearDownError` naming it.
- `jobq_inline`: inline mode on `jobq_db` for the whole test (puts run their jobs at once).
- `jobq_logs`: jobq's ERROR and CRITICAL records (or `--jobq-log-level`) written to the test's
  captured stderr, shown when it fails. `--jobq-log-level=LEVEL` does it for every test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

import jobq
from jobq.testing._clock import MovableClock
from jobq.testing._inline import InlineRunner, inline
from jobq.testing._logs import print_logs, stop_printing_logs
from jobq.testing._worker import InProcessWorker, start_worker

PG_URL_ENV = "JOBQ_TEST_PG_URL"
REQUIRE_PG_ENV = "JOBQ_REQUIRE_POSTGRES"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("jobq", "jobq testing fixtures")
    group.addoption(
        "--jobq-engine",
        choices=["sqlite", "postgres"],
        default=None,
        help="engine of the jobq_db fixture (default sqlite)",
    )
    group.addoption(
        "--jobq-pg-url",
        default=None,
        help=f"PostgreSQL server for jobq_db on postgres (default ${PG_URL_ENV})",
    )
    group.addoption(
        "--jobq-log-level",
        default=None,
        help="show jobq's log records at this level and above in every test's output",
    )


# -- database ----------------------------------------------------------------------------------
@pytest.fixture
def jobq_engine(request: pytest.FixtureRequest) -> str:
    """The engine of `jobq_db`: "sqlite" unless `--jobq-engine` says otherwise."""
    return str(request.config.getoption("--jobq-engine") or "sqlite")


_pg_probe: dict[str, str | None] = {}


def _pg_problem(url: str) -> str | None:
    if url not in _pg_probe:
        import psycopg

        try:
            with psycopg.connect(_without_schema(url), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_probe[url] = None
        except psycopg.Error as error:
            _pg_probe[url] = str(error).strip() or type(error).__name__
    return _pg_probe[url]


def _without_schema(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"] + [("schema", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _unavailable(request: pytest.FixtureRequest, reason: str) -> None:
    if os.environ.get(REQUIRE_PG_ENV) == "1":
        pytest.fail(f"PostgreSQL is required ({REQUIRE_PG_ENV}=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture
def jobq_pg_url(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL server for jobq's fixtures (skips the test if there is none)."""
    url = request.config.getoption("--jobq-pg-url") or os.environ.get(PG_URL_ENV)
    if not url:
        _unavailable(request, f"no PostgreSQL server for jobq: set {PG_URL_ENV} or --jobq-pg-url")
    assert url is not None
    problem = _pg_problem(url)
    if problem:
        _unavailable(request, f"no PostgreSQL server at {_without_schema(url)}: {problem}")
    return str(url)


@pytest.fixture
def jobq_db_url(request: pytest.FixtureRequest, jobq_engine: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty jobq database on `jobq_engine`."""
    if jobq_engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobq-test.db'}"
        return
    if jobq_engine != "postgres":
        raise ValueError(f"jobq_engine must be 'sqlite' or 'postgres', got {jobq_engine!r}")
    server = request.getfixturevalue("jobq_pg_url")
    schema = f"jobq_test_{uuid.uuid4().hex[:12]}"
    yield _with_schema(server, schema)
    import psycopg

    with psycopg.connect(_without_schema(server), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def jobq_clock() -> MovableClock:
    """A MovableClock frozen at the real time of the test's start; `jobq_db` uses it."""
    return MovableClock()


@pytest.fixture
def jobq_db(request: pytest.FixtureRequest, jobq_db_url: str) -> Iterator[jobq.Database]:
    """A connected Database on a fresh database (with `jobq_clock` if the test uses it)."""
    clock = request.getfixturevalue("jobq_clock") if "jobq_clock" in request.fixturenames else None
    database = jobq.connect(jobq_db_url, clock=clock)
    yield database
    database.close()


@pytest.fixture
def jobq_queue(jobq_db: jobq.Database) -> jobq.Queue:
    """The default queue ("") of `jobq_db`."""
    return jobq_db.queue()


@pytest.fixture
def jobq_worker(jobq_db: jobq.Database) -> Iterator[InProcessWorker]:
    """A running test worker on `jobq_db`'s default queue; `drain()` runs what is due."""
    worker = start_worker(jobq_db)
    yield worker
    worker.stop()


@pytest.fixture
def jobq_inline(jobq_db: jobq.Database) -> Iterator[InlineRunner]:
    """Inline mode on `jobq_db` for the test: each put runs its queue's due jobs at once."""
    with inline(jobq_db) as runner:
        yield runner


# -- logs --------------------------------------------------------------------------------------
@pytest.fixture
def jobq_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Show jobq's ERROR and CRITICAL records (or `--jobq-log-level`) in the test output."""
    level = request.config.getoption("--jobq-log-level") or "ERROR"
    handler = print_logs(level)
    yield
    stop_printing_logs(handler)


@pytest.fixture(autouse=True)
def _jobq_log_level_option(request: pytest.FixtureRequest) -> Iterator[None]:
    level = request.config.getoption("--jobq-log-level")
    if not level or "jobq_logs" in request.fixturenames:
        yield
        return
    handler = print_logs(level)
    yield
    stop_printing_logs(handler)
