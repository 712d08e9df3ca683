"""The worker layer on both engines, with an in-process dispatcher: the runner's
choreography (catalogue §2.3), retry policies at work (§5, items 37-39), agents (§4.8,
items 43 and 45), signed payloads, encoding refusals, and transactions (put(conn=...),
jobq.local.connection())."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import jobfuncs
import pytest
from jobfuncs import (
    ConflictingSetupJob,
    FailingSetupJob,
    RecordingJob,
    RescheduleInAnHour,
    RescheduleNow,
    RetryValueErrorsTwice,
    add,
    calls,
    conflict_until,
    double,
    fail,
    gated,
    identity,
    insert_row,
    insert_row_then_fail,
    logged_step,
    value_error_until,
)
from worker_helpers import (
    app_rows,
    create_app_table,
    execute,
    failing_store_result,
    raw_connect,
    sqlalchemy_url,
    wait_until,
)

import jobq
import jobq.worker.runner

WAIT = 20.0


@pytest.fixture
def token() -> str:
    return uuid.uuid4().hex


def _start(db: jobq.Database, **kwargs: Any) -> jobq.Dispatcher:
    kwargs.setdefault("poll_interval", 0.1)
    return db.worker(**kwargs).start()


def _polls_pass(dispatcher: jobq.Dispatcher, count: int = 3) -> None:
    """Let the dispatcher poll `count` more times (so it had every chance to claim)."""
    target = dispatcher.polls + count
    wait_until(lambda: dispatcher.polls >= target, what=f"{count} polls")


def _events(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


# -- the runner and the default policies (items 37, 38) -----------------------------------------
def test_job_result(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    job = queue.put(jobq.Job(add, 40, 2))
    assert job.wait(timeout=WAIT) == 42
    assert job.status == jobq.Status.COMPLETED
    assert not job.failed
    assert job.attempt == 1


def test_conflict_every_time_is_called_five_times(
    queue: jobq.Queue, worker: jobq.Dispatcher, token: str
) -> None:
    job = queue.put(jobq.Job(conflict_until, token, 1000, 42))
    with pytest.raises(jobq.JobFailed) as info:
        job.wait(timeout=WAIT)
    assert info.value.failure.check(jobq.ConflictError)
    assert len(calls(token)) == 5
    assert job.retry_data["conflict"] == 5


def test_conflict_then_success_on_third_call(
    queue: jobq.Queue, worker: jobq.Dispatcher, token: str
) -> None:
    job = queue.put(jobq.Job(conflict_until, token, 2, 42))
    assert job.wait(timeout=WAIT) == 42
    assert len(calls(token)) == 3
    assert job.retry_data["conflict"] == 2


def test_other_errors_fail_at_once(queue: jobq.Queue, worker: jobq.Dispatcher, token: str) -> None:
    job = queue.put(jobq.Job(value_error_until, token, 1, "never"))
    with pytest.raises(jobq.JobFailed) as info:
        job.wait(timeout=WAIT)
    assert info.value.failure.check(ValueError)
    assert "simulated value error 1" in info.value.failure.message
    assert len(calls(token)) == 1


def test_never_retry_does_not_retry_conflicts(
    queue: jobq.Queue, worker: jobq.Dispatcher, token: str
) -> None:
    job = queue.put(jobq.Job(conflict_until, token, 1, 42), retry_policy=jobq.NeverRetry)
    with pytest.raises(jobq.JobFailed):
        job.wait(timeout=WAIT)
    assert len(calls(token)) == 1
    assert job.retry_policy == "jobq.model.retry:NeverRetry"


def test_custom_policy_from_put(queue: jobq.Queue, worker: jobq.Dispatcher, token: str) -> None:
    job = queue.put(
        jobq.Job(value_error_until, token, 2, "third time"), retry_policy=RetryValueErrorsTwice
    )
    assert job.wait(timeout=WAIT) == "third time"
    assert len(calls(token)) == 3
    assert job.retry_data["value_error"] == 2


def test_commit_conflict_reruns_the_callable(
    db: jobq.Database,
    queue: jobq.Queue,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
) -> None:
    raised = failing_store_result(monkeypatch, db, jobq.ConflictError("commit conflict"), 2)
    job = queue.put(jobq.Job(logged_step, token, "call", 42))
    with _start(db):
        assert job.wait(timeout=WAIT) == 42
    assert len(raised) == 2
    assert calls(token) == ["call"] * 3  # rerun from scratch after each failed commit
    assert job.retry_data["conflict"] == 2


def _count_group_commits(monkeypatch: pytest.MonkeyPatch, db: jobq.Database) -> list[int]:
    """The ids of the outcomes handed to the group commit (`store_result_later`), so that a
    test can check it went the default path (a plain job's, without writes of its own)."""
    handed: list[int] = []
    original = db.store.store_result_later

    def store_result_later(job_id: int, *args: Any) -> None:
        handed.append(job_id)
        original(job_id, *args)

    monkeypatch.setattr(db.store, "store_result_later", store_result_later)
    return handed


@pytest.mark.parametrize(("failures", "expected_calls"), [(4, 5), (6, 5), (50, 5)])
def test_commit_conflicts_are_capped_on_the_group_commit_path(
    db: jobq.Database,
    queue: jobq.Queue,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    failures: int,
    expected_calls: int,
) -> None:
    # Issue 16.3 (catalogue 5.2): five attempts in all, also when each failed group commit
    # puts the job back in its queue (a new run, with a new policy object, each time).
    # Past the cap, storing the ConflictError failure conflicts too until the injected
    # failures run out: retried without the backoff (1, 2, 3 ... s) meant for a real server.
    monkeypatch.setattr(jobq.worker.runner.Runner, "_sleep", lambda self, seconds: None)
    raised = failing_store_result(monkeypatch, db, jobq.ConflictError("commit conflict"), failures)
    handed = _count_group_commits(monkeypatch, db)
    job = queue.put(jobq.Job(logged_step, token, "call", 42))
    with _start(db):
        if failures < 5:
            assert job.wait(timeout=WAIT) == 42
        else:
            with pytest.raises(jobq.JobFailed) as info:
                job.wait(timeout=WAIT)
            assert info.value.failure.check(jobq.ConflictError)
    assert calls(token) == ["call"] * expected_calls
    assert handed == [job.id] * expected_calls  # every outcome went to the group commit
    assert job.retry_data["conflict"] == min(failures, 5)
    assert len(raised) == failures


def test_disconnect_backoff_grows_on_the_group_commit_path(
    db: jobq.Database,
    queue: jobq.Queue,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(jobq.worker.runner.Runner, "_sleep", lambda self, s: sleeps.append(s))
    failing_store_result(monkeypatch, db, jobq.StoreUnavailable("connection lost"), 3)
    handed = _count_group_commits(monkeypatch, db)
    job = queue.put(jobq.Job(logged_step, token, "call", 42))
    with _start(db):
        assert job.wait(timeout=WAIT) == 42
    assert sleeps == [5.0, 10.0, 15.0]
    assert calls(token) == ["call"] * 4
    assert handed == [job.id] * 4
    assert job.retry_data["disconnect"] == 3


def test_a_failed_group_commit_backs_off_without_holding_the_group_commit(
    db: jobq.Database,
    queue: jobq.Queue,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
) -> None:
    # The policy's backoff (5 s up to 60 s for a lost connection) must not run on the thread
    # that tells jobs how their group commit ended: it would hold every other job's outcome.
    backing_off, release, delivered = threading.Event(), threading.Event(), threading.Event()

    def sleep(self: Any, seconds: float) -> None:
        backing_off.set()
        release.wait(WAIT)

    monkeypatch.setattr(jobq.worker.runner.Runner, "_sleep", sleep)
    original = db.store.store_result_later
    failed: list[int] = []

    def store_result_later(job_id: int, *args: Any) -> None:
        if failed:
            original(job_id, *args)
            return
        failed.append(job_id)
        then = args[-1]

        def group_commit_thread() -> None:
            then(jobq.StoreUnavailable("connection lost"))
            delivered.set()

        threading.Thread(target=group_commit_thread, name="fake-group-commit").start()

    monkeypatch.setattr(db.store, "store_result_later", store_result_later)
    job = queue.put(jobq.Job(logged_step, token, "call", 42))
    try:
        with _start(db):
            wait_until(backing_off.is_set, what="the policy's backoff")
            wait_until(delivered.is_set, what="the group commit's thread to be free")
            assert job.refresh().status == jobq.Status.ACTIVE  # still held, backing off
            release.set()
            assert job.wait(timeout=WAIT) == 42
    finally:
        release.set()
    assert calls(token) == ["call", "call"]
    assert job.retry_data["disconnect"] == 1


def test_commit_failure_after_success_becomes_the_result(
    db: jobq.Database,
    queue: jobq.Queue,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    token: str,
) -> None:
    raised = failing_store_result(monkeypatch, db, ValueError("commit refused"), 1)
    job = queue.put(jobq.Job(logged_step, token, "call", 42))
    with (
        caplog.at_level(logging.INFO, logger="jobq.events"),
        _start(db),
        pytest.raises(jobq.JobFailed) as info,
    ):
        job.wait(timeout=WAIT)
    assert raised == [job.id]
    assert info.value.failure.check(ValueError)
    assert info.value.failure.message == "commit refused"
    assert calls(token) == ["call"]
    infos = _events(caplog, "jobq.events", logging.INFO)
    assert any("Commit failed for" in m and "job succeeded with result: 42" in m for m in infos), (
        infos
    )


# -- rescheduling (item 39) ---------------------------------------------------------------------
def test_policy_timedelta_reschedules(db: jobq.Database, queue: jobq.Queue, token: str) -> None:
    before = db.clock.now()
    job = queue.put(jobq.Job(value_error_until, token, 1, "x"), retry_policy=RescheduleInAnHour)
    with _start(db):
        wait_until(lambda: job.refresh().retry_data.get("rescheduled"), what="reschedule")
    after = db.clock.now()
    assert job.status == jobq.Status.PENDING
    assert job.attempt == 1
    assert not job.failed
    assert job.begin_after is not None
    assert before + dt.timedelta(hours=1) <= job.begin_after <= after + dt.timedelta(hours=1)
    assert job.dispatcher_uuid is None or job.status == jobq.Status.PENDING
    assert [j.id for j in queue] == [job.id]
    assert len(calls(token)) == 1
    assert job.retry_data["rescheduled"] == 1


def test_policy_zero_timedelta_puts_the_job_at_the_front(
    db: jobq.Database, queue: jobq.Queue, token: str
) -> None:
    first = queue.put(
        jobq.Job(jobfuncs.fail_first_then, token, "first"), retry_policy=RescheduleNow
    )
    others = [queue.put(jobq.Job(logged_step, token, f"other{i}", i)) for i in range(3)]
    with _start(db, agents=[jobq.AgentSpec("main", 1)]):
        assert first.wait(timeout=WAIT) == "first"
        assert [o.wait(timeout=WAIT) for o in others] == [0, 1, 2]
    assert calls(token) == ["fail_first", "fail_first", "other0", "other1", "other2"]
    assert first.attempt == 2
    assert first.retry_data["rescheduled"] == 1


# -- callbacks ----------------------------------------------------------------------------------
def test_callbacks_default_to_retry_forever(
    queue: jobq.Queue, worker: jobq.Dispatcher, token: str
) -> None:
    # Seven conflicts: more than the default jobs' five attempts allow.
    job = queue.put(jobq.Job(add, 1, 2))
    callback = job.add_callback(jobq.Job(conflict_until, token, 7))
    assert job.wait(timeout=WAIT) == 3
    assert callback.wait(timeout=WAIT) == 3  # the parent's result, passed last
    assert len(calls(token)) == 8


def test_same_callable_as_a_job_gives_up(
    queue: jobq.Queue, worker: jobq.Dispatcher, token: str
) -> None:
    job = queue.put(jobq.Job(conflict_until, token, 7, 3))
    with pytest.raises(jobq.JobFailed):
        job.wait(timeout=WAIT)
    assert len(calls(token)) == 5


# -- setup / teardown (§2.3) ----------------------------------------------------------------------
def test_setup_call_teardown_after_commit(db: jobq.Database, queue: jobq.Queue, token: str) -> None:
    job = queue.put(RecordingJob(logged_step, token, "call", 7))
    with _start(db) as dispatcher:
        assert job.wait(timeout=WAIT) == 7
        dispatcher.stop(grace=10)  # teardown runs after the commit: let it finish
    assert calls(token) == ["setup", "call", "teardown:info:completed"]
    assert type(db.get_job(job.id)) is RecordingJob


def test_teardown_runs_after_each_retried_call(
    db: jobq.Database, queue: jobq.Queue, token: str
) -> None:
    job = queue.put(RecordingJob(conflict_until, token, 1, "ok"))
    with _start(db) as dispatcher:
        assert job.wait(timeout=WAIT) == "ok"
        dispatcher.stop(grace=10)
    assert calls(token) == [
        "setup",
        "call",
        "teardown:info:active",  # the failed call is rolled back; the job is still running
        "setup",
        "call",
        "teardown:info:completed",
    ]


def test_failing_setup_is_a_job_error_and_teardown_still_runs(
    db: jobq.Database, queue: jobq.Queue, token: str
) -> None:
    job = queue.put(FailingSetupJob(logged_step, token, "call"))
    with _start(db) as dispatcher:
        with pytest.raises(jobq.JobFailed) as info:
            job.wait(timeout=WAIT)
        dispatcher.stop(grace=10)
    assert info.value.failure.check(ValueError)
    assert info.value.failure.message == "setup failed"
    assert calls(token) == ["setup", "teardown:None:active"]  # the callable was never called


def test_conflicting_setup_goes_through_the_policy(
    db: jobq.Database, queue: jobq.Queue, token: str
) -> None:
    job = queue.put(ConflictingSetupJob(logged_step, token, "call"))
    with _start(db) as dispatcher:
        with pytest.raises(jobq.JobFailed) as info:
            job.wait(timeout=WAIT)
        dispatcher.stop(grace=10)
    assert info.value.failure.check(jobq.ConflictError)
    assert calls(token).count("setup") == 5
    assert "call" not in calls(token)


def test_failing_teardown_is_logged_and_the_result_kept(
    db: jobq.Database, queue: jobq.Queue, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    job = queue.put(jobfuncs.FailingTeardownJob(logged_step, token, "call", 5))
    with caplog.at_level(logging.INFO, logger="jobq.events"), _start(db) as dispatcher:
        assert job.wait(timeout=WAIT) == 5
        after = queue.put(jobq.Job(add, 1, 1))  # the worker goes on
        assert after.wait(timeout=WAIT) == 2
        dispatcher.stop(grace=10)
    assert calls(token) == ["setup", "call", "teardown"]
    critical = _events(caplog, "jobq.events", logging.CRITICAL)
    assert any("teardown failed" in m and "teardown broke" in m for m in critical), critical


def test_returned_failure_is_a_failed_result(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    job = queue.put(jobq.Job(jobfuncs.returns_failure))
    with pytest.raises(jobq.JobFailed) as info:
        job.wait(timeout=WAIT)
    assert info.value.failure.check(ValueError)
    assert job.failed
    assert job.result == info.value.failure


def test_callback_reschedule_means_retry_now(
    db: jobq.Database, queue: jobq.Queue, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    parent = queue.put(jobq.Job(add, 2, 3))
    callback = parent.add_callback(jobq.Job(conflict_until, token, 1), retry_policy=RescheduleNow)
    with caplog.at_level(logging.INFO, logger="jobq.events"), _start(db):
        assert callback.wait(timeout=WAIT) == 5
    assert calls(token) == ["call", "call"]
    assert callback.attempt == 1  # retried in the same claim, not put back
    errors = _events(caplog, "jobq.events", logging.ERROR)
    assert any("cannot reschedule a callback" in m for m in errors), errors


def test_missed_deadline_fails_with_timeout(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    job = queue.put(jobq.Job(add, 1, 1), begin_after=past, begin_by=dt.timedelta(seconds=1))
    with pytest.raises(jobq.JobFailed) as info:
        job.wait(timeout=WAIT)
    assert info.value.failure.check(jobq.TimeoutError)


# -- logging (§8.4) -----------------------------------------------------------------------------
def test_failure_and_success_logging_levels(
    db: jobq.Database, queue: jobq.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="jobq"):
        failing = queue.put(jobq.Job(fail, "job boom"))
        warned = queue.put(jobq.Job(fail, "warned boom"), failure_log_level=logging.WARNING)
        parent = queue.put(jobq.Job(add, 1, 1))
        callback = parent.add_callback(jobq.Job(fail, "callback boom"))
        succeeding = queue.put(jobq.Job(add, 20, 22))
        with _start(db, traceback_locals=True) as dispatcher:
            for job in (failing, warned, callback):
                with pytest.raises(jobq.JobFailed):
                    job.wait(timeout=WAIT)
            assert succeeding.wait(timeout=WAIT) == 42
            dispatcher.stop(grace=10)  # the outcome is logged after its commit

    def level_of(text: str) -> set[int]:
        return {
            r.levelno for r in caplog.records if r.name == "jobq.events" and text in r.getMessage()
        }

    assert level_of("job boom") == {logging.ERROR}
    assert level_of("warned boom") == {logging.WARNING}
    assert level_of("callback boom") == {logging.CRITICAL}
    failed_record = next(
        r for r in caplog.records if r.name == "jobq.events" and "job boom" in r.getMessage()
    )
    assert "Traceback" in failed_record.getMessage()
    assert "message = 'job boom'" in failed_record.getMessage()  # frame locals: asked for
    assert getattr(failed_record, "job_id", None) == failing.id
    successes = _events(caplog, "jobq.trace", logging.INFO)
    assert any(f"job {succeeding.id} " in m and "succeeded with result: 42" in m for m in successes)


# -- agents (items 43, 45) -------------------------------------------------------------------------
def test_agent_size_limits_concurrency(db: jobq.Database, queue: jobq.Queue, token: str) -> None:
    jobfuncs.GATES[token] = threading.Event()
    jobs = [queue.put(jobq.Job(gated, token, i)) for i in range(5)]
    try:
        with _start(db, agents=[jobq.AgentSpec("main", 2)]) as dispatcher:
            wait_until(lambda: jobfuncs.RUNNING.get(token) == 2, what="two running jobs")
            _polls_pass(dispatcher)
            statuses = [j.refresh().status for j in jobs]
            assert sorted(statuses).count(jobq.Status.ACTIVE) == 2
            assert statuses.count(jobq.Status.PENDING) == 3
            assert len(queue) == 3
            assert jobfuncs.RUNNING[token] == 2
            jobfuncs.GATES[token].set()
            assert [j.wait(timeout=WAIT) for j in jobs] == list(range(5))
    finally:
        jobfuncs.GATES[token].set()
    assert jobfuncs.MAX_RUNNING[token] == 2
    assert {j.agent_name for j in jobs} == {"main"}


def test_agent_of_size_zero_claims_nothing(db: jobq.Database, queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(add, 1, 1))
    with _start(db, agents=[jobq.AgentSpec("idle", 0)]) as dispatcher:
        _polls_pass(dispatcher)
        assert job.refresh().status == jobq.Status.PENDING


def test_filter_agent_claims_only_matching_jobs(db: jobq.Database, queue: jobq.Queue) -> None:
    doubles = [queue.put(jobq.Job(double, i)) for i in range(3)]
    adds = [queue.put(jobq.Job(add, i, i)) for i in range(3)]
    with _start(db, agents=[jobq.AgentSpec("doubler", 2, "jobfuncs:only_double")]) as dispatcher:
        assert [j.wait(timeout=WAIT) for j in doubles] == [0, 2, 4]
        _polls_pass(dispatcher)
        assert [j.refresh().status for j in adds] == [jobq.Status.PENDING] * 3
    assert [j.id for j in queue] == [j.id for j in adds]
    assert {j.agent_name for j in doubles} == {"doubler"}
    # A catch-all worker takes the rest.
    with _start(db):
        assert [j.wait(timeout=WAIT) for j in adds] == [0, 2, 4]


def test_two_agents_with_filters_split_the_work(db: jobq.Database, queue: jobq.Queue) -> None:
    agents = [
        jobq.AgentSpec("doubler", 1, "jobfuncs:only_double"),
        jobq.AgentSpec("others", 2, "jobfuncs:not_double"),
    ]
    doubles = [queue.put(jobq.Job(double, i)) for i in range(4)]
    adds = [queue.put(jobq.Job(add, i, 1)) for i in range(4)]
    with _start(db, agents=agents):
        assert [j.wait(timeout=WAIT) for j in doubles] == [0, 2, 4, 6]
        assert [j.wait(timeout=WAIT) for j in adds] == [1, 2, 3, 4]
    assert {j.agent_name for j in doubles} == {"doubler"}
    assert {j.agent_name for j in adds} == {"others"}


def test_dispatcher_only_serves_its_queues(db: jobq.Database) -> None:
    a, b, c = db.queue("a"), db.queue("b"), db.queue("c")
    ja = a.put(jobq.Job(add, 1, 2))
    jb = b.put(jobq.Job(add, 3, 4))
    jc = c.put(jobq.Job(add, 5, 6))
    agents = [jobq.AgentSpec("x", 1), jobq.AgentSpec("y", 1)]
    with _start(db, queues=["a", "b"], agents=agents) as dispatcher:
        assert ja.wait(timeout=WAIT) == 3
        assert jb.wait(timeout=WAIT) == 7
        _polls_pass(dispatcher)
        assert jc.refresh().status == jobq.Status.PENDING
        assert ja.queue_name == "a" and jb.queue_name == "b"
        assert ja.agent_name in {"x", "y"} and jb.agent_name in {"x", "y"}
        assert ja.dispatcher_uuid == dispatcher.uuid
    assert len(c) == 1


def test_dispatcher_without_agents_does_nothing(db: jobq.Database, queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(add, 1, 2))
    with _start(db, agents=[]) as dispatcher:
        _polls_pass(dispatcher)
        assert job.refresh().status == jobq.Status.PENDING
    assert len(queue) == 1


def test_started_dispatcher_as_context_manager_runs_once(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    with db.worker(poll_interval=0.1).start() as dispatcher:  # __enter__ must not start again
        assert queue.put(jobq.Job(add, 1, 2)).wait(timeout=WAIT) == 3
        with pytest.raises(RuntimeError, match="already running"):
            dispatcher.start()
        record = db.store.get_dispatcher(dispatcher.uuid)
        assert record is not None and record.activated is not None
    record = db.store.get_dispatcher(dispatcher.uuid)
    assert record is not None and record.activated is None


# -- signed payloads ----------------------------------------------------------------------------
def test_tampered_payload_is_refused_and_the_worker_goes_on(db_url: str) -> None:
    with jobq.connect(db_url, secret="s3cret") as db:
        queue = db.queue()
        tampered = queue.put(jobq.Job(identity, "precious"))
        good = queue.put(jobq.Job(add, 2, 3))
        (payload,) = execute(db_url, "SELECT call FROM jobq_jobs WHERE id = ?", (tampered.id,))[0]
        forged = bytearray(bytes(payload))
        forged[-3] ^= 0x01
        execute(db_url, "UPDATE jobq_jobs SET call = ? WHERE id = ?", (bytes(forged), tampered.id))
        with _start(db):
            with pytest.raises(jobq.JobFailed) as info:
                tampered.wait(timeout=WAIT)
            assert good.wait(timeout=WAIT) == 5
            after = queue.put(jobq.Job(add, 4, 5))
            assert after.wait(timeout=WAIT) == 9
        assert info.value.failure.check(jobq.SignatureError)


def test_worker_without_the_secret_cannot_read_a_signed_job_as_plain(db_url: str) -> None:
    with jobq.connect(db_url) as plain, jobq.connect(db_url, secret="s3cret") as signed:
        unsigned = plain.queue().put(jobq.Job(add, 1, 1))
        with _start(signed), pytest.raises(jobq.JobFailed) as info:
            unsigned.wait(timeout=WAIT)
        assert info.value.failure.check(jobq.SignatureError)


# -- encoding refusals -----------------------------------------------------------------------------
def test_unstorable_calls_are_refused_at_put(queue: jobq.Queue) -> None:
    def local_function() -> None:
        pass

    with pytest.raises(jobq.EncodingError, match="lambda"):
        queue.put(lambda: 1)
    with pytest.raises(jobq.EncodingError, match="local_function"):
        queue.put(jobq.Job(local_function))
    with pytest.raises(jobq.EncodingError, match="argument 0"):
        queue.put(jobq.Job(identity, threading.Lock()))
    with pytest.raises(TypeError):
        queue.put_many([jobq.Job(add, 1, 2), jobq.Job(identity, lambda: 0)])
    assert len(queue) == 0
    assert list(queue) == []


def test_local_job_subclass_is_refused(queue: jobq.Queue) -> None:
    class LocalJob(jobq.Job):
        pass

    with pytest.raises(jobq.EncodingError, match="module level"):
        queue.put(LocalJob(add, 1, 2))
    assert len(queue) == 0


def test_unpicklable_result_fails_the_job(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    job = queue.put(jobq.Job(jobfuncs.make_lock))
    with pytest.raises(jobq.JobFailed) as info:
        job.wait(timeout=WAIT)
    assert info.value.failure.check(jobq.EncodingError)


# -- transactions: put(conn=...) -------------------------------------------------------------------
def _job_exists(db: jobq.Database, job_id: int) -> bool:
    try:
        db.get_job(job_id)
    except jobq.JobNotFound:
        return False
    return True


def test_put_joins_a_raw_connection(db: jobq.Database, db_url: str) -> None:
    queue = db.queue()
    conn = raw_connect(db_url)
    try:
        committed = queue.put(jobq.Job(add, 1, 2), conn=conn)
        assert not _job_exists(db, committed.id)  # not visible before the commit
        conn.commit()
        assert db.get_job(committed.id).status == jobq.Status.PENDING
        rolled_back = queue.put(jobq.Job(add, 3, 4), conn=conn)
        conn.rollback()
        assert not _job_exists(db, rolled_back.id)
    finally:
        conn.close()
    assert [j.id for j in queue] == [committed.id]


def test_put_with_the_other_engines_connection_is_refused(db: jobq.Database, tmp_path: Any) -> None:
    other: Any = object() if db.engine == "sqlite" else sqlite3.connect(tmp_path / "other.db")
    with pytest.raises(jobq.ConfigError):
        db.queue().put(jobq.Job(add, 1, 2), conn=other)
    assert len(db.queue()) == 0


def test_put_joins_a_sqlalchemy_connection(db: jobq.Database, db_url: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    url, connect_args = sqlalchemy_url(db_url)
    engine = sqlalchemy.create_engine(url, connect_args=connect_args)
    queue = db.queue()
    try:
        with engine.connect() as conn:
            conn.begin()
            committed = queue.put(jobq.Job(add, 1, 2), conn=conn)
            conn.commit()
            conn.begin()
            rolled_back = queue.put(jobq.Job(add, 3, 4), conn=conn)
            conn.rollback()
        with engine.begin() as conn:  # a context-managed transaction commits on exit
            in_block = queue.put(jobq.Job(add, 5, 6), conn=conn)
        with pytest.raises(RuntimeError), engine.begin() as conn:
            failed_block = queue.put(jobq.Job(add, 7, 8), conn=conn)
            raise RuntimeError("the application's transaction fails")
    finally:
        engine.dispose()
    # (SQLite may give a rolled-back job's id to a later job: compare the calls.)
    assert [j.call_repr for j in queue] == [committed.call_repr, in_block.call_repr]
    assert rolled_back.call_repr not in {j.call_repr for j in queue}
    assert failed_block.call_repr not in {j.call_repr for j in queue}


def test_put_joins_a_sqlalchemy_connection_autobegin(db: jobq.Database, db_url: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    url, connect_args = sqlalchemy_url(db_url)
    engine = sqlalchemy.create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as conn:  # no explicit begin(): SQLAlchemy 2.0's usual style
            job = db.queue().put(jobq.Job(add, 1, 2), conn=conn)
            conn.commit()
    finally:
        engine.dispose()
    assert _job_exists(db, job.id)


def test_put_joins_a_sqlalchemy_session(db: jobq.Database, db_url: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    url, connect_args = sqlalchemy_url(db_url)
    engine = sqlalchemy.create_engine(url, connect_args=connect_args)
    create_app_table(db_url)
    queue = db.queue()
    try:
        with Session(engine) as session:
            session.execute(sqlalchemy.text("INSERT INTO app_rows (value) VALUES ('order 1')"))
            committed = queue.put(jobq.Job(add, 1, 2), conn=session)
            session.commit()
            session.execute(sqlalchemy.text("INSERT INTO app_rows (value) VALUES ('order 2')"))
            rolled_back = queue.put(jobq.Job(add, 3, 4), conn=session)
            session.rollback()
    finally:
        engine.dispose()
    assert app_rows(db_url) == ["order 1"]
    assert _job_exists(db, committed.id)
    assert not _job_exists(db, rolled_back.id)
    assert [j.id for j in queue] == [committed.id]


def test_a_big_put_many_joins_the_callers_transaction(db: jobq.Database, db_url: str) -> None:
    """A bulk put in the application's transaction (sent in pipelined parts on PostgreSQL)
    exists only if that transaction commits, all of it, with the application's own write."""
    create_app_table(db_url)
    queue = db.queue()
    count = 1200  # more than one part of a PostgreSQL bulk insert
    conn = raw_connect(db_url)
    try:
        conn.execute("INSERT INTO app_rows (value) VALUES ('rolled back')")
        queue.put_many([jobq.Job(add, i, 0) for i in range(count)], conn=conn)
        conn.rollback()
        conn.execute("INSERT INTO app_rows (value) VALUES ('kept')")
        kept = queue.put_many([jobq.Job(add, i, 1) for i in range(count)], conn=conn)
        conn.commit()
    finally:
        conn.close()
    assert app_rows(db_url) == ["kept"]
    # Only the committed batch is queued (SQLite may give the rolled-back ids out again).
    assert [j.id for j in queue] == [job.id for job in kept]
    assert [j.args for j in queue][:: count // 4] == [(i, 1) for i in range(0, count, count // 4)]


def test_job_put_in_a_transaction_runs_after_commit(
    db: jobq.Database, db_url: str, worker: jobq.Dispatcher
) -> None:
    conn = raw_connect(db_url)
    try:
        job = db.queue().put(jobq.Job(add, 20, 22), conn=conn)
        conn.commit()
    finally:
        conn.close()
    assert job.wait(timeout=WAIT) == 42


# -- transactions: jobq.local.connection() --------------------------------------------------------
def test_job_writes_commit_with_its_result(
    db: jobq.Database, db_url: str, queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    create_app_table(db_url)
    job = queue.put(jobq.Job(insert_row, "written once"))
    assert job.wait(timeout=WAIT) == "written once"
    assert app_rows(db_url) == ["written once"]


def test_job_writes_roll_back_when_it_fails(
    db: jobq.Database, db_url: str, queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    create_app_table(db_url)
    failing = queue.put(jobq.Job(insert_row_then_fail, "rolled back"))
    with pytest.raises(jobq.JobFailed) as info:
        failing.wait(timeout=WAIT)
    assert info.value.failure.message == "after the insert"
    later = queue.put(jobq.Job(insert_row, "later"))
    assert later.wait(timeout=WAIT) == "later"
    assert app_rows(db_url) == ["later"]


def test_job_writes_of_a_retried_call_happen_once(
    db: jobq.Database, db_url: str, queue: jobq.Queue, worker: jobq.Dispatcher, token: str
) -> None:
    create_app_table(db_url)
    job = queue.put(jobq.Job(jobfuncs.insert_then_conflict_once, token, "exactly once"))
    assert job.wait(timeout=WAIT) == "exactly once"
    assert len(calls(token)) == 2
    assert app_rows(db_url) == ["exactly once"]


def test_job_writes_roll_back_when_the_commit_fails(
    db: jobq.Database,
    db_url: str,
    queue: jobq.Queue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_app_table(db_url)
    failing_store_result(monkeypatch, db, RuntimeError("commit refused"), 1)
    job = queue.put(jobq.Job(insert_row, "lost with the commit"))
    with _start(db), pytest.raises(jobq.JobFailed) as info:
        job.wait(timeout=WAIT)
    assert info.value.failure.message == "commit refused"
    assert app_rows(db_url) == []


def test_job_puts_join_its_transaction(
    db_url: str, queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    # On SQLite the attempt holds the write lock: a put on another connection would wait
    # for it (and time out). The put joins the attempt's transaction instead.
    create_app_table(db_url)
    job = queue.put(jobq.Job(jobfuncs.insert_and_put, "with a follow-up"))
    follow_up_id = job.wait(timeout=WAIT)
    assert queue.db.get_job(follow_up_id).wait(timeout=WAIT) == 42
    assert app_rows(db_url) == ["with a follow-up"]


def test_job_puts_roll_back_with_its_failure(
    db_url: str, queue: jobq.Queue, worker: jobq.Dispatcher, token: str
) -> None:
    create_app_table(db_url)
    job = queue.put(jobq.Job(jobfuncs.insert_put_then_fail, token, "lost"))
    with pytest.raises(jobq.JobFailed):
        job.wait(timeout=WAIT)
    assert calls(token) == ["jobfuncs.double(1)"]  # the follow-up was put, then rolled back
    assert app_rows(db_url) == []
    all_calls = [row[0] for row in execute(db_url, "SELECT call_repr FROM jobq_jobs")]
    assert all_calls == [job.call_repr]


def test_local_connection_outside_a_job() -> None:
    with pytest.raises(ValueError, match="not initialized"):
        jobq.local.connection()


@pytest.fixture(autouse=True)
def _no_leftover_gates() -> Iterator[None]:
    yield
    for gate in jobfuncs.GATES.values():
        gate.set()


def test_a_large_agent_gets_a_connection_for_every_transactional_job(
    db: jobq.Database, db_url: str
) -> None:
    """An agent of 16 threads, each job holding its own transaction open while it runs: every
    job completes and writes its row once (the PostgreSQL pool grows to the agents' size)."""
    create_app_table(db_url)
    queue = db.queue()
    jobs = queue.put_many(
        [jobq.Job(jobfuncs.insert_then_sleep, f"row {i}", 0.3) for i in range(16)]
    )
    with db.worker(agents=[jobq.AgentSpec("main", 16)], poll_interval=0.1):
        results = [job.wait(timeout=60) for job in jobs]
    assert sorted(results) == sorted(f"row {i}" for i in range(16))
    assert sorted(app_rows(db_url)) == sorted(results)


def _hold_commits(
    monkeypatch: pytest.MonkeyPatch,
    db: jobq.Database,
    release: threading.Event,
    only: int | None = None,
) -> list[int]:
    """Hold back the group commits of plain jobs' outcomes (of job `only`, or all) until
    `release` is set; returns the ids handed to the store so far."""
    original = db.store.store_result_later
    handed: list[int] = []

    def held_commit(job_id: int, *args: Any) -> None:
        if only is not None and job_id != only:
            original(job_id, *args)
            return
        handed.append(job_id)

        def commit_later() -> None:
            release.wait(20)
            original(job_id, *args)

        threading.Thread(target=commit_later, daemon=True).start()

    monkeypatch.setattr(db.store, "store_result_later", held_commit)
    return handed


def test_a_job_stays_held_until_its_outcome_commits(
    db: jobq.Database, queue: jobq.Queue, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    """A plain job's thread goes on while its outcome commits; until the commit, the job is
    still this worker's: its sweeps (every ping) do not hand it on, and it runs once."""
    release = threading.Event()
    handed = _hold_commits(monkeypatch, db, release)
    job = queue.put(jobq.Job(logged_step, token, "ran", 7))
    with _start(db, ping_interval=0.05, death_interval=1.0) as dispatcher:
        wait_until(lambda: handed == [job.id], what="the outcome handed to the store")
        _polls_pass(dispatcher, 10)  # ten pings, each sweeping this dispatcher's own jobs
        assert job.refresh().status == "active"
        release.set()
        assert job.wait(timeout=WAIT) == 7
    assert job.attempt == 1
    assert calls(token) == ["ran"]


def test_a_thread_whose_job_commits_takes_the_next_job(
    db: jobq.Database, queue: jobq.Queue, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    """An agent of size 1 whose only job's outcome is still committing runs the next job: the
    job no longer holds its thread. Both commit, each once."""
    release = threading.Event()
    first = jobq.Job(logged_step, token, "first", 1)
    second = jobq.Job(logged_step, token, "second", 2)
    _hold_commits(monkeypatch, db, release, only=queue.put(first).id)
    agents = [jobq.AgentSpec("main", 1)]
    with _start(db, agents=agents):
        wait_until(lambda: calls(token) == ["first"], what="the first job's run")
        queue.put(second)
        try:
            assert second.wait(timeout=WAIT) == 2
            assert first.refresh().status == "active"  # its outcome still commits
        finally:
            release.set()
        assert first.wait(timeout=WAIT) == 1
    assert calls(token) == ["first", "second"]
    assert (first.attempt, second.attempt) == (1, 1)
