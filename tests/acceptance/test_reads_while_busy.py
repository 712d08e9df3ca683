"""Reading never waits for the write lock (issue 17.6), on both engines: while a foreign
transaction holds a write on jobq's tables (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a lock
that blocks writes but not reads), `jobq.connect`, `db.queue()` and the monitoring commands
answer at once instead of waiting out the busy timeout (60 s) and failing."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from jobfuncs import add
from worker_helpers import raw_connect, subprocess_env

import jobq

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

BOUND = 20.0  # well under the 60 s a blocked read would wait before failing


@pytest.fixture
def foreign_writer(db: jobq.Database, db_url: str) -> Iterator[Any]:
    """A connection holding a write transaction on jobq's tables until the test ends."""
    conn = raw_connect(db_url)
    if db_url.startswith("sqlite"):
        conn.isolation_level = None
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO jobq_queues (name, created) VALUES ('foreign', 0)")
    else:
        conn.execute("LOCK TABLE jobq_queues, jobq_jobs IN EXCLUSIVE MODE")  # reads still pass
    yield conn
    conn.rollback()
    conn.close()


def test_monitoring_commands_answer_while_a_writer_holds_the_lock(
    db: jobq.Database, db_url: str, request: pytest.FixtureRequest
) -> None:
    job = db.queue().put(jobq.Job(add, 1, 2))
    request.getfixturevalue("foreign_writer")
    for command in (["count", "pending"], ["status"], ["jobs", "pending"], ["job", str(job.id)]):
        done = subprocess.run(
            [sys.executable, "-m", "jobq", "--db", db_url, *command],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            timeout=BOUND,
        )
        assert done.returncode == 0, (command, done.stderr)
    assert done.stdout.count("pending") >= 1 and "jobfuncs.add(1, 2)" in done.stdout


def test_connect_and_a_known_queue_only_read(
    db: jobq.Database, db_url: str, request: pytest.FixtureRequest
) -> None:
    job = db.queue().put(jobq.Job(add, 1, 2))
    request.getfixturevalue("foreign_writer")
    seen: dict[str, Any] = {}

    def open_and_read() -> None:
        with jobq.connect(db_url) as other:
            seen["pending"] = [j.id for j in other.queue()]

    reader = threading.Thread(target=open_and_read, daemon=True)
    reader.start()
    reader.join(BOUND)
    assert not reader.is_alive(), "connect() or queue() waited for the foreign writer"
    assert seen["pending"] == [job.id]
