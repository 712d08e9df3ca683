"""`async def` jobs on both engines: they run on the dispatcher's event loop with the same
statuses, results, failures, retry policies, callbacks, setup/teardown, `jobq.local` context,
deadlines, logs, capacity (the agent's size), graceful stop and fencing as threaded jobs."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import asyncfuncs
import jobfuncs
import pytest
from jobfuncs import RescheduleInAnHour, RetryValueErrorsTwice, calls
from worker_helpers import app_rows, create_app_table, failing_store_result, wait_until

import jobq
from jobq.testing import inline
from jobq.worker.recovery import hand_on

WAIT = 20.0


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex


@pytest.fixture(autouse=True)
def _no_leftover_gates() -> Iterator[None]:
    yield
    for gate in jobfuncs.GATES.values():
        gate.set()


def _start(db: jobq.Database, **kwargs: Any) -> jobq.Dispatcher:
    kwargs.setdefault("poll_interval", 0.1)
    return db.worker(**kwargs).start()


def _messages(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


# -- statuses, results, failures, logs ----------------------------------------------------------
def test_async_job_result_statuses_logs_and_stats(
    queue: jobq.Queue, worker: jobq.Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="jobq.trace"):
        job = queue.put(jobq.Job(asyncfuncs.async_add, 40, 2))
        assert job.status == jobq.Status.PENDING
        assert job.wait(timeout=WAIT) == 42
        wait_until(lambda: worker.stats.job_info(job.id).completed, what="stats record")
    assert job.status == jobq.Status.COMPLETED and not job.failed
    assert job.attempt == 1 and job.dispatcher_uuid == worker.uuid
    assert job.active_start is not None and job.active_end is not None
    info = worker.stats.job_info(job.id)
    assert info.failed is False and info.result == "42"
    trace = _messages(caplog, "jobq.trace", logging.INFO)
    label = f"job {job.id} "
    assert [m for m in trace if label in m] == [
        f"{label}(asyncfuncs.async_add(40, 2)) succeeded with result: 42"
    ]
    detail = _messages(caplog, "jobq.trace", logging.DEBUG)  # the thread's lines, at DEBUG
    assert any(m.startswith("starting in thread") and label in m for m in detail), detail
    assert any(m.startswith("completed in thread") and label in m for m in detail), detail


def test_async_failure_is_stored_and_logged(
    queue: jobq.Queue, worker: jobq.Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="jobq.events"):
        job = queue.put(jobq.Job(asyncfuncs.async_fail, "async boom"))
        with pytest.raises(jobq.JobFailed) as info:
            job.wait(timeout=WAIT)
        wait_until(lambda: "async boom" in caplog.text, what="the failure log")
    assert info.value.failure.check(RuntimeError)
    assert info.value.failure.message == "async boom"
    assert job.status == jobq.Status.COMPLETED and job.failed
    assert any("failed with" in m for m in _messages(caplog, "jobq.events", logging.ERROR))


def test_missed_deadline_fails_an_async_job_without_running_it(
    queue: jobq.Queue, worker: jobq.Dispatcher, token: str
) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    job = queue.put(
        jobq.Job(asyncfuncs.async_step, token, "ran"),
        begin_after=past,
        begin_by=dt.timedelta(seconds=1),
    )
    with pytest.raises(jobq.JobFailed) as info:
        job.wait(timeout=WAIT)
    assert info.value.failure.check(jobq.TimeoutError)
    assert calls(token) == []


# -- retry policies -------------------------------------------------------------------------------
def test_default_policy_retries_async_conflicts_five_times(
    queue: jobq.Queue, worker: jobq.Dispatcher, token: str
) -> None:
    always = queue.put(jobq.Job(asyncfuncs.async_conflict_until, token, 1000, "never"))
    with pytest.raises(jobq.JobFailed) as info:
        always.wait(timeout=WAIT)
    assert info.value.failure.check(jobq.ConflictError)
    assert len(calls(token)) == 5 and always.retry_data["conflict"] == 5
    other = uuid.uuid4().hex
    twice = queue.put(jobq.Job(asyncfuncs.async_conflict_until, other, 2, "third"))
    assert twice.wait(timeout=WAIT) == "third"
    assert len(calls(other)) == 3 and twice.attempt == 1


def test_custom_policy_retries_and_reschedules_async_jobs(
    db: jobq.Database, queue: jobq.Queue, token: str
) -> None:
    retried = queue.put(
        jobq.Job(asyncfuncs.async_value_error_until, token, 2, "third time"),
        retry_policy=RetryValueErrorsTwice,
    )
    other = uuid.uuid4().hex
    before = db.clock.now()
    rescheduled = queue.put(
        jobq.Job(asyncfuncs.async_value_error_until, other, 1, "x"),
        retry_policy=RescheduleInAnHour,
    )
    with _start(db):
        assert retried.wait(timeout=WAIT) == "third time"
        wait_until(lambda: rescheduled.refresh().retry_data.get("rescheduled"), what="resched")
    assert len(calls(token)) == 3 and retried.retry_data["value_error"] == 2
    assert rescheduled.status == jobq.Status.PENDING and not rescheduled.failed
    assert rescheduled.begin_after is not None
    assert rescheduled.begin_after >= before + dt.timedelta(hours=1)
    assert len(calls(other)) == 1


def test_commit_conflict_reruns_the_async_callable(
    db: jobq.Database, queue: jobq.Queue, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised = failing_store_result(monkeypatch, db, jobq.ConflictError("simulated conflict"), 1)
    job = queue.put(jobq.Job(asyncfuncs.async_step, token, "call", "ok"))
    with _start(db):
        assert job.wait(timeout=WAIT) == "ok"
    assert raised == [job.id]
    assert calls(token) == ["call", "call"]
    assert job.retry_data["conflict"] == 1


# -- callbacks, returned jobs, setup/teardown, jobq.local -----------------------------------------
def test_callbacks_of_and_by_async_jobs(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    parent = queue.put(jobq.Job(asyncfuncs.async_add, 1, 2))
    sync_callback = parent.add_callback(jobfuncs.describe_result)
    async_callback = parent.add_callback(asyncfuncs.async_describe)
    chained = async_callback.add_callback(asyncfuncs.async_describe)
    sync_parent = queue.put(jobq.Job(jobfuncs.add, 20, 22))
    async_of_sync = sync_parent.add_callback(asyncfuncs.async_describe)
    failing = queue.put(jobq.Job(asyncfuncs.async_fail, "for the callback"))
    failure_seen = failing.add_callback(asyncfuncs.async_describe)
    assert parent.wait(timeout=WAIT) == 3
    assert sync_callback.wait(timeout=WAIT) == "got 3"
    assert async_callback.wait(timeout=WAIT) == "async got 3"
    assert chained.wait(timeout=WAIT) == "async got 'async got 3'"
    assert async_of_sync.wait(timeout=WAIT) == "async got 42"
    assert "RuntimeError" in failure_seen.wait(timeout=WAIT)


def test_async_job_returning_a_job_completes_with_its_result(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    job = queue.put(jobq.Job(asyncfuncs.async_double_later, 21))
    assert job.wait(timeout=WAIT) == 42


def test_jobq_local_in_the_coroutine_and_its_tasks(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    job = queue.put(jobq.Job(asyncfuncs.async_local_info))
    info = job.wait(timeout=WAIT)
    assert info["id"] == job.id and info["child_id"] == job.id
    assert info["child_probe"] == "set in the job"  # ContextVars propagate into tasks
    assert info["agent"] == "main" and info["dispatcher"] == worker.uuid
    assert info["thread"].endswith("-loop")  # it ran on the dispatcher's event loop
    with pytest.raises(ValueError, match="not initialized"):
        jobq.local.job()


def test_async_setup_and_teardown(db: jobq.Database, queue: jobq.Queue, token: str) -> None:
    ok = queue.put(asyncfuncs.AsyncRecordingJob(asyncfuncs.async_step, token, "call", 7))
    other = uuid.uuid4().hex
    sync_call = queue.put(asyncfuncs.AsyncRecordingJob(jobfuncs.logged_step, other, "call", 8))
    with _start(db) as dispatcher:
        assert ok.wait(timeout=WAIT) == 7
        assert sync_call.wait(timeout=WAIT) == 8
        dispatcher.stop(grace=10)  # teardown runs after the commit: let it finish
    assert calls(token) == ["setup", "call", "teardown:info"]
    assert calls(other) == ["setup", "call", "teardown:info"]


def test_async_job_writes_commit_with_its_result(
    db: jobq.Database, db_url: str, queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    create_app_table(db_url)
    job = queue.put(jobq.Job(asyncfuncs.async_insert_row, "async row"))
    assert job.wait(timeout=WAIT) == "async row"
    assert app_rows(db_url) == ["async row"]


def test_inline_mode_runs_async_jobs(db: jobq.Database, queue: jobq.Queue) -> None:
    with inline(db):
        job = queue.put(jobq.Job(asyncfuncs.async_add, 2, 3))
        callback = job.add_callback(asyncfuncs.async_describe)
        assert job.status == jobq.Status.COMPLETED and job.result == 5
    assert callback.refresh().result == "async got 5"


# -- capacity -------------------------------------------------------------------------------------
def test_an_agent_of_50_runs_50_async_jobs_at_once_with_few_threads(
    db: jobq.Database, queue: jobq.Queue, token: str
) -> None:
    before = threading.active_count()
    jobs = queue.put_many([jobq.Job(asyncfuncs.async_gated, token, i) for i in range(50)])
    with _start(db, agents=[jobq.AgentSpec("main", 50)]) as dispatcher:
        wait_until(lambda: jobfuncs.RUNNING.get(token) == 50, what="50 jobs running at once")
        # Dispatcher, waiter, event loop, the loop's step threads: far fewer than 50.
        assert threading.active_count() - before <= 16, threading.enumerate()
        assert dispatcher._pools[("", "main")].threads == 0  # no agent thread at all
        assert asyncfuncs.THREADS_SEEN[token] == {f"jobq-aio-{dispatcher.uuid[:8]}-loop"}
        jobfuncs.open_gate(token)
        assert [job.wait(timeout=WAIT) for job in jobs] == list(range(50))
    assert jobfuncs.MAX_RUNNING[token] == 50


def test_the_agent_size_bounds_async_jobs_too(
    db: jobq.Database, queue: jobq.Queue, token: str
) -> None:
    async_jobs = queue.put_many([jobq.Job(asyncfuncs.async_gated, token, i) for i in range(6)])
    with _start(db, agents=[jobq.AgentSpec("main", 4)]) as dispatcher:
        wait_until(lambda: jobfuncs.RUNNING.get(token) == 4, what="4 jobs running")
        target = dispatcher.polls + 5
        wait_until(lambda: dispatcher.polls >= target, what="5 more polls")
        assert jobfuncs.RUNNING[token] == 4  # the other two wait for a slot
        assert sum(1 for j in async_jobs if j.refresh().status == jobq.Status.PENDING) == 2
        jobfuncs.open_gate(token)
        assert [job.wait(timeout=WAIT) for job in async_jobs] == list(range(6))
    assert jobfuncs.MAX_RUNNING[token] == 4


# -- graceful stop and fencing --------------------------------------------------------------------
def test_graceful_stop_cancels_and_hands_on_async_jobs_after_the_grace_period(
    db: jobq.Database, queue: jobq.Queue, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    job = queue.put(asyncfuncs.AsyncRecordingJob(asyncfuncs.async_wait_forever, token))
    dispatcher = _start(db)
    wait_until(lambda: "started" in calls(token), what="the job to start")
    with caplog.at_level(logging.WARNING, logger="jobq.events"):
        assert dispatcher.stop(grace=0.2) is False  # it did not finish in time
    assert calls(token) == ["setup", "started", "cancelled", "teardown:info"]
    job.refresh()
    assert job.status == jobq.Status.PENDING and job.retry_data["interruptions"] == 1
    assert "was cancelled" in caplog.text
    record = db.store.get_dispatcher(dispatcher.uuid)
    assert record is not None and record.activated is None
    assert not dispatcher._aio.started  # the event loop is closed


def test_an_async_job_whose_claim_was_lost_writes_nothing(
    db: jobq.Database, db_url: str, queue: jobq.Queue, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    create_app_table(db_url)
    job = queue.put(jobq.Job(asyncfuncs.async_gated_insert, token, "lost"))
    # Size 1: the job holds the only slot, so this dispatcher cannot claim it again.
    agents = [jobq.AgentSpec("main", 1)]
    with caplog.at_level(logging.ERROR, logger="jobq.events"), _start(db, agents=agents) as d:
        dispatcher = d
        wait_until(lambda: job.refresh().status == "active", what="job active")
        # A sibling presumes this dispatcher dead and hands the job on; it is then pulled.
        db.store.deactivate_dispatcher(dispatcher.uuid, db.clock.now())
        assert hand_on(db.rows, db.store.orphans(), "presumed dead") == 1
        queue.pull()
        jobfuncs.open_gate(token)  # the coroutine goes on and tries to store its result
        wait_until(lambda: "was reassigned" in caplog.text, what="the fenced write")
        wait_until(lambda: not dispatcher._held, what="the run to end")
    job.refresh()
    assert job.status == jobq.Status.NEW and job.attempt == 1 and job.result is None
    assert app_rows(db_url) == []  # its own write was rolled back with the fenced result
    assert dispatcher.stats.totals()["reassigned"] == 1
