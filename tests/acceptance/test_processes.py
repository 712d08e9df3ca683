"""`jobq worker --processes N` on both engines: N dispatcher processes under one supervisor,
each with its own stable UUID, restarted (recovering its jobs at once) when killed, and all
stopped gracefully by one SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobfuncs import add, insert_when_file_exists
from worker_helpers import app_rows, create_app_table, execute, subprocess_env, wait_until

import jobq
from jobq.worker.supervisor import backoff, slot_uuids

pytestmark = pytest.mark.slow

WAIT = 30.0


def test_slot_uuids_are_derived_from_the_base_and_stable() -> None:
    base = str(uuid.uuid4())
    first, again = slot_uuids(base, 3), slot_uuids(base, 3)
    assert first == again and len(set(first)) == 3
    assert first[1] == str(uuid.uuid5(uuid.UUID(base), "1"))
    assert len(set(slot_uuids(None, 3))) == 3
    assert [backoff(n, 4.0) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]


def _rows(db_url: str) -> dict[str, tuple[Any, Any]]:
    """{uuid: (activated, pid)} of every dispatcher record."""
    try:
        rows = execute(db_url, "SELECT uuid, activated, pid FROM jobq_dispatchers")
    except Exception:  # the tables may not exist yet while the workers migrate
        return {}
    return {str(u): (activated, pid) for u, activated, pid in rows}


class Supervised:
    def __init__(self, db_url: str, log: Path, *extra: str) -> None:
        self.base = str(uuid.uuid4())
        self.uuids = slot_uuids(self.base, 2)
        self.log = log
        command = [
            *(sys.executable, "-m", "jobq", "worker", "--db", db_url, "--processes", "2"),
            *("--uuid", self.base, "--poll-interval", "0.1", "--agent", "main:2", *extra),
        ]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=subprocess_env()
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"supervisor did not stop:\n{self.output()}") from None


@pytest.fixture
def supervised(db_url: str, tmp_path: Path) -> Iterator[Supervised]:
    """A supervisor of two worker processes, waited for until both are activated."""
    sup = Supervised(db_url, tmp_path / "supervisor.log")

    def both_active() -> bool:
        if sup.proc.poll() is not None:
            raise AssertionError(f"supervisor exited early:\n{sup.output()}")
        rows = _rows(db_url)
        return all(u in rows and rows[u][0] is not None for u in sup.uuids)

    try:
        wait_until(both_active, timeout=WAIT, what="both worker processes to activate")
        yield sup
    finally:
        if sup.proc.poll() is None:
            sup.proc.send_signal(signal.SIGTERM)
            try:
                sup.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                sup.proc.kill()


def test_two_processes_run_jobs_and_stop_gracefully(
    db: jobq.Database, db_url: str, supervised: Supervised
) -> None:
    rows = _rows(db_url)
    pids = {rows[u][1] for u in supervised.uuids}
    assert len(pids) == 2 and supervised.proc.pid not in pids  # two child processes
    jobs = db.queue().put_many([jobq.Job(add, i, i) for i in range(20)])
    assert [job.wait(timeout=WAIT) for job in jobs] == [2 * i for i in range(20)]
    assert {job.dispatcher_uuid for job in jobs} <= set(supervised.uuids)
    assert supervised.stop() == 0, supervised.output()
    rows = _rows(db_url)
    assert all(rows[u][0] is None for u in supervised.uuids)  # both deactivated
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_killed_process_is_restarted_and_recovers_its_job_at_once(
    db: jobq.Database, db_url: str, supervised: Supervised, tmp_path: Path
) -> None:
    create_app_table(db_url)
    flag = tmp_path / "go"
    job = db.queue().put(jobq.Job(insert_when_file_exists, str(flag), "written"))
    wait_until(lambda: job.refresh().status == "active", timeout=WAIT, what="job active")
    victim = job.dispatcher_uuid
    assert victim in supervised.uuids
    old_pid = _rows(db_url)[victim][1]
    os.kill(old_pid, signal.SIGKILL)  # mid-job; the death interval is 30 s: no sibling sweep

    def restarted() -> bool:
        activated, pid = _rows(db_url)[victim]
        return activated is not None and pid != old_pid

    wait_until(restarted, timeout=WAIT, what="the slot to be restarted with its UUID")
    flag.touch()
    assert job.wait(timeout=WAIT) == "written"
    assert job.attempt == 2 and job.retry_data["interruptions"] == 1
    assert app_rows(db_url) == ["written"]
    assert "died with code -9" in supervised.output()
    assert supervised.stop() == 0, supervised.output()
