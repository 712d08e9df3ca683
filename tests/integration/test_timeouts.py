"""Execution time limits on both engines, in-process (issue 18.4): `put(..., timeout=...)` and
the worker's `job_timeout`. A job that checks its stop request ends and is recorded as a
timeout; one that ignores it is taken away after the grace period, and what it writes later
(its result, its own transaction, annotations, puts) is refused; a healthy job beside it is
untouched; the retry policy decides. The process-level path (a `jobq worker` process, and
`--processes 2` replacing the child) is tests/acceptance/test_timeouts_process.py."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from pathlib import Path

import jobfuncs
import pytest
import timeout_jobs
from timeout_jobs import events
from worker_helpers import wait_until

import jobq
from jobq.monitor import Monitor

WAIT = 30.0


@pytest.fixture
def limits(db: jobq.Database) -> Iterator[jobq.Dispatcher]:
    """A worker whose jobs get a 0.3 s grace once past their limit."""
    dispatcher = db.worker(poll_interval=0.1, timeout_grace=0.3).start()
    yield dispatcher
    dispatcher.stop(grace=10)


def _completed(job: jobq.Job) -> bool:
    job.refresh()
    return job.status == jobq.Status.COMPLETED


def _idle(dispatcher: jobq.Dispatcher) -> bool:
    """No job runs in the dispatcher's pools (a runaway's call has returned)."""
    return all(pool.running == 0 for pool in dispatcher._pools.values())


def _release(folder: Path) -> None:
    (folder / "release").touch()


def _timed_out(job: jobq.Job) -> str:
    """The message of the job's JobTimeout failure (it must have one)."""
    assert job.failed, job.result
    failure = job.result
    assert isinstance(failure, jobq.Failure)
    assert failure.type_name == "jobq.errors.JobTimeout", failure
    return failure.message


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("timeout", "error", "words"),
    [
        (0, ValueError, "timeout must be > 0"),
        (-5, ValueError, "timeout must be > 0"),
        (dt.timedelta(0), ValueError, "timeout must be > 0"),
        (dt.timedelta(seconds=-1), ValueError, "timeout must be > 0"),
        (math.nan, ValueError, "timeout must be > 0"),
        (math.inf, ValueError, "timeout must be > 0"),
        ("5", TypeError, "timeout must be a timedelta or a number of seconds"),
        (True, TypeError, "timeout must be a timedelta or a number of seconds"),
    ],
)
def test_a_bad_timeout_is_refused_at_the_put_and_nothing_is_stored(
    queue: jobq.Queue, timeout: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words) as raised:
        queue.put(jobq.Job(jobfuncs.add, 1, 2), timeout=timeout)  # type: ignore[arg-type]
    assert repr(timeout) in str(raised.value)  # the message names the value
    with pytest.raises(error, match=words):
        queue.put_many([jobq.Job(jobfuncs.add, 1, 2)], timeout=timeout)  # type: ignore[arg-type]
    assert len(queue) == 0


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"job_timeout": 0}, "job_timeout must be > 0"),
        ({"job_timeout": -1.0}, "job_timeout must be > 0"),
        ({"job_timeout": "60"}, "job_timeout must be a timedelta or a number"),
        ({"timeout_grace": -1}, "timeout_grace must be >= 0"),
        (
            {"job_timeout": 5, "timeout_grace": 10},
            r"job_timeout \(5 s\) must not be shorter than the grace period \(10 s\)",
        ),
        (
            {"job_timeout": dt.timedelta(seconds=1), "timeout_grace": dt.timedelta(seconds=2)},
            r"job_timeout \(1 s\) must not be shorter than the grace period \(2 s\)",
        ),
    ],
)
def test_bad_worker_limits_are_refused_when_the_worker_is_made(
    db: jobq.Database, options: dict[str, object], words: str
) -> None:
    with pytest.raises(jobq.ConfigError, match=words):
        db.worker(**options)  # type: ignore[arg-type]
    assert db.store.list_dispatchers() == []  # nothing registered


def test_the_limit_is_saved_with_the_job(db: jobq.Database, queue: jobq.Queue) -> None:
    jobs = queue.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(2)], timeout=90)
    one = queue.put(jobfuncs.add, timeout=dt.timedelta(minutes=5), retries=2)
    for job in jobs:
        assert db.get_job(job.id).retry_data == {"timeout": 90.0}  # type: ignore[arg-type]
    assert db.get_job(one.id).retry_data == {"retries": 2, "timeout": 300.0}  # type: ignore[arg-type]
    assert Monitor(db).job(one.id).time_limit == dt.timedelta(minutes=5)  # type: ignore[arg-type]
    assert one.time_limit == dt.timedelta(minutes=5)
    assert db.get_job(one.id).time_limit == dt.timedelta(minutes=5)  # type: ignore[arg-type]
    plain = queue.put(jobq.Job(jobfuncs.add, 1, 1))
    assert Monitor(db).job(plain.id).time_limit is None  # type: ignore[arg-type]
    assert plain.time_limit is None


def test_a_pulled_job_keeps_its_settings(queue: jobq.Queue) -> None:
    queue.put(jobq.Job(jobfuncs.add, 1, 2))
    pulled = queue.pull()
    with pytest.raises(ValueError, match="timeout= applies to new jobs"):
        queue.put(pulled, timeout=5)
    assert len(queue) == 0


# -- enforcement ------------------------------------------------------------------------------
def test_a_job_that_checks_its_stop_request_ends_and_is_recorded_as_a_timeout(
    db: jobq.Database, tmp_path: Path
) -> None:
    with db.worker(poll_interval=0.1, timeout_grace=20).start():
        job = db.queue().put(jobq.Job(timeout_jobs.cooperative, str(tmp_path)), timeout=0.3)
        wait_until(lambda: _completed(job), WAIT)
    assert "it ended once its stop was requested" in _timed_out(job)
    assert events(tmp_path) == ["stop seen"]
    assert job.attempt == 1


@pytest.mark.parametrize("open_connection", [True, False], ids=["own-transaction", "kept-writes"])
def test_a_job_that_ignores_its_stop_is_taken_away_and_its_late_writes_are_refused(
    db: jobq.Database, limits: jobq.Dispatcher, tmp_path: Path, open_connection: bool
) -> None:
    folder = str(tmp_path)
    queue = db.queue()
    runaway = queue.put(
        jobq.Job(timeout_jobs.runaway, folder, open_connection=open_connection), timeout=0.3
    )
    healthy = queue.put(jobq.Job(timeout_jobs.healthy, folder, 1.0))
    try:
        wait_until(lambda: _completed(runaway), WAIT)
        # Taken away while its thread still runs (it waits for the release).
        assert "its attempt was taken away" in _timed_out(runaway)
        assert "returning" not in events(tmp_path)
        wait_until(lambda: _completed(healthy), WAIT)
        assert healthy.result == "healthy" and not healthy.failed
    finally:
        _release(tmp_path)
    wait_until(lambda: "returning" in events(tmp_path), WAIT)
    seen = events(tmp_path)
    assert "stop requested: True" in seen
    assert "annotation refused: ReassignedError" in seen
    assert "put refused: ReassignedError" in seen
    assert "connection refused: ReassignedError" in seen
    if open_connection:
        assert any(line.startswith("old connection refused") for line in seen), seen
    # Its late result never replaced the timeout, and nothing it wrote exists.
    wait_until(lambda: _idle(limits), WAIT)
    runaway.refresh()
    assert "its attempt was taken away" in _timed_out(runaway)
    assert "late" not in runaway.annotations
    assert "follow-up ran" not in events(tmp_path)
    calls = [db.get_job(i).call_repr for i in range(1, healthy.id + 3) if _exists(db, i)]  # type: ignore[operator]
    assert not [c for c in calls if "follow_up" in c], calls


def _exists(db: jobq.Database, job_id: int) -> bool:
    return db.store.get(job_id) is not None


def test_the_worker_default_applies_to_jobs_without_their_own(
    db: jobq.Database, tmp_path: Path
) -> None:
    with db.worker(poll_interval=0.1, job_timeout=0.3, timeout_grace=0.3).start():
        limited = db.queue().put(jobq.Job(timeout_jobs.cooperative, str(tmp_path)))
        own = db.queue().put(jobq.Job(jobfuncs.sleep_then, 1.0, "slow"), timeout=60)
        wait_until(lambda: _completed(limited) and _completed(own), WAIT)
    assert "time limit of 0.3 s" in _timed_out(limited)
    assert (own.failed, own.result) == (False, "slow")  # its own limit, not the default


def test_put_retries_retry_a_timeout_then_fail(db: jobq.Database, tmp_path: Path) -> None:
    with db.worker(poll_interval=0.1, timeout_grace=5).start():
        job = db.queue().put(
            jobq.Job(timeout_jobs.cooperative, str(tmp_path)), timeout=0.2, retries=1
        )
        wait_until(lambda: _completed(job), WAIT)
    _timed_out(job)
    assert job.attempt == 2
    assert job.retry_data["error"] == 2
    assert events(tmp_path) == ["stop seen", "stop seen"]


def test_never_retry_never_runs_a_timed_out_job_again(db: jobq.Database, tmp_path: Path) -> None:
    with db.worker(poll_interval=0.1, timeout_grace=0.2).start() as dispatcher:
        job = db.queue().put(
            jobq.Job(timeout_jobs.runaway, str(tmp_path), open_connection=False),
            timeout=0.2,
            retry_policy=jobq.NeverRetry,
        )
        try:
            wait_until(lambda: _completed(job), WAIT)
        finally:
            _release(tmp_path)
        wait_until(lambda: _idle(dispatcher), WAIT)
    assert "its attempt was taken away" in _timed_out(job)
    assert job.attempt == 1
    assert len([e for e in events(tmp_path) if e.startswith("started")]) == 1


def test_a_runaway_keeps_its_thread_counted_against_its_agent(
    db: jobq.Database, tmp_path: Path
) -> None:
    """An agent of size 1 whose thread runs a job taken away starts no second thread: the
    next job waits until the runaway's call returns."""
    agents = [jobq.AgentSpec("main", 1)]
    with db.worker(poll_interval=0.05, agents=agents, timeout_grace=0.2).start() as dispatcher:
        queue = db.queue()
        runaway = queue.put(
            jobq.Job(timeout_jobs.runaway, str(tmp_path), open_connection=False), timeout=0.2
        )
        try:
            wait_until(lambda: _completed(runaway), WAIT)
            after = queue.put(jobq.Job(jobfuncs.add, 1, 2))
            for _ in range(10):  # some polls of the dispatcher: it must not start it
                dispatcher.wake()
                time.sleep(0.05)
            after.refresh()
            assert after.status == jobq.Status.PENDING
            pool = dispatcher._pools[("", "main")]
            assert pool.threads == 1
        finally:
            _release(tmp_path)
        wait_until(lambda: _completed(after), WAIT)
    assert after.result == 3


def test_a_stop_does_not_wait_for_a_runaway(db: jobq.Database, tmp_path: Path) -> None:
    dispatcher = db.worker(poll_interval=0.1, timeout_grace=0.2).start()
    job = db.queue().put(
        jobq.Job(timeout_jobs.runaway, str(tmp_path), open_connection=False), timeout=0.2
    )
    try:
        wait_until(lambda: _completed(job), WAIT)
        # Its thread still runs, and cannot be stopped: the stop no longer waits for it.
        assert dispatcher.stop(grace=60) is True
        assert "returning" not in events(tmp_path)
    finally:
        _release(tmp_path)
    assert "its attempt was taken away" in _timed_out(job)


def test_an_async_job_over_its_limit_is_cancelled(db: jobq.Database, tmp_path: Path) -> None:
    with db.worker(poll_interval=0.1, timeout_grace=0.2).start() as dispatcher:
        job = db.queue().put(jobq.Job(timeout_jobs.async_runaway, str(tmp_path)), timeout=0.3)
        wait_until(lambda: _completed(job), WAIT)
        # Cancelled for real, at its await: its finally ran and it holds nothing.
        wait_until(lambda: "async finally" in events(tmp_path), WAIT)
        wait_until(lambda: _idle(dispatcher), WAIT)
    assert "its attempt was taken away" in _timed_out(job)


def test_jobs_without_a_limit_are_not_watched(db: jobq.Database, limits: jobq.Dispatcher) -> None:
    job = db.queue().put(jobq.Job(jobfuncs.sleep_then, 0.5, "done"))
    wait_until(lambda: job.refresh().status == jobq.Status.ACTIVE, WAIT)
    assert len(limits.timeouts) == 0
    wait_until(lambda: _completed(job), WAIT)
    assert job.result == "done"


def test_a_timed_out_job_retried_by_hand_keeps_its_limit(db: jobq.Database, tmp_path: Path) -> None:
    with db.worker(poll_interval=0.1, timeout_grace=5).start():
        job = db.queue().put(jobq.Job(timeout_jobs.cooperative, str(tmp_path)), timeout=0.2)
        wait_until(lambda: _completed(job), WAIT)
        _timed_out(job)
        again = db.get_job(Monitor(db).retry(job.id).id)  # type: ignore[arg-type]
        assert again.retry_data == {"timeout": 0.2}
        wait_until(lambda: _completed(again), WAIT)
    assert "time limit of 0.2 s" in _timed_out(again)
    assert events(tmp_path) == ["stop seen", "stop seen"]
