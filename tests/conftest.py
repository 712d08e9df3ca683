"""Shared fixtures: every engine-level test runs on SQLite and on PostgreSQL.

PostgreSQL: `JOBQ_TEST_PG_URL` (default postgresql://postgres@127.0.0.1:5432/test). Each test
gets a fresh schema, dropped afterwards. Where no server answers, the PostgreSQL tests are
skipped and the run says so loudly, unless `JOBQ_REQUIRE_POSTGRES=1` (CI), which makes them
fail instead.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from worker_helpers import (  # noqa: F401 - subprocess_env is shared with test modules
    PG_URL,
    abort_running_workers,
    subprocess_env,
)

import jobq

REQUIRE_PG = os.environ.get("JOBQ_REQUIRE_POSTGRES") == "1"


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as error:
        return str(error).strip()


_PG_PROBLEM = _pg_available()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _PG_PROBLEM and not REQUIRE_PG:
        terminalreporter.write_sep(
            "!", "PostgreSQL NOT TESTED: no server at " + PG_URL + f" ({_PG_PROBLEM})", red=True
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test that fails while its worker processes run (a job that never ended, a worker
    that did not stop) reports what each was doing: they are aborted, writing every thread's
    stack to their logs, and the logs in the test's `tmp_path` are added to its report."""
    report = yield
    if report.when == "call" and report.failed:
        abort_running_workers()
        tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
        for log in sorted(Path(tmp_path).rglob("*.log")) if tmp_path else []:
            text = log.read_text(errors="replace")
            report.sections.append((f"log {log.name}", text[-_LOG_TAIL:]))
    return report


_LOG_TAIL = 20_000  # characters of each log kept in a failure's report


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and _PG_PROBLEM:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (JOBQ_REQUIRE_POSTGRES=1) but: {_PG_PROBLEM}")
        pytest.skip(f"no PostgreSQL server: {_PG_PROBLEM}")
    return str(request.param)


@pytest.fixture
def db_url(engine: str, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh, empty jobq database on the engine under test."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobq.db'}"
        return
    schema = f"jobq_test_{uuid.uuid4().hex[:12]}"
    yield f"{PG_URL}?schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def db(db_url: str) -> Iterator[jobq.Database]:
    database = jobq.connect(db_url)
    yield database
    database.close()


@pytest.fixture
def queue(db: jobq.Database) -> jobq.Queue:
    return db.queue()


@pytest.fixture
def worker(db: jobq.Database) -> Iterator[jobq.Dispatcher]:
    """An in-process dispatcher on the default queue, agent main:3, polling fast."""
    dispatcher = db.worker(poll_interval=0.1).start()
    yield dispatcher
    dispatcher.stop(grace=10)


@pytest.fixture
def clock_db(db_url: str, clock: Any) -> Iterator[jobq.Database]:
    """A fresh database (as `db`) whose clock is the test module's `clock` fixture (a
    `jobq.testing.MovableClock`, set to that module's own starting time)."""
    database = jobq.connect(db_url, clock=clock)
    yield database
    database.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB filesystem (tmpfs) mounted for the test, to fill (`full_disk.fill`)."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr!r}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
