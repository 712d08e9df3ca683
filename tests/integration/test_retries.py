"""`put(..., retries=N)` on both engines, in-process: what the put checks and stores, and,
with a `MovableClock`, the exact next run of each retry (the process-level path, with a real
worker, the CLI and the dashboard, is tests/acceptance/test_retries_process.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import jobfuncs
import pytest
from worker_helpers import wait_until

import jobq
from jobq.testing import MovableClock

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)
WAIT = 15.0


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def cworker(clock_db: jobq.Database) -> Iterator[jobq.Dispatcher]:
    dispatcher = clock_db.worker(poll_interval=0.05).start()
    yield dispatcher
    dispatcher.stop(grace=10)


@pytest.mark.parametrize(
    ("retries", "error", "words"),
    [
        (-1, ValueError, "retries must be >= 0"),
        (2.0, TypeError, "retries must be a whole number"),
        (True, TypeError, "retries must be a whole number"),
        ("3", TypeError, "retries must be a whole number"),
    ],
)
def test_bad_retries_are_refused_at_the_put_and_nothing_is_stored(
    queue: jobq.Queue, retries: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        queue.put(jobq.Job(jobfuncs.add, 1, 2), retries=retries)  # type: ignore[arg-type]
    with pytest.raises(error, match=words):
        queue.put_many([jobq.Job(jobfuncs.add, 1, 2)], retries=retries)  # type: ignore[arg-type]
    assert len(queue) == 0


def test_retries_with_another_policy_is_refused(queue: jobq.Queue) -> None:
    with pytest.raises(TypeError, match="cannot be combined with retry_policy"):
        queue.put(jobq.Job(jobfuncs.add, 1, 2), retries=2, retry_policy=jobq.NeverRetry)
    assert len(queue) == 0


def test_put_many_stores_the_retries_with_every_job(db: jobq.Database, queue: jobq.Queue) -> None:
    jobs = queue.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(3)], retries=4)
    for job in [*jobs, *(db.get_job(j.id) for j in jobs)]:  # type: ignore[arg-type]
        assert (job.retries, job.retried) == (4, 0)
        assert job.retry_policy == "jobq.model.retry:RetryWithBackoff"
        assert job.retry_data == {"retries": 4}
        assert job.next_run == job.begin_after
    plain = queue.put(jobq.Job(jobfuncs.add, 1, 1))
    assert (plain.retries, plain.retried) == (None, 0)
    assert db.get_job(plain.id).retry_data == {}  # type: ignore[arg-type]


def test_retries_with_a_subclass_of_the_ready_policy(db: jobq.Database, queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2), retries=0, retry_policy=jobfuncs.QuickBackoff)
    stored = db.get_job(job.id)  # type: ignore[arg-type]
    assert stored.retry_policy == "jobfuncs:QuickBackoff"
    assert stored.retries == 0


def test_retries_are_refused_for_a_pulled_job(queue: jobq.Queue) -> None:
    queue.put(jobq.Job(jobfuncs.add, 1, 2))
    pulled = queue.pull()
    with pytest.raises(ValueError, match="retries= applies to new jobs"):
        queue.put(pulled, retries=2)
    assert len(queue) == 0


def test_each_retry_is_due_after_its_backoff_then_the_last_error_fails_the_job(
    clock_db: jobq.Database, clock: MovableClock, cworker: jobq.Dispatcher, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    job = clock_db.queue().put(jobq.Job(jobfuncs.flaky, str(calls), 10, "never"), retries=3)
    backoffs = []
    for retried, (low, high) in enumerate([(0.5, 1.0), (1.0, 2.0), (2.0, 4.0)], start=1):
        wait_until(lambda: job.refresh().retried == retried, timeout=WAIT, what="a retry")  # noqa: B023
        assert job.status == jobq.Status.PENDING
        backoff = job.retry_data["backoff"]
        assert low <= backoff <= high
        # The clock stands still: the next run is exactly the failure's time plus the backoff.
        assert job.next_run == clock.now() + dt.timedelta(seconds=backoff)
        backoffs.append(backoff)
        clock.advance(dt.timedelta(seconds=backoff) + dt.timedelta(microseconds=1000))
    with pytest.raises(jobq.JobFailed) as info:
        job.wait(timeout=WAIT)
    assert info.value.failure.message == "flaky call 4 of 10 failing"
    assert (job.retries, job.retried, job.next_run) == (3, 3, None)
    assert backoffs == sorted(backoffs)
    assert len(calls.read_text().splitlines()) == 4

    # Retried by hand, the copy keeps its retries and starts its counts afresh.
    copy_id = clock_db.store.retry_failed(job.id, clock.now())  # type: ignore[arg-type]
    assert copy_id is not None
    copy = clock_db.get_job(copy_id)
    assert copy.retry_data == {"retries": 3}
    assert copy.retry_policy == "jobq.model.retry:RetryWithBackoff"
