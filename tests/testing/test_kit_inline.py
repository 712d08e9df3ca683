"""Inline mode: put runs the job at once in the caller, through jobq's own runner."""

from __future__ import annotations

import datetime as dt
import threading

import kit_fixtures
import kit_jobs
import pytest
import worker_helpers

import jobq
from jobq.testing import InlineRunner, MovableClock, inline, run_due

# The plugin's fixtures on both engines (see kit_fixtures.py).
jobq_engine = kit_fixtures.jobq_engine
jobq_pg_url = kit_fixtures.jobq_pg_url


def test_put_runs_the_job_at_once_and_stores_its_result(db: jobq.Database) -> None:
    queue = db.queue()
    with inline(db):
        job = queue.put(jobq.Job(kit_jobs.add, 1, 2))
        assert job.status == "completed" and job.result == 3
        assert job.active_start is not None and job.attempt == 1
        assert db.get_job(job.id).result == 3  # stored, as a worker would have
        failed = queue.put(jobq.Job(kit_jobs.fail, "bad input"))
        assert failed.status == "completed" and failed.failed
        assert failed.failure is not None and failed.failure.message == "bad input"
        with pytest.raises(jobq.JobFailed):
            failed.wait(timeout=1)
    assert len(queue) == 0


def test_jobs_naming_a_rate_limit_run_within_it_and_hold_no_other_job_back(
    db: jobq.Database,
) -> None:
    """Inline mode claims as a worker with one free thread does: a job naming a rate limit
    runs while its window has a claim left, and one put when it has none waits (pending)
    without holding back the plain jobs put after it (inline claims once left every job of
    such a queue pending, the plain ones included)."""
    queue = db.queue()
    queue.rate_limits.create("smtp", limit=1, per=dt.timedelta(minutes=1))
    with inline(db):
        first = queue.put(jobq.Job(kit_jobs.add, 1, 1), rate_limits=["smtp"])
        second = queue.put(jobq.Job(kit_jobs.add, 2, 2), rate_limits=["smtp"])
        plain = [queue.put(jobq.Job(kit_jobs.add, i, 10)) for i in range(3)]
    assert first.status == "completed" and first.result == 2
    assert second.refresh().status == "pending"  # the window's one claim was used
    assert [j.result for j in plain] == [10, 11, 12]
    assert queue.rate_limits["smtp"].used == 1


def test_jobs_run_in_the_callers_thread(db: jobq.Database) -> None:
    with inline(db) as runner:
        job = db.queue().put(jobq.Job(kit_jobs.thread_name))
    assert job.result == threading.current_thread().name
    assert job.agent_name == "inline" and job.dispatcher_uuid == runner.uuid


def test_callbacks_follow_ups_and_returned_jobs_run_before_put_returns(db: jobq.Database) -> None:
    queue = db.queue()
    with inline(db) as runner:
        parent = queue.put(jobq.Job(kit_jobs.put_follow_up, 4))
        assert parent.result == 4
        outer = queue.put(jobq.Job(kit_jobs.returns_job, 5))
        assert outer.status == "completed" and outer.result == 10
        elsewhere = queue.put(jobq.Job(kit_jobs.put_in, "other", 6))
        assert elsewhere.result == 6
        # A callback added to a completed job runs at once, too.
        callback = parent.add_callback(kit_jobs.describe)
        assert callback.status == "completed" and callback.result == "got 4"
        assert runner.run_due() == []
    assert len(queue) == 0 and len(db.queue("other")) == 0
    results = {}
    for job_id in range(1, callback.id + 1):
        job = db.get_job(job_id)
        assert job.status == "completed", job
        results[job.call_repr] = job.result
    assert results["kit_jobs.double(4)"] == 8  # the follow-up
    assert results["kit_jobs.double(6)"] == 12  # put in another queue, run all the same


def test_a_job_that_never_lets_the_queue_rest_is_stopped(db: jobq.Database) -> None:
    with inline(db, max_jobs=5), pytest.raises(RuntimeError, match="ran 5 jobs and job 6"):
        db.queue().put(jobq.Job(kit_jobs.forever, 0))
    assert [j.call_repr for j in db.queue()] == ["kit_jobs.forever(5)"]


def test_a_put_joining_a_transaction_runs_after_the_commit(db_url: str, db: jobq.Database) -> None:
    conn = worker_helpers.raw_connect(db_url)
    try:
        with inline(db) as runner:
            job = db.queue().put(jobq.Job(kit_jobs.add, 2, 2), conn=conn)
            conn.commit()
            assert job.refresh().status == "pending"
            (ran,) = runner.run_due()
            assert ran.id == job.id and ran.result == 4
    finally:
        conn.close()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))


def test_scheduled_jobs_run_when_the_clock_moves(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    with inline(clock_db):
        job = clock_db.queue().put(
            jobq.Job(kit_jobs.add, 3, 4), begin_after=clock.now() + dt.timedelta(minutes=30)
        )
        assert job.status == "pending"
        clock.advance(minutes=29)
        assert job.refresh().status == "pending"
        clock.advance(minutes=1)
        assert job.refresh().result == 7
    clock.advance(minutes=1)  # inline mode is off: the clock no longer runs anything
    job2 = clock_db.queue().put(jobq.Job(kit_jobs.add, 1, 1))
    assert job2.status == "pending"


def test_run_due_without_inline_mode(db: jobq.Database) -> None:
    jobs = db.queue().put_many([jobq.Job(kit_jobs.double, n) for n in range(3)])
    ran = run_due(db)
    assert [j.id for j in ran] == [j.id for j in jobs]
    assert [j.result for j in ran] == [0, 2, 4]


def test_inline_mode_is_one_at_a_time_and_is_turned_off(db: jobq.Database) -> None:
    with inline(db) as runner:
        assert isinstance(runner, InlineRunner)
        with pytest.raises(RuntimeError, match="already has inline mode"), inline(db):
            pass
    assert db.queue().put(jobq.Job(kit_jobs.add, 1, 1)).status == "pending"


def test_the_plugin_inline_fixture(jobq_inline: InlineRunner, jobq_queue: jobq.Queue) -> None:
    assert jobq_queue.put(jobq.Job(kit_jobs.double, 8)).result == 16
