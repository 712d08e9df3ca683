"""Whose record is it: a UUID's record left by a process that is gone is taken over at once,
whether that process had another pid on this host or this process's own (a restarted
container's pid 1), and one held by a live dispatcher of this process is not, even when the
two dispatchers do not share a Database object."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid as uuid_module

import jobfuncs
import pytest
from worker_helpers import wait_until

import jobq

WAIT = 20.0


def fast_worker(db: jobq.Database, **options: object) -> jobq.Dispatcher:
    settings = {"poll_interval": 0.05, "ping_interval": 0.1, "death_interval": 1.0}
    return db.worker(**{**settings, **options})  # type: ignore[arg-type]


def left_active(db: jobq.Database, pid: int, job: jobq.Job) -> str:
    """A record of this host, alive by its pings (death interval 10 minutes), holding `job`
    active: what a process killed just now leaves."""
    uuid_ = str(uuid_module.uuid4())
    now = db.clock.now()
    activated, _ = db.store.activate_dispatcher(uuid_, socket.gethostname(), pid, 300.0, 600.0, now)
    assert activated
    [record] = db.store.claim("", uuid_, "main", 1, now)
    assert record.id == job.id and db.store.start(record.id, record.attempt, uuid_, now)
    return uuid_


def gone_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("previous", ["other pid", "this pid"])
def test_a_record_whose_process_is_gone_is_taken_over_at_once(
    db: jobq.Database, queue: jobq.Queue, caplog: pytest.LogCaptureFixture, previous: str
) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 2, 3))
    uuid_ = left_active(db, gone_pid() if previous == "other pid" else os.getpid(), job)
    # Not waiting for the death interval: the restart recovers the job at once.
    restarted = fast_worker(db, uuid=uuid_, ping_interval=300.0, death_interval=600.0)
    with caplog.at_level(logging.WARNING, logger="jobq.events"), restarted:
        assert job.wait(timeout=WAIT) == 5
    assert f"UUID {uuid_}: its previous process" in caplog.text
    assert job.refresh().retry_data["interruptions"] == 1


def test_a_live_dispatcher_of_this_process_is_not_taken_over_from_another_database_object(
    db: jobq.Database, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    other = jobq.connect(db_url)
    first = fast_worker(db).start()
    second = fast_worker(other, uuid=first.uuid)
    try:
        with caplog.at_level(logging.WARNING, logger="jobq.events"):
            with pytest.raises(TimeoutError):
                second.start(timeout=0.5)
            assert "already activated" in caplog.text and "previous process" not in caplog.text
            assert first.activated
            first.stop()
            wait_until(lambda: second.activated, timeout=WAIT, what="second activation")
        assert other.queue().put(jobq.Job(jobfuncs.add, 1, 1)).wait(timeout=WAIT) == 2
    finally:
        first.stop()
        second.stop()
        other.close()
