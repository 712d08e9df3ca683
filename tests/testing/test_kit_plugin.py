"""The pytest plugin: its fixtures here (on both engines, see conftest.py), and a separate
pytest run of a user's test file to see skips, teardown errors and logs as a user would."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import kit_fixtures
import kit_jobs
import psycopg
import pytest

import jobq
from jobq.testing import MovableClock

# The plugin's fixtures on both engines (see kit_fixtures.py).
jobq_engine = kit_fixtures.jobq_engine
jobq_pg_url = kit_fixtures.jobq_pg_url


def test_jobq_db_is_fresh_and_uses_the_engine(
    jobq_db: jobq.Database, jobq_engine: str, jobq_db_url: str
) -> None:
    assert jobq_db.engine == jobq_engine
    assert jobq_db.url == jobq_db_url
    assert len(jobq_db.queue()) == 0
    if jobq_engine == "postgres":
        assert "schema=jobq_test_" in jobq_db_url


def test_jobq_db_uses_jobq_clock_when_asked(
    jobq_clock: MovableClock, jobq_db: jobq.Database, jobq_queue: jobq.Queue
) -> None:
    assert jobq_db.clock is jobq_clock
    assert jobq_queue.db is jobq_db and jobq_queue.name == ""
    job = jobq_queue.put(jobq.Job(kit_jobs.add, 1, 1))
    assert job.created == jobq_clock.now()
    jobq_clock.advance(minutes=1)
    assert job.created == jobq_clock.now() - dt.timedelta(minutes=1)


def test_jobq_db_uses_the_real_clock_otherwise(jobq_db: jobq.Database) -> None:
    assert not isinstance(jobq_db.clock, MovableClock)


USER_TESTS = """
import logging
import pathlib
import threading

import pytest

import jobq
from jobq.testing import wait_for_start

GATE = threading.Event()


def slow():
    GATE.wait(30)


def test_on_postgres(jobq_engine, jobq_db_url):
    pathlib.Path("url.txt").write_text(jobq_db_url)


@pytest.mark.parametrize("jobq_engine", ["sqlite", "postgres"])
def test_both(jobq_queue, jobq_engine):
    assert jobq_queue.db.engine == jobq_engine


@pytest.mark.parametrize("jobq_engine", ["postgres"])
def test_pg_only(jobq_queue, jobq_engine):
    assert jobq_queue.db.engine == jobq_engine


def test_left_running(jobq_worker, jobq_queue):
    jobq_worker.grace = 0.2
    jobq_queue.put(jobq.Job(slow))
    jobq_worker.dispatcher.wake()
    wait_for_start(jobq_queue.db.get_job(1))


def test_zz_release():
    GATE.set()


def test_logs_shown(jobq_logs):
    logging.getLogger("jobq.events").error("visible error record")
    logging.getLogger("jobq.events").warning("hidden warning record")
    assert False, "show me the output"
"""


def _run_user_tests(tmp_path: Path, *args: str, pg_url: str | None) -> str:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
    if pg_url:
        env["JOBQ_TEST_PG_URL"] = pg_url
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-v", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


def test_a_users_run_without_postgres(tmp_path: Path) -> None:
    out = _run_user_tests(tmp_path, pg_url=None)
    assert "test_pg_only[postgres] SKIPPED" in out
    assert "no PostgreSQL server for jobq: set JOBQ_TEST_PG_URL or --jobq-pg-url" in out
    assert "test_both[sqlite] PASSED" in out
    # Teardown of the worker fixture names the job left running.
    assert "ERROR at teardown of test_left_running" in out
    assert "TearDownError" in out and "job 1 (test_user.slow()) still active" in out
    # jobq_logs: ERROR shown in the failing test's captured stderr, WARNING not.
    assert "ERROR jobq.events: visible error record" in out
    stderr = out.split("Captured stderr call")[-1].split("Captured log call")[0]
    assert "visible error record" in stderr and "hidden warning record" not in stderr


def test_a_users_run_with_log_level_option(tmp_path: Path) -> None:
    out = _run_user_tests(tmp_path, "--jobq-log-level=WARNING", "-k", "logs_shown", pg_url=None)
    assert "WARNING jobq.events: hidden warning record" in out


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_a_users_postgres_schema_is_dropped_after_the_test(tmp_path: Path, engine: str) -> None:
    server = kit_fixtures.PG_URL
    out = _run_user_tests(tmp_path, "--jobq-engine=postgres", "-k", "on_postgres", pg_url=server)
    assert "test_on_postgres PASSED" in out, out
    schema = (tmp_path / "url.txt").read_text().rpartition("schema=")[2]
    with psycopg.connect(server) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
    assert found == (0,)
