"""`put(..., keep_result=...)` on both engines, in-process with a `MovableClock`: what the put
checks and stores, when a worker's retention prunes the job (not before its expiry, nor
before a callback has its result), and what reading it says afterwards (`jobq.JobExpired`,
with the time and the reason). The process-level path, a real `jobq worker` and `jobq job`,
is tests/acceptance/test_keep_result_process.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import jobfuncs
import pytest
from starlette.testclient import TestClient
from worker_helpers import wait_until

import jobq
from jobq.monitor import Monitor
from jobq.testing import MovableClock
from jobq.web import create_app
from jobq.worker.retention import Retention

T0 = dt.datetime(2031, 5, 1, 8, 0, tzinfo=dt.UTC)
WAIT = 15.0
HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def cworker(clock_db: jobq.Database) -> Iterator[jobq.Dispatcher]:
    dispatcher = clock_db.worker(poll_interval=0.05).start()
    yield dispatcher
    dispatcher.stop(grace=10)


def _gone(job: jobq.Job) -> bool:
    try:
        job.refresh()
    except jobq.JobNotFound:
        return True
    return False


@pytest.mark.parametrize(
    ("keep", "error", "words"),
    [
        (dt.timedelta(0), ValueError, r"keep_result=datetime.timedelta\(0\) is too short"),
        (dt.timedelta(seconds=-5), ValueError, "must be at least 1 second"),
        (dt.timedelta(milliseconds=500), ValueError, "must be at least 1 second"),
        (dt.timedelta(days=3651), ValueError, "too long: it must be at most 3650 days"),
        (dt.timedelta.max, ValueError, "at most 3650 days"),
        (3600, TypeError, "keep_result must be a datetime.timedelta.*got int 3600"),
        ("1H", TypeError, "must be a datetime.timedelta"),
    ],
)
def test_a_bad_keep_result_is_refused_at_the_put_and_nothing_is_stored(
    queue: jobq.Queue, keep: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        queue.put(jobq.Job(jobfuncs.add, 1, 2), keep_result=keep)  # type: ignore[arg-type]
    with pytest.raises(error, match=words):
        queue.put_many([jobq.Job(jobfuncs.add, 1, 2)], keep_result=keep)  # type: ignore[arg-type]
    assert len(queue) == 0
    assert queue.db.store.last_job_id() is None  # not even an id was taken


def test_a_pulled_job_keeps_the_keep_result_it_was_put_with(queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2), keep_result=HOUR)
    pulled = queue.pull()
    with pytest.raises(ValueError, match="keep_result= applies to new jobs"):
        queue.put(pulled, keep_result=2 * HOUR)
    assert job.refresh().status == jobq.Status.NEW and job.keep_result == HOUR


def test_the_put_stores_keep_result_and_the_completion_sets_the_expiry(
    clock_db: jobq.Database, clock: MovableClock, cworker: jobq.Dispatcher
) -> None:
    queue = clock_db.queue()
    one, many = queue.put(jobq.Job(jobfuncs.add, 1, 2), keep_result=HOUR), None
    many = queue.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(3)], keep_result=SECOND)
    plain = queue.put(jobq.Job(jobfuncs.add, 2, 2))
    assert one.keep_result == HOUR and one.expires_at is None  # shown at once by the handle
    # The worker may have completed it already: the expiry is set exactly when it completed.
    assert one.refresh().keep_result == HOUR
    assert (one.expires_at is None) == (one.completed_at is None)
    assert [j.refresh().keep_result for j in many] == [SECOND] * 3
    assert plain.keep_result is None
    assert one.wait(timeout=WAIT) == 3 and plain.wait(timeout=WAIT) == 4
    completed_at = one.refresh().completed_at
    assert completed_at is not None and one.expires_at == completed_at + HOUR
    assert plain.refresh().expires_at is None


def test_retention_prunes_a_job_at_its_expiry_and_reading_it_says_it_expired(
    clock_db: jobq.Database, clock: MovableClock, cworker: jobq.Dispatcher
) -> None:
    queue = clock_db.queue()
    kept = queue.put(jobq.Job(jobfuncs.add, 1, 2), keep_result=HOUR)
    long = queue.put(jobq.Job(jobfuncs.add, 3, 4), keep_result=dt.timedelta(days=30))
    plain = queue.put(jobq.Job(jobfuncs.add, 5, 6))
    assert kept.wait(timeout=WAIT) == 3 and long.wait(timeout=WAIT) == 7
    assert plain.wait(timeout=WAIT) == 11
    stale = clock_db.get_job(kept.id)  # type: ignore[arg-type]  # its result not read yet
    expires_at = kept.refresh().expires_at
    assert expires_at is not None

    # One second short of the expiry, a retention run (the worker's, and this one) keeps it.
    clock.set(expires_at - SECOND)
    result = Retention(clock_db.store).tick(clock.now())
    assert result is not None and result.expired == 0
    assert kept.refresh().status == jobq.Status.COMPLETED

    # At the expiry, the worker's own retention loop prunes it: only it.
    clock.set(expires_at + 61 * SECOND)
    cworker.wake()
    wait_until(lambda: _gone(kept), timeout=WAIT, what="the expired job pruned by the worker")
    assert long.refresh().status == plain.refresh().status == jobq.Status.COMPLETED

    when = expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    for read in (
        kept.refresh,
        lambda: stale.result,
        lambda: clock_db.get_job(kept.id),  # type: ignore[arg-type]
        lambda: Monitor(clock_db).job(kept.id),  # type: ignore[arg-type]
    ):
        with pytest.raises(jobq.JobExpired) as info:
            read()
        assert str(info.value).startswith(f"job {kept.id} expired at {when}: ")
        assert "put with keep_result=1:00:00" in str(info.value)
        assert info.value.expires_at == expires_at and info.value.keep_result == HOUR
        assert isinstance(info.value, jobq.JobNotFound)
    api = TestClient(create_app(clock_db)).get(f"/api/jobs/{kept.id}")
    assert api.status_code == 404 and f"expired at {when}" in api.json()["error"]
    assert api.json()["expired_at"] == expires_at.isoformat()
    page = TestClient(create_app(clock_db)).get(f"/jobs/{kept.id}")
    assert page.status_code == 404 and f"expired at {when}" in page.text

    # Past the workers' 7 days, the job put without keep_result goes; the one kept 30 days
    # stays until its own expiry.
    clock.advance(dt.timedelta(days=8))
    Retention(clock_db.store).tick(clock.now())
    assert _gone(plain) and long.refresh().status == jobq.Status.COMPLETED
    with pytest.raises(jobq.JobNotFound, match="no longer exists: it was pruned") as gone:
        plain.refresh()
    assert not isinstance(gone.value, jobq.JobExpired)
    # The record of the expired job is forgotten 7 days after it was written.
    with pytest.raises(jobq.JobNotFound) as forgotten:
        kept.refresh()
    assert not isinstance(forgotten.value, jobq.JobExpired)
    assert "no longer exists" in str(forgotten.value)
    clock.advance(dt.timedelta(days=23))
    Retention(clock_db.store).tick(clock.now())
    with pytest.raises(jobq.JobExpired, match=r"put with keep_result=30 days, 0:00:00"):
        long.refresh()
    with pytest.raises(jobq.JobNotFound, match=r"^no job with id 999999$"):
        clock_db.get_job(999_999)


def test_with_retention_off_jobs_put_with_keep_result_still_expire(
    clock_db: jobq.Database, clock: MovableClock, cworker: jobq.Dispatcher
) -> None:
    kept = clock_db.queue().put(jobq.Job(jobfuncs.add, 1, 2), keep_result=HOUR)
    assert kept.wait(timeout=WAIT) == 3
    cworker.stop(grace=10)  # else its own retention loop may prune the job first
    clock.advance(2 * HOUR)
    result = Retention(clock_db.store, keep=None).tick(clock.now())
    assert result is not None and (result.jobs, result.expired) == (0, 1)
    with pytest.raises(jobq.JobExpired):
        kept.refresh()


def test_a_job_is_not_pruned_before_its_callbacks_have_its_result(
    clock_db: jobq.Database, clock: MovableClock, cworker: jobq.Dispatcher
) -> None:
    parent = clock_db.queue().put(jobq.Job(jobfuncs.add, 1, 2), keep_result=HOUR)
    assert parent.wait(timeout=WAIT) == 3
    cworker.stop(grace=10)  # the callback added now stays pending
    late = parent.add_callback(jobfuncs.describe_result)
    assert late.refresh().status == jobq.Status.PENDING
    assert late.keep_result is None  # callbacks do not inherit it
    clock.advance(2 * HOUR)
    assert Retention(clock_db.store).tick(clock.now()).expired == 0  # type: ignore[union-attr]
    assert parent.refresh().status == jobq.Status.COMPLETED
    with clock_db.worker(poll_interval=0.05):
        assert late.wait(timeout=WAIT) == "got 3"
    clock.advance(2 * 60 * SECOND)
    assert Retention(clock_db.store).tick(clock.now()).expired == 1  # type: ignore[union-attr]
    with pytest.raises(jobq.JobExpired):
        parent.refresh()
    assert late.refresh().status == jobq.Status.COMPLETED


def test_a_job_put_inside_a_job_with_keep_result_expires_and_its_waiter_keeps_the_result(
    clock_db: jobq.Database, clock: MovableClock, cworker: jobq.Dispatcher
) -> None:
    outer = clock_db.queue().put(jobq.Job(jobfuncs.put_kept_inner, 21, 60.0))
    assert outer.wait(timeout=WAIT) == 42
    inner = clock_db.get_job(outer.refresh().id + 1)  # type: ignore[operator]
    assert inner.call_repr.startswith("jobfuncs.double(21")
    assert inner.keep_result == dt.timedelta(seconds=60)
    assert outer.keep_result is None
    cworker.stop(grace=10)  # else its own retention loop may prune the job first
    clock.advance(120)
    assert Retention(clock_db.store).tick(clock.now()).expired == 1  # type: ignore[union-attr]
    with pytest.raises(jobq.JobExpired):
        inner.refresh()
    assert clock_db.get_job(outer.id).result == 42  # type: ignore[arg-type]


def test_a_retried_copy_keeps_the_keep_result_of_the_job_it_copies(
    clock_db: jobq.Database, clock: MovableClock, cworker: jobq.Dispatcher
) -> None:
    job = clock_db.queue().put(jobq.Job(jobfuncs.fail, "no"), keep_result=HOUR)
    with pytest.raises(jobq.JobFailed):
        job.wait(timeout=WAIT)
    copy_id = clock_db.store.retry_failed(job.id, clock.now())  # type: ignore[arg-type]
    assert copy_id is not None and clock_db.get_job(copy_id).keep_result == HOUR
