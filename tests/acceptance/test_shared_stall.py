"""A stall every worker shares (the database locked or away for longer than the death
interval) makes no healthy worker declare another dead (issue 17.4), on both engines with
real worker processes: after it, every job that ran to completion is completed with its
result, none recorded as `AbortedError`, no interruption counted, no dispatcher swept."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from jobfuncs import sleep_then
from worker_helpers import raw_connect, spawn_worker, wait_until

import jobq

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

WAIT = 30.0
STALL = 3.0  # three death intervals


def spawn(db_url: str, log: Path) -> subprocess.Popen[bytes]:
    return spawn_worker(
        db_url, "--agent", "main:2", "--poll-interval", "0.1", "--ping-interval", "0.2",
        "--death-interval", "1.0", "--grace", "5", log=log,
    )  # fmt: skip


def test_a_stall_all_workers_share_makes_none_of_them_dead(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    workers = [spawn(db_url, log) for log in logs]
    try:
        wait_until(
            lambda: all("activated dispatcher" in log.read_text() for log in logs),
            timeout=WAIT,
            what="both workers",
        )
        jobs = [
            db.queue().put(jobq.Job(sleep_then, STALL + 1.0, n), retry_policy=jobq.NeverRetry)
            for n in range(4)
        ]
        wait_until(
            lambda: all(job.refresh().status == "active" for job in jobs),
            timeout=WAIT,
            what="all four jobs running, two on each worker",
        )
        holder = raw_connect(db_url)
        if db_url.startswith("sqlite"):
            holder.isolation_level = None
            holder.execute("BEGIN IMMEDIATE")  # every write waits: pings and results
        else:
            holder.execute("LOCK TABLE jobq_dispatchers, jobq_jobs IN EXCLUSIVE MODE")
        time.sleep(STALL)
        holder.rollback()
        holder.close()
        assert [job.wait(timeout=WAIT) for job in jobs] == [0, 1, 2, 3]
        for job in jobs:
            job.refresh()
            assert job.attempt == 1 and not job.failed
            assert "interruptions" not in job.retry_data
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(WAIT)
    output = "".join(log.read_text() for log in logs)
    assert "is dead" not in output and "not activated prior to ping" not in output, output
