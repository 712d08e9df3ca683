"""A session that holds jobq's row locks never stops the other workers (issue 17.2,
PostgreSQL: a worker cut off between an UPDATE and its COMMIT leaves its session, and its row
locks, on the server until the server notices). Real worker processes; the test's own
connection holds the locks as the cut-off worker's session would."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from jobfuncs import add, insert_when_file_exists
from worker_helpers import (
    create_app_table,
    raw_connect,
    spawn_worker,
    stop_workers,
    wait_until,
)

import jobq

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

POSTGRES_ONLY = pytest.mark.parametrize("engine", ["postgres"], indirect=True)
WAIT = 30.0


def spawn(db_url: str, log: Path, ident: str) -> subprocess.Popen[bytes]:
    return spawn_worker(
        db_url, "--poll-interval", "0.1", "--ping-interval", "0.2", "--death-interval", "1.0",
        "--grace", "1", uuid=ident, log=log,
    )  # fmt: skip


@POSTGRES_ONLY
def test_a_gone_workers_held_row_locks_do_not_stop_its_sibling(
    engine: str, db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    create_app_table(db_url)
    flag = tmp_path / "go"
    victim_id, sibling_id = str(uuid.uuid4()), str(uuid.uuid4())
    long_job = db.queue().put(jobq.Job(insert_when_file_exists, str(flag), "written"))
    victim = spawn(db_url, tmp_path / "victim.log", victim_id)
    sibling = None
    holder = raw_connect(db_url)
    try:
        wait_until(lambda: long_job.refresh().status == "active", timeout=WAIT, what="the start")
        # What the victim's session holds when cut off between a ping's and a result's
        # UPDATE and their COMMIT: its dispatcher row and its job's row.
        holder.execute(
            "UPDATE jobq_dispatchers SET last_ping = last_ping WHERE uuid = %s", (victim_id,)
        )
        holder.execute("UPDATE jobq_jobs SET attempt = attempt WHERE id = %s", (long_job.id,))
        victim.kill()
        victim.wait(10)
        sibling = spawn(db_url, tmp_path / "sibling.log", sibling_id)
        later = [db.queue().put(jobq.Job(add, i, i)) for i in range(20)]
        assert [job.wait(timeout=WAIT) for job in later] == [2 * i for i in range(20)]
        assert long_job.refresh().attempt == 1  # still held: not handed on under its lock
        holder.rollback()  # the server ends the cut-off session: its locks go
        wait_until(lambda: long_job.refresh().attempt == 2, timeout=WAIT, what="the hand-on")
        flag.touch()
        assert long_job.wait(timeout=WAIT) == "written"
        assert long_job.dispatcher_uuid == sibling_id
    finally:
        holder.rollback()
        holder.close()
        stop_workers(victim, *([sibling] if sibling else []))


@POSTGRES_ONLY
def test_jobq_sessions_bound_lock_waits_and_idle_transactions(
    engine: str, db: jobq.Database, db_url: str
) -> None:
    def settings(of: jobq.Database, conn: object = None) -> dict[str, str]:
        names = ("lock_timeout", "idle_in_transaction_session_timeout", "tcp_keepalives_idle")
        shown = {}
        with of.store.driver.transaction(conn) as ex:  # type: ignore[attr-defined]
            for name in names:
                ex.cursor.execute(f"SHOW {name}")
                shown[name] = ex.cursor.fetchone()[name]
        return shown

    assert settings(db) == {
        "lock_timeout": "10s",
        "idle_in_transaction_session_timeout": "1min",
        "tcp_keepalives_idle": "10",
    }
    attempt = db.store.attempt_connection()
    try:  # a job's own transaction is the job's: no jobq limits on it
        own = settings(db, attempt.raw)
        assert own["lock_timeout"] == "0" and own["idle_in_transaction_session_timeout"] == "0"
    finally:
        attempt.close()
    assert settings(db)["lock_timeout"] == "10s"  # SET LOCAL: the pooled session is as it was
    separator = "&" if "?" in db_url else "?"
    with jobq.connect(f"{db_url}{separator}options=-c%20lock_timeout%3D1s") as tuned:
        assert settings(tuned)["lock_timeout"] == "1s"  # the URL's own setting wins


@POSTGRES_ONLY
def test_a_put_behind_a_foreign_table_lock_fails_instead_of_waiting(
    engine: str, db: jobq.Database, db_url: str
) -> None:
    db.queue()
    holder = raw_connect(db_url)
    try:
        holder.execute("LOCK TABLE jobq_jobs IN ACCESS EXCLUSIVE MODE")
        client = jobq.connect(db_url)  # the default lock timeout: 10 s, then a clear error
        with client, pytest.raises(jobq.ConflictError, match="lock timeout"):
            client.queue().put(jobq.Job(add, 1, 2))
    finally:
        holder.rollback()
        holder.close()
