"""The test worker: drain() runs everything due, then returns; teardown names running jobs."""

from __future__ import annotations

import datetime as dt
import uuid

import kit_fixtures
import kit_jobs
import pytest

import jobq
from jobq.testing import InProcessWorker, MovableClock, TearDownError, start_worker

# The plugin's fixtures on both engines (see kit_fixtures.py).
jobq_engine = kit_fixtures.jobq_engine
jobq_pg_url = kit_fixtures.jobq_pg_url


def test_drain_runs_jobs_callbacks_and_follow_ups(db: jobq.Database) -> None:
    queue = db.queue()
    with start_worker(db) as worker:
        plain = queue.put(jobq.Job(kit_jobs.add, 1, 2))
        callback = plain.add_callback(kit_jobs.describe)
        chained = callback.add_callback(kit_jobs.describe)
        follow = queue.put(jobq.Job(kit_jobs.put_follow_up, 5))
        outer = queue.put(jobq.Job(kit_jobs.returns_job, 7))
        ran = worker.drain(timeout=20)
        assert plain.refresh().result == 3
        assert callback.refresh().result == "got 3"
        assert chained.refresh().result == "got 'got 3'"
        assert plain.status == "completed"
        assert follow.refresh().result == 5
        assert outer.refresh().result == 14 and outer.status == "completed"
        calls = sorted(job.call_repr for job in ran)
        assert "kit_jobs.double(5)" in calls and "kit_jobs.double(7)" in calls
        assert {j.id for j in ran} >= {plain.id, callback.id, chained.id, follow.id, outer.id}
        assert all(job.status == "completed" for job in ran)
        assert len(queue) == 0
        assert worker.drain(timeout=5) == []


def test_drain_leaves_scheduled_jobs_until_the_clock_reaches_them(db_url: str) -> None:
    clock = MovableClock(dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    with jobq.connect(db_url, clock=clock) as db, start_worker(db) as worker:
        later = db.queue().put(
            jobq.Job(kit_jobs.add, 1, 1), begin_after=clock.now() + dt.timedelta(days=1)
        )
        now = db.queue().put(jobq.Job(kit_jobs.add, 2, 2))
        assert [j.id for j in worker.drain(timeout=10)] == [now.id]
        assert later.refresh().status == "pending"
        clock.advance(dt.timedelta(days=1))
        assert [j.result for j in worker.drain(timeout=10)] == [2]


def test_drain_says_what_never_ran(db: jobq.Database) -> None:
    agents = [jobq.AgentSpec("picky", 1, "kit_jobs:reject_all")]
    with start_worker(db, agents=agents) as worker:
        job = db.queue().put(jobq.Job(kit_jobs.add, 1, 2))
        with pytest.raises(AssertionError) as e:
            worker.drain(timeout=0.3)
    assert str(e.value) == (
        "test worker's queues [''] never became idle within 0.3 s:\n"
        f"  job {job.id} (kit_jobs.add(1, 2)) due but not claimed (pending; no agent takes it?)"
    )


def test_drain_says_which_job_is_still_running(db: jobq.Database) -> None:
    token = uuid.uuid4().hex
    with start_worker(db) as worker:
        job = db.queue().put(jobq.Job(kit_jobs.gated, token))
        with pytest.raises(
            AssertionError, match=rf"job {job.id} \(kit_jobs.gated\(.*\)\) still active"
        ):
            worker.drain(timeout=0.3)
        kit_jobs.gate(token).set()
        worker.drain(timeout=10)


def test_teardown_names_jobs_still_running(db: jobq.Database) -> None:
    token = uuid.uuid4().hex
    worker = start_worker(db, grace=0.2)
    job = db.queue().put(jobq.Job(kit_jobs.gated, token, "late"))
    try:
        worker.drain(timeout=0.2)
    except AssertionError:
        pass
    with pytest.raises(TearDownError) as e:
        worker.stop()
    kit_jobs.release(token)
    assert f"job {job.id} (kit_jobs.gated('{token}', 'late')) still active" in str(e.value)
    assert [j.id for j in e.value.jobs] == [job.id]
    assert not worker.dispatcher.activated
    worker.stop()  # stopping again does nothing


def test_a_with_block_that_failed_keeps_its_own_error(db: jobq.Database) -> None:
    token = uuid.uuid4().hex
    with pytest.raises(KeyError), start_worker(db, grace=0.1) as worker:
        db.queue().put(jobq.Job(kit_jobs.gated, token))
        worker.dispatcher.wake()
        raise KeyError("the test's own failure")
    kit_jobs.release(token)


def test_the_plugin_worker_fixture(jobq_worker: InProcessWorker, jobq_queue: jobq.Queue) -> None:
    job = jobq_queue.put(jobq.Job(kit_jobs.double, 21))
    jobq_worker.drain()
    assert job.refresh().result == 42
    assert jobq_worker.queues == [""]
    assert jobq_worker.dispatcher.activated
