"""Liveness and recovery on both engines: dead dispatchers are swept, their jobs handed on
through their retry policies exactly once, restarts with the same UUID, false deaths,
graceful stops, interval changes and dispatcher events."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid as uuid_module

import jobfuncs
import pytest
from worker_helpers import app_rows, create_app_table, wait_until

import jobq
from jobq import _clock as jobq_clock
from jobq.monitor.service import Monitor
from jobq.worker.dispatcher import DispatcherEvent
from jobq.worker.recovery import hand_on

WAIT = 20.0


def fast_worker(db: jobq.Database, **options: object) -> jobq.Dispatcher:
    settings = {"poll_interval": 0.05, "ping_interval": 0.1, "death_interval": 1.0}
    return db.worker(**{**settings, **options})  # type: ignore[arg-type]


def dead_dispatcher(db: jobq.Database, minutes_ago: float = 10) -> str:
    """A dispatcher record that pinged long ago and never since: a crashed worker."""
    dead = str(uuid_module.uuid4())
    then = db.clock.now() - dt.timedelta(minutes=minutes_ago)
    activated, _ = db.store.activate_dispatcher(dead, "crashed-host", 1, 5.0, 30.0, then)
    assert activated
    return dead


def claim_for(db: jobq.Database, dispatcher: str, *jobs: jobq.Job) -> None:
    now = db.clock.now()
    claimed = db.store.claim("", dispatcher, "main", len(jobs), now)
    assert sorted(r.id for r in claimed) == sorted(j.id for j in jobs)


def start_for(db: jobq.Database, dispatcher: str, job: jobq.Job) -> None:
    record = db.store.get(job.id)  # type: ignore[arg-type]
    assert record is not None
    assert db.store.start(record.id, record.attempt, dispatcher, db.clock.now())


def test_a_live_dispatcher_sweeps_a_dead_one_and_hands_its_jobs_on(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    dead = dead_dispatcher(db)
    assigned = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    active = queue.put(jobq.Job(jobfuncs.add, 20, 22))
    callback = active.add_callback(jobfuncs.describe_result)
    claim_for(db, dead, assigned, active)
    start_for(db, dead, active)

    with fast_worker(db):
        assert assigned.wait(timeout=WAIT) == 3
        assert active.wait(timeout=WAIT) == 42
        assert callback.wait(timeout=WAIT) == "got 42"
    record = db.store.get_dispatcher(dead)
    assert record is not None and record.activated is None and record.deactivated is not None
    assert active.refresh().retry_data["interruptions"] == 1
    assert "interruptions" not in assigned.refresh().retry_data  # never started: put back
    assert active.attempt == 2 and assigned.attempt == 2


def test_put_back_jobs_keep_their_order_at_the_front(db: jobq.Database, queue: jobq.Queue) -> None:
    dead = dead_dispatcher(db)
    first, second = queue.put(jobq.Job(jobfuncs.add, 1, 1)), queue.put(jobq.Job(jobfuncs.add, 2, 2))
    claim_for(db, dead, first, second)
    later = queue.put(jobq.Job(jobfuncs.add, 3, 3))
    db.store.deactivate_dead(db.clock.now())
    assert hand_on(db.rows, db.store.orphans(), "test") == 2
    assert [j.id for j in queue] == [first.id, second.id, later.id]


def test_an_interrupted_job_that_its_policy_will_not_retry_fails_with_aborted_error(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    dead = dead_dispatcher(db)
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2), retry_policy=jobq.NeverRetry)
    callback = job.add_callback(jobfuncs.failure_type)
    claim_for(db, dead, job)
    start_for(db, dead, job)
    with fast_worker(db):
        with pytest.raises(jobq.JobFailed) as raised:
            job.wait(timeout=WAIT)
        assert raised.value.failure.check(jobq.AbortedError)
        assert callback.wait(timeout=WAIT) == "jobq.errors.AbortedError"


def test_the_default_policy_aborts_on_the_tenth_interruption(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    for n in range(1, 11):
        dead = dead_dispatcher(db)
        claim_for(db, dead, job)
        start_for(db, dead, job)
        db.store.deactivate_dead(db.clock.now())
        assert hand_on(db.rows, db.store.orphans(), "test") == 1
        job.refresh()
        if n < 10:
            assert job.status == "pending" and job.retry_data["interruptions"] == n
            assert queue[0].id == job.id  # retried at the front
    assert job.status == "completed" and job.failure is not None
    assert job.failure.check(jobq.AbortedError)


def test_a_policy_may_reschedule_an_interrupted_job(db: jobq.Database, queue: jobq.Queue) -> None:
    dead = dead_dispatcher(db)
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2), retry_policy=jobfuncs.InterruptLater)
    claim_for(db, dead, job)
    start_for(db, dead, job)
    before = db.clock.now()
    db.store.deactivate_dead(before)
    hand_on(db.rows, db.store.orphans(), "test")
    job.refresh()
    assert job.status == "pending"
    assert job.begin_after is not None and job.begin_after >= before + dt.timedelta(minutes=59)


def test_exactly_one_sweeper_acts_on_a_dead_dispatcher(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    dead = dead_dispatcher(db)
    jobs = queue.put_many([jobq.Job(jobfuncs.add, i, i) for i in range(6)])
    claim_for(db, dead, *jobs)
    for job in jobs[:3]:
        start_for(db, dead, job)
    now = db.clock.now()
    won: list[list[str]] = []
    moved: list[int] = []
    barrier = threading.Barrier(3)

    def sweep() -> None:
        barrier.wait()
        won.append(db.store.deactivate_dead(now))
        moved.append(hand_on(db.rows, db.store.orphans(), "race"))

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(w) for w in won) == [0, 0, 1]
    assert sum(moved) == 6
    for job in jobs:
        job.refresh()
        assert job.status == "pending"
        assert job.retry_data.get("interruptions", 0) == (1 if job in jobs[:3] else 0)


def test_a_restart_with_the_uuid_of_a_dead_record_recovers_its_jobs_at_once(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    crashed = dead_dispatcher(db)
    job = queue.put(jobq.Job(jobfuncs.add, 2, 3))
    claim_for(db, crashed, job)
    start_for(db, crashed, job)
    events: list[DispatcherEvent] = []
    # Recovery must not wait for any death interval.
    dispatcher = fast_worker(db, uuid=crashed, ping_interval=300.0, death_interval=600.0)
    dispatcher.add_listener(events.append)
    with dispatcher:
        assert job.wait(timeout=WAIT) == 5
    assert job.refresh().retry_data["interruptions"] == 1
    assert [e.kind for e in events] == ["activated", "deactivated"]


def test_a_second_process_with_a_live_uuid_is_refused_until_the_first_stops(
    db: jobq.Database, queue: jobq.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    first = fast_worker(db).start()
    second = fast_worker(db, uuid=first.uuid)
    with caplog.at_level(logging.ERROR, logger="jobq.events"):
        with pytest.raises(TimeoutError):
            second.start(timeout=0.5)
        assert "already activated" in caplog.text and "another process?" in caplog.text
        first.stop()
        wait_until(lambda: second.activated, timeout=WAIT, what="second activation")
    try:
        assert queue.put(jobq.Job(jobfuncs.add, 1, 1)).wait(timeout=WAIT) == 2
    finally:
        second.stop()


def test_a_dispatcher_presumed_dead_reactivates_and_never_completes_a_job_taken_from_it(
    db: jobq.Database, db_url: str, queue: jobq.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    create_app_table(db_url)
    token = uuid_module.uuid4().hex
    job = queue.put(jobq.Job(jobfuncs.gated_insert, token, "once"))
    events: list[DispatcherEvent] = []
    victim = fast_worker(db)
    victim.add_listener(events.append)
    with caplog.at_level(logging.ERROR, logger="jobq.events"), victim:
        wait_until(lambda: job.refresh().status == "active", timeout=WAIT, what="job active")
        # A sibling presumes the victim dead (as after a long pause) and hands its job on.
        db.store.deactivate_dispatcher(victim.uuid, db.clock.now())
        assert hand_on(db.rows, db.store.orphans(), "presumed dead") == 1
        jobfuncs.open_gate(token)  # both runs may now finish; only one may commit
        with fast_worker(db, uuid=str(uuid_module.uuid4())):
            assert job.wait(timeout=WAIT) == "once"
        wait_until(lambda: "reactivated" in [e.kind for e in events], timeout=WAIT, what="event")
        wait_until(lambda: "was reassigned" in caplog.text, timeout=WAIT, what="fenced write")
    assert app_rows(db_url) == ["once"]  # its writes committed once, with the one result
    assert "not activated prior to ping" in caplog.text
    assert job.refresh().attempt == 2


def test_graceful_stop_hands_running_jobs_on_after_the_grace_period(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    token = uuid_module.uuid4().hex
    job = queue.put(jobq.Job(jobfuncs.gated, token, "finished"))
    dispatcher = fast_worker(db).start()
    wait_until(lambda: job.refresh().status == "active", timeout=WAIT, what="job active")
    assert dispatcher.stop(grace=0.2) is False  # the job did not finish in time
    job.refresh()
    assert job.status == "pending" and job.retry_data["interruptions"] == 1
    record = db.store.get_dispatcher(dispatcher.uuid)
    assert record is not None and record.activated is None
    jobfuncs.open_gate(token)
    with fast_worker(db):
        assert job.wait(timeout=WAIT) == "finished"


def test_intervals_changed_in_the_database_are_used_from_the_next_ping(db: jobq.Database) -> None:
    with fast_worker(db) as dispatcher:
        db.set_dispatcher_intervals(dispatcher.uuid, ping_interval=0.2, death_interval=3.0)
        wait_until(lambda: dispatcher.death_interval == 3.0, timeout=WAIT, what="new interval")
        assert dispatcher.ping_interval == 0.2
    with pytest.raises(ValueError, match="ping_interval < death_interval"):
        db.set_dispatcher_intervals(dispatcher.uuid, ping_interval=5, death_interval=1)
    with pytest.raises(LookupError):
        db.set_dispatcher_intervals(str(uuid_module.uuid4()), ping_interval=1, death_interval=5)


def test_events_tell_registered_activated_and_deactivated(db: jobq.Database) -> None:
    events: list[DispatcherEvent] = []
    dispatcher = fast_worker(db)
    dispatcher.add_listener(events.append)
    dispatcher.start()
    dispatcher.stop()
    assert [e.kind for e in events] == ["registered", "activated", "deactivated"]
    assert all(e.uuid == dispatcher.uuid for e in events)


def test_a_deactivated_dispatcher_claims_nothing_until_reactivated(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    me = str(uuid_module.uuid4())
    now = db.clock.now()
    assert db.store.claim("", me, "main", 1, now, active_only=True) == []  # never registered
    db.store.activate_dispatcher(me, "host", 1, 5.0, 30.0, now)
    db.store.deactivate_dispatcher(me, now)
    assert db.store.claim("", me, "main", 1, now, active_only=True) == []  # presumed dead
    assert job.refresh().status == "pending"
    db.store.reactivate_dispatcher(me, now)
    assert [r.id for r in db.store.claim("", me, "main", 1, now, active_only=True)] == [job.id]


class _ClockAhead(jobq_clock.SystemClock):
    """The real clock of a machine whose time is five minutes ahead (no NTP)."""

    def now(self) -> dt.datetime:
        return super().now() + dt.timedelta(minutes=5)


def test_a_worker_whose_clock_is_ahead_judges_no_live_sibling_dead(
    db_url: str, db: jobq.Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Pings are written and judged in the database's time (PostgreSQL's own clock, shared by
    every machine), not in each worker's: a worker five minutes ahead, far past the death
    interval of 1 s, sees its sibling's pings as fresh, and a monitor on that machine too
    (issue 17.4)."""
    caplog.set_level(logging.WARNING, logger="jobq.events")
    with jobq.connect(db_url, clock=_ClockAhead()) as ahead:
        with fast_worker(db) as sibling, fast_worker(ahead) as judge:
            job = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
            assert job.wait(timeout=WAIT) == 3
            time.sleep(2.5)  # more than two death intervals of pings and sweeps
            views = {d.uuid: d for d in Monitor(ahead).dispatchers()}
            assert views[sibling.uuid].state == "alive" and views[judge.uuid].state == "alive"
            since_ping = views[sibling.uuid].since_ping
            assert since_ping is not None and since_ping < dt.timedelta(seconds=1)
        for uuid in (sibling.uuid, judge.uuid):
            record = db.store.get_dispatcher(uuid)
            assert record is not None and record.deactivated is not None  # stopped, not swept
    assert "is dead" not in caplog.text and "presumed it dead" not in caplog.text
    assert "interruptions" not in job.refresh().retry_data
