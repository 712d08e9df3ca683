"""A full disk under SQLite (issue 17.7), on a small tmpfs of the test's own: a put says the
disk is full, names the database and loses nothing stored; a running worker waits, says so
once a minute (no CRITICAL, no traceback per poll), and goes on when there is room again."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from full_disk import fill
from jobfuncs import add
from worker_helpers import subprocess_env, wait_until

import jobq

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

SQLITE_ONLY = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
WAIT = 30.0


@SQLITE_ONLY
def test_a_put_on_a_full_disk_says_so_and_loses_nothing(engine: str, small_disk: Path) -> None:
    path = small_disk / "jobs.db"
    with jobq.connect(f"sqlite:///{path}") as db:
        stored = [db.queue().put(jobq.Job(add, i, 1)) for i in range(5)]
        filler = fill(small_disk)
        with pytest.raises(jobq.StoreFull) as raised:
            for _ in range(5000):  # the WAL's free pages go first
                db.queue().put(jobq.Job(add, 0, "x" * 4000))
        assert str(path) in str(raised.value) and "is full" in str(raised.value)
        assert isinstance(raised.value, jobq.StoreUnavailable)  # retried as a lost database
        assert [db.get_job(job.id).args for job in stored] == [(i, 1) for i in range(5)]
        filler.unlink()
        assert db.queue().put(jobq.Job(add, 2, 2)).id is not None  # room again: writes go


@SQLITE_ONLY
def test_a_worker_waits_for_room_and_says_so_once(
    engine: str, small_disk: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{small_disk / 'jobs.db'}"
    db = jobq.connect(url)
    later = db.clock.now() + dt.timedelta(seconds=2)
    jobs = [db.queue().put(jobq.Job(add, i, 1), begin_after=later) for i in range(5)]
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "jobq", "worker", "--db", url),
                *("--uuid", str(uuid.uuid4()), "--poll-interval", "0.1"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
        )
    try:
        wait_until(lambda: "activated dispatcher" in log.read_text(), timeout=WAIT, what="start")
        filler = fill(small_disk)
        wait_until(lambda: "is full" in log.read_text(), timeout=WAIT, what="the warning")
        wait_until(lambda: db.clock.now() > later + dt.timedelta(seconds=2), timeout=WAIT)
        assert all(job.refresh().status == "pending" for job in jobs)
        filler.unlink()
        results = [job.wait(timeout=WAIT) for job in jobs]
        assert results == [i + 1 for i in range(5)], log.read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(WAIT)
        db.close()
    output = log.read_text()
    full_lines = [line for line in output.splitlines() if "is full" in line]
    assert 1 <= len(full_lines) <= 3, full_lines  # once per loop that met it, not every poll
    assert all(" WARNING " in line for line in full_lines)
    assert "CRITICAL" not in output and "Traceback" not in output


def _worker_on_a_full_disk(
    small_disk: Path, tmp_path: Path, jobs: int
) -> tuple[str, list[jobq.Job], Path, Path, subprocess.Popen[bytes]]:
    """`jobs` jobs put, the disk then filled, and a worker started on it (its log with it):
    (url, jobs, the filler file, log, worker), once the worker has said the disk is full."""
    url = f"sqlite:///{small_disk / 'jobs.db'}"
    with jobq.connect(url) as db:
        put = [db.queue().put(jobq.Job(add, i, 1)) for i in range(jobs)]
    filler = fill(small_disk)  # the database is closed: not even its WAL can be made now
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "jobq", "worker", "--db", url, "--poll-interval", "0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
        )
    try:
        wait_until(lambda: "is full" in log.read_text(), timeout=WAIT, what="the warning")
    except BaseException:
        worker.kill()
        worker.wait()
        raise
    return url, put, filler, log, worker


@SQLITE_ONLY
def test_a_worker_started_on_a_full_disk_waits_then_runs(
    engine: str, small_disk: Path, tmp_path: Path
) -> None:
    url, jobs, filler, log, worker = _worker_on_a_full_disk(small_disk, tmp_path, 3)
    try:
        assert worker.poll() is None  # waiting, not crashed
        filler.unlink()
        with jobq.connect(url) as db:
            assert [db.get_job(job.id).wait(timeout=WAIT) for job in jobs] == [1, 2, 3]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(WAIT)
    output = log.read_text()
    assert worker.returncode == 0, output
    assert "Traceback" not in output and "CRITICAL" not in output
    assert len([line for line in output.splitlines() if "is full" in line]) <= 2


@SQLITE_ONLY
def test_a_worker_waiting_for_room_stops_on_sigterm(
    engine: str, small_disk: Path, tmp_path: Path
) -> None:
    url, _, filler, log, worker = _worker_on_a_full_disk(small_disk, tmp_path, 1)
    try:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(WAIT) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        filler.unlink()
    assert "Traceback" not in log.read_text()
    with jobq.connect(url) as db:
        assert db.store.count_pending("") == 1  # the job waits, as it was
