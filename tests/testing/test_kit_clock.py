"""MovableClock: frozen time that tests move, for one Database, waking its test worker."""

from __future__ import annotations

import datetime as dt

import kit_jobs
import pytest

import jobq
from jobq.testing import MovableClock, start_worker, wait_for_result

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def test_the_clock_stands_still_until_moved() -> None:
    clock = MovableClock(T0)
    assert clock.now() == T0
    assert clock.now() == T0
    assert clock.advance(30) == T0 + dt.timedelta(seconds=30)
    assert clock.advance(dt.timedelta(minutes=1)) == T0 + dt.timedelta(seconds=90)
    assert clock.advance(hours=1, seconds=10) == T0 + dt.timedelta(hours=1, seconds=100)
    assert clock.set(T0) == T0
    assert clock.now() == T0


def test_times_are_aware_and_in_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    clock = MovableClock(dt.datetime(2024, 3, 1, 10, 0, tzinfo=paris))
    assert clock.now() == T0
    assert clock.now().tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        clock.set(dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        MovableClock(dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="forward only"):
        clock.advance(-1)


def test_default_start_is_the_real_time_of_creation() -> None:
    before = dt.datetime.now(UTC)
    clock = MovableClock()
    after = dt.datetime.now(UTC)
    assert before <= clock.now() <= after


def test_moving_the_clock_calls_its_listeners_until_they_unregister() -> None:
    clock = MovableClock(T0)
    seen: list[dt.datetime] = []
    unregister = clock.on_change(lambda: seen.append(clock.now()))
    clock.advance(1)
    clock.set(T0)
    unregister()
    clock.advance(5)
    unregister()  # twice is harmless
    assert seen == [T0 + dt.timedelta(seconds=1), T0]


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


def test_a_scheduled_job_runs_when_the_clock_reaches_it(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    # A poll interval far longer than the test: only the clock's wake-up can start the job.
    with start_worker(clock_db, poll_interval=60) as worker:
        job = clock_db.queue().put(
            jobq.Job(kit_jobs.add, 2, 3), begin_after=T0 + dt.timedelta(hours=1)
        )
        assert worker.drain(timeout=10) == []
        assert job.refresh().status == "pending"
        clock.advance(hours=1)
        assert wait_for_result(job, timeout=10) == 5
        assert job.active_start == T0 + dt.timedelta(hours=1)  # times come from the clock


def test_a_begin_by_deadline_passes_without_sleeping(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    job = clock_db.queue().put(
        jobq.Job(kit_jobs.add, 1, 1),
        begin_after=T0 + dt.timedelta(minutes=10),
        begin_by=dt.timedelta(minutes=5),
    )
    with start_worker(clock_db, poll_interval=60) as worker:
        clock.advance(minutes=16)  # due, and already past begin_after + begin_by
        worker.drain(timeout=10)
    job.refresh()
    assert job.status == "completed"
    assert job.failure is not None and job.failure.type_name == "jobq.errors.TimeoutError"
    assert job.active_start is None


def test_a_test_database_clock_leaves_other_databases_alone(
    clock_db: jobq.Database, db_url: str
) -> None:
    with jobq.connect(db_url) as real:
        assert abs(real.clock.now() - dt.datetime.now(UTC)) < dt.timedelta(minutes=1)
    assert clock_db.clock.now() == T0
    assert clock_db.queue().put(jobq.Job(kit_jobs.add, 1, 1)).created == T0
