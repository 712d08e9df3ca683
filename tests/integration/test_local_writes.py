"""What a running job does to jobs through `jobq.local` is written in its attempt's
transaction, on both engines: annotations of a child it put, the handles of jobs not written
yet, and live annotations once the job holds its connection. (Through worker processes:
tests/acceptance/test_local_transactions.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import local_jobs as lj
import pytest
from worker_helpers import execute, failing_store_result, wait_until

import jobq
from jobq.testing import InProcessWorker, start_worker

WAIT = 30.0


@pytest.fixture
def w(db: jobq.Database, db_url: str) -> Iterator[InProcessWorker]:
    """A worker, stopped once every job the test's jobs put has completed."""
    with start_worker(db) as worker:
        yield worker
        wait_until(lambda: not unfinished(db_url), timeout=WAIT, what="every job to complete")


def written(path: Path) -> list[str]:
    """What the callbacks wrote to `path` (empty until one has)."""
    return path.read_text().split() if path.exists() else []


def unfinished(db_url: str) -> list[tuple[object, ...]]:
    return execute(db_url, "SELECT id FROM jobq_jobs WHERE status <> 'completed'")


def test_annotations_of_a_child_commit_with_the_job(
    db: jobq.Database, db_url: str, w: InProcessWorker
) -> None:
    job = db.queue().put(jobq.Job(lj.put_annotated_child, 21))
    assert job.wait(timeout=WAIT) == 42
    assert job.annotations["child"] == "put"
    [(child_id,)] = execute(db_url, "SELECT id FROM jobq_jobs WHERE id <> ?", (job.id,))
    assert db.get_job(child_id).annotations["from"] == "parent"


def test_a_child_is_not_stored_until_the_job_commits(db: jobq.Database, w: InProcessWorker) -> None:
    job = db.queue().put(jobq.Job(lj.refresh_unwritten_child))
    assert "is not stored yet" in job.wait(timeout=WAIT)


def test_a_job_cannot_put_the_same_job_twice(db: jobq.Database, w: InProcessWorker) -> None:
    job = db.queue().put(jobq.Job(lj.put_the_same_job_twice))
    assert "was put already by this job" in job.wait(timeout=WAIT)


def test_what_was_kept_is_written_first_when_the_job_opens_its_connection(
    db: jobq.Database, w: InProcessWorker
) -> None:
    job = db.queue().put(jobq.Job(lj.put_then_count_in_connection))
    assert job.wait(timeout=WAIT) == 2


def test_progress_after_opening_the_connection_does_not_wait_for_the_job(
    db: jobq.Database, w: InProcessWorker
) -> None:
    job = db.queue().put(jobq.Job(lj.connection_then_progress))
    assert job.wait(timeout=WAIT) == "done"
    assert job.progress == {"done": 1, "total": 2, "message": "half"}


def test_an_async_job_puts_a_child_and_adds_a_callback_to_it(
    db: jobq.Database, w: InProcessWorker, tmp_path: Path
) -> None:
    out = tmp_path / "callback.out"
    job = db.queue().put(jobq.Job(lj.async_put_child_with_callback, 21, str(out)))
    assert job.wait(timeout=WAIT) == "put"
    wait_until(lambda: written(out), timeout=WAIT, what="the child's callback")
    assert written(out) == ["42"]


def test_a_refused_commit_leaves_no_child(
    db: jobq.Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_store_result(monkeypatch, db, ValueError("commit refused"), 1)
    out = tmp_path / "callback.out"
    job = db.queue().put(jobq.Job(lj.put_child_with_callback, 21, str(out)))
    with start_worker(db), pytest.raises(jobq.JobFailed, match="commit refused"):
        job.wait(timeout=WAIT)
    assert len(execute(db_url, "SELECT id FROM jobq_jobs")) == 1  # the job alone
    assert not out.exists()


def test_a_commit_retried_after_a_conflict_leaves_one_child(
    db: jobq.Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = failing_store_result(monkeypatch, db, jobq.ConflictError("commit conflict"), 2)
    out = tmp_path / "callback.out"
    job = db.queue().put(jobq.Job(lj.put_child_with_callback, 21, str(out)))
    with start_worker(db):
        assert job.wait(timeout=WAIT) == "put"
        wait_until(lambda: not unfinished(db_url), timeout=WAIT, what="every job to complete")
    assert len(raised) == 2
    assert written(out) == ["42"]
    assert len(execute(db_url, "SELECT id FROM jobq_jobs")) == 3  # the job, child, callback


def test_what_a_teardown_puts_after_a_failure_is_stored(
    db: jobq.Database, w: InProcessWorker, tmp_path: Path
) -> None:
    out = tmp_path / "callback.out"
    job = db.queue().put(lj.PutInTeardownJob(lj.fail_with, "boom", str(out)))
    with pytest.raises(jobq.JobFailed, match="boom"):
        job.wait(timeout=WAIT)
    wait_until(lambda: written(out), timeout=WAIT, what="the callback of the job the teardown put")
    assert written(out) == ["42"]
