"""What a job does to jobs through `jobq.local` happens in its attempt's transaction (issue 16
points 2 and 4), on both engines, with real `python -m jobq worker` processes.

README_1's pattern (`queue.put(j).addCallback(cb)` inside a job) completes and the callback
gets the child's result; a job that raises after its put leaves no child (one, if retried);
on SQLite the job holds no write lock while it runs, so a client's put does not wait for it;
parts added to a running `parallel` by a part and by a part's callback always make it."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import compose_jobs as cj
import pytest
from jobfuncs import RetryValueErrorsTwice, add
from local_jobs import (
    put_child_then_fail,
    put_child_then_fail_once,
    put_child_then_wait,
    put_child_with_callback,
)
from worker_helpers import execute, subprocess_env, wait_until

import jobq

pytestmark = pytest.mark.slow

WAIT = 30.0


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(WAIT) == 0, self.output()
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker did not stop on SIGTERM:\n{self.output()}") from None


@pytest.fixture
def spawn(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start a worker process, waited for until its dispatcher is activated; killed at the
    end of the test if still running."""
    started: list[Worker] = []

    def start(*extra: str, ident: str | None = None) -> Worker:
        ident = ident or str(uuid.uuid4())
        log = tmp_path / f"worker-{ident[:8]}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "jobq", "worker", "--db", db_url, "--uuid", ident),
                    *("--poll-interval", "0.1", *extra),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=subprocess_env(),
            )
        worker = Worker(proc, log)
        started.append(worker)

        def activated() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{worker.output()}")
            try:
                rows = execute(
                    db_url, "SELECT activated FROM jobq_dispatchers WHERE uuid = ?", (ident,)
                )
            except Exception:  # the table may not exist yet while the worker migrates
                return False
            return bool(rows) and rows[0][0] is not None

        wait_until(activated, timeout=WAIT, what=f"worker {ident} to activate")
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(10)


def calls_stored(db_url: str) -> list[str]:
    """The call of every job row, in id order."""
    return [str(r[0]) for r in execute(db_url, "SELECT call_repr FROM jobq_jobs ORDER BY id")]


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


# -- 16.2: README_1's pattern ----------------------------------------------------------------
def test_a_job_puts_a_child_and_adds_a_callback_to_it(
    db: jobq.Database, spawn: Callable[..., Worker], tmp_path: Path
) -> None:
    worker = spawn()
    out = tmp_path / "callback.out"
    job = db.queue().put(jobq.Job(put_child_with_callback, 21, str(out)))
    assert job.wait(timeout=WAIT) == "put"
    wait_until(lambda: lines(out), timeout=WAIT, what="the child's callback")
    assert lines(out) == ["42"]  # the callback got the child's result
    worker.stop()
    assert "CRITICAL" not in worker.output()


def test_a_client_put_does_not_wait_for_a_job_that_put_a_child(
    db: jobq.Database, spawn: Callable[..., Worker], tmp_path: Path
) -> None:
    worker = spawn()
    out, marker, gate = tmp_path / "callback.out", tmp_path / "marker", tmp_path / "gate"
    job = db.queue().put(jobq.Job(put_child_then_wait, 21, str(out), str(marker), str(gate)))
    wait_until(marker.exists, timeout=WAIT, what="the job to put its child")
    # The job is still running: had its put taken SQLite's write lock, this put would wait
    # for it, the gate would not open in time, and the job would fail.
    other = db.queue().put(jobq.Job(add, 1, 2))
    gate.write_text("open")
    assert job.wait(timeout=WAIT) == "passed the gate"
    assert other.wait(timeout=WAIT) == 3
    wait_until(lambda: lines(out), timeout=WAIT, what="the child's callback")
    assert lines(out) == ["42"]
    worker.stop()
    assert "could not ping" not in worker.output()


def test_a_job_that_fails_after_its_put_leaves_no_child(
    db: jobq.Database, db_url: str, spawn: Callable[..., Worker], tmp_path: Path
) -> None:
    spawn()
    out = tmp_path / "callback.out"
    job = db.queue().put(jobq.Job(put_child_then_fail, 21, str(out)), retry_policy=jobq.NeverRetry)
    with pytest.raises(jobq.JobFailed, match="failed after putting a child"):
        job.wait(timeout=WAIT)
    assert len(calls_stored(db_url)) == 1  # the failed job alone: no child, no callback
    assert not out.exists()


def test_a_job_retried_after_its_put_leaves_one_child(
    db: jobq.Database, db_url: str, spawn: Callable[..., Worker], tmp_path: Path
) -> None:
    spawn()
    out, runs = tmp_path / "callback.out", tmp_path / "runs"
    job = db.queue().put(
        jobq.Job(put_child_then_fail_once, 21, str(out), str(runs)),
        retry_policy=RetryValueErrorsTwice,
    )
    assert job.wait(timeout=WAIT) == "second run"
    wait_until(lambda: lines(out), timeout=WAIT, what="the child's callback")
    assert lines(runs) == ["run", "run"]
    assert lines(out) == ["42"]
    stored = calls_stored(db_url)
    assert len(stored) == 3, stored  # the job, one child, one callback
    assert sum("double" in call for call in stored) == 1


def test_a_job_killed_after_its_put_leaves_one_child_once_rerun(
    db: jobq.Database, db_url: str, spawn: Callable[..., Worker], tmp_path: Path
) -> None:
    """SIGKILL while the job runs after its put: nothing it put survives the crash; its re-run
    (a restart with the same UUID recovers it at once) puts the one child and callback."""
    out, marker, gate = tmp_path / "callback.out", tmp_path / "marker", tmp_path / "gate"
    ident = str(uuid.uuid4())
    victim = spawn("--death-interval", "600", ident=ident)
    job = db.queue().put(jobq.Job(put_child_then_wait, 21, str(out), str(marker), str(gate)))
    wait_until(marker.exists, timeout=WAIT, what="the job to put its child")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(WAIT)
    assert len(calls_stored(db_url)) == 1  # the job alone
    gate.write_text("open")
    spawn("--death-interval", "600", ident=ident)
    assert job.wait(timeout=WAIT) == "passed the gate"
    assert job.refresh().retry_data["interruptions"] == 1
    wait_until(lambda: lines(out), timeout=WAIT, what="the child's callback")
    assert lines(out) == ["42"]
    stored = calls_stored(db_url)
    assert len(stored) == 3, stored  # the job, one child, one callback


# -- 16.4: parts added to a running parallel --------------------------------------------------
def test_parts_added_to_a_running_parallel_always_make_it(
    db: jobq.Database, spawn: Callable[..., Worker]
) -> None:
    """The first part adds a second one and a callback to it, which adds a third: 100 runs
    in 10 rounds of 10 composites at once, on a worker with 4 threads."""
    worker = spawn("--agent", "main:4")
    results = []
    for _ in range(10):
        jobs = [db.queue().put(jobq.parallel(cj.first, postprocess=cj.as_list)) for _ in range(10)]
        results += [job.wait(timeout=WAIT) for job in jobs]
    assert results.count(["first", "second", "third"]) == 100, results
    worker.stop()
    assert "too late" not in worker.output()
