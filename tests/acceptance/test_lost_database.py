"""A worker whose PostgreSQL connections are cut mid-run (as when the server restarts or a
connection drops) reconnects and goes on: no job is lost, none is written twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from jobfuncs import insert_then_sleep
from worker_helpers import PG_URL, app_rows, create_app_table, subprocess_env, wait_until

import jobq

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

# Only PostgreSQL has connections and a network to lose (and SQLite's single-writer lock
# is held by a paused writer: docs/differences.md).
POSTGRES_ONLY = pytest.mark.parametrize("engine", ["postgres"], indirect=True)


@POSTGRES_ONLY
def test_a_worker_survives_its_connections_being_killed(
    engine: str, db: jobq.Database, db_url: str
) -> None:
    create_app_table(db_url)
    app_name = f"jobq_victim_{uuid.uuid4().hex[:8]}"
    jobs = db.queue().put_many([jobq.Job(insert_then_sleep, f"row {i}", 0.05) for i in range(60)])
    command = [
        sys.executable, "-m", "jobq", "worker", "--db", f"{db_url}&application_name={app_name}",
        "--poll-interval", "0.1", "--ping-interval", "0.2", "--death-interval", "5",
        "--agent", "main:4", "--log-level", "CRITICAL",
    ]  # fmt: skip
    worker = subprocess.Popen(command, env=subprocess_env(), stderr=subprocess.DEVNULL)
    killed = 0
    try:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            wait_until(  # a loaded machine may take a while to start the worker
                lambda: admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", (app_name,)
                ).fetchall(),
                timeout=30,
                what="the worker's connections",
            )
            for _ in range(3):
                time.sleep(0.4)
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (app_name,),
                ).fetchall()
                killed += len(rows)
        results = [job.wait(timeout=120) for job in jobs]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert killed > 0
    assert sorted(results) == sorted(f"row {i}" for i in range(60))
    assert sorted(app_rows(db_url)) == sorted(results)  # each job's write exactly once
