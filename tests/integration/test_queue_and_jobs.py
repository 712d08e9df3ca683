"""Catalogue scenarios 1-8, 14-31 and 56-57 (seed-behaviour.md section 13), on both engines.

Adapted to jobq: "claim" is `db.store.claim` (what a dispatcher's agent calls), "calling the
job" is an in-process worker running it. Skipped: quotas (9-13), Deferreds (21), a job
calling itself (28) and `Job.bind` (29), which jobq does not have.
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
import time
from collections.abc import Callable, Iterator
from typing import Any

import jobfuncs
import pytest

import jobq
from jobq.store.base import JobRecord
from jobq.testing import MovableClock
from jobq.worker.runner import Runner

UTC = dt.UTC
UUID = "00000000-0000-0000-0000-0000000000c1"
T0 = dt.datetime(2024, 1, 1, 16, 0, tzinfo=UTC)
WAIT = 15.0  # seconds a worker may take to finish a job (generous; normally milliseconds)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def cqueue(clock_db: jobq.Database) -> jobq.Queue:
    return clock_db.queue()


@pytest.fixture
def cworker(clock_db: jobq.Database) -> Iterator[jobq.Dispatcher]:
    dispatcher = clock_db.worker(poll_interval=0.05).start()
    yield dispatcher
    dispatcher.stop(grace=10)


def at(hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, 1, hour, minute, second, tzinfo=UTC)


def claim(
    db: jobq.Database,
    limit: int = 1,
    accept: Callable[[JobRecord], bool] | None = None,
    queue: str = "",
) -> list[int]:
    """What an agent does: claim due jobs now (by the database's clock)."""
    return [r.id for r in db.store.claim(queue, UUID, "main", limit, db.clock.now(), accept)]


def ids(queue: jobq.Queue) -> list[int | None]:
    return [job.id for job in queue]


def until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def make_app_table(db: jobq.Database) -> None:
    conn = db.store.attempt_connection()
    try:
        key = "INTEGER PRIMARY KEY" if db.engine == "sqlite" else "SERIAL PRIMARY KEY"
        conn.raw.execute(f"CREATE TABLE app_rows (id {key}, value TEXT NOT NULL)")
        conn.commit()
    finally:
        conn.close()


def app_rows(db: jobq.Database) -> list[str]:
    conn = db.store.attempt_connection()
    try:
        return [r["value"] for r in conn.raw.execute("SELECT value FROM app_rows ORDER BY id")]
    finally:
        conn.close()


# -- queue basics (1-8) -------------------------------------------------------------------------


def test_1_put_makes_a_pending_job_at_the_head_of_an_empty_queue(
    clock_db: jobq.Database, cqueue: jobq.Queue
) -> None:
    assert len(cqueue) == 0 and not cqueue
    job = cqueue.put(jobfuncs.current_job_id)
    assert isinstance(job, jobq.Job) and job.id is not None
    assert job.status == "pending" and job.queue_name == ""
    assert job.begin_after == T0 and job.begin_by is None
    assert len(cqueue) == 1 and cqueue
    assert cqueue[0].id == job.id and cqueue[-1].id == job.id
    loaded = clock_db.get_job(job.id)
    assert loaded.status == "pending" and loaded.begin_after == T0
    assert loaded.callable is jobfuncs.current_job_id
    with pytest.raises(IndexError):
        cqueue[1]
    with pytest.raises(IndexError):
        cqueue[-2]


def test_2_pull_returns_the_head_as_new_and_a_re_put_goes_to_the_tail(
    cqueue: jobq.Queue, clock: MovableClock
) -> None:
    j1 = cqueue.put(jobq.Job(jobfuncs.add, 1, 1))
    j2 = cqueue.put(jobq.Job(jobfuncs.add, 2, 2))
    pulled = cqueue.pull()
    assert pulled.id == j1.id and pulled.status == "new"
    assert ids(cqueue) == [j2.id]
    clock.advance(minutes=5)
    again = cqueue.put(pulled)
    assert again is pulled and pulled.id == j1.id  # same job, same id
    assert pulled.status == "pending" and pulled.begin_after == T0  # keeps its date
    assert ids(cqueue) == [j2.id, j1.id]
    last = cqueue.pull(-1)
    assert last.id == j1.id and ids(cqueue) == [j2.id]
    with pytest.raises(IndexError):
        cqueue.pull(3)


def test_a_handle_older_than_its_row_can_be_put_after_a_pull(queue: jobq.Queue) -> None:
    """Issue 16.6: the handle `put` returned still says pending after another handle pulled
    the job; putting it again reads the row instead of refusing it as pending."""
    original = queue.put(jobq.Job(jobfuncs.add, 1, 1))
    assert queue.pull().id == original.id
    assert original.status == "pending"  # not refreshed: older than the row
    assert queue.put(original) is original and original.status == "pending"
    assert ids(queue) == [original.id]
    with pytest.raises(ValueError, match="status pending"):
        queue.put(original)  # now it is pending, and put again is refused


def test_a_bound_job_receives_itself_first(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    """Issue 16.6 (catalogue 29, `Job.bind`): the callable gets the job being run first."""
    bound = queue.put(jobq.Job.bind(jobfuncs.own_id_plus, 1000))
    assert bound.call_repr == "jobfuncs.own_id_plus(<the job>, 1000)"
    assert bound.wait(timeout=WAIT) == bound.id + 1000
    async_bound = queue.put(jobq.Job.bind(jobfuncs.async_own_id))
    assert async_bound.wait(timeout=WAIT) == async_bound.id
    with pytest.raises(TypeError, match="bound to its job"):
        jobq.Job.bind(jobfuncs.own_id_plus, 1).callable(1)
    with pytest.raises(jobq.EncodingError, match=r"Job\.bind needs a function"):
        jobq.Job.bind(42)  # type: ignore[arg-type]


def test_3_remove_a_job_then_removing_it_again_is_lookup_error(queue: jobq.Queue) -> None:
    j1 = queue.put(jobq.Job(jobfuncs.add, 1, 1))
    j2 = queue.put(jobq.Job(jobfuncs.add, 2, 2))
    queue.remove(j1)
    assert j1.status == "new"
    assert ids(queue) == [j2.id]
    with pytest.raises(LookupError):
        queue.remove(j1)
    with pytest.raises(LookupError):
        queue.remove(jobq.Job(jobfuncs.add, 3, 3))  # never stored
    assert ids(queue) == [j2.id]


def test_4_a_scheduled_job_is_claimed_only_once_due(
    clock_db: jobq.Database, cqueue: jobq.Queue, clock: MovableClock
) -> None:
    clock.set(at(15, 44))
    job = cqueue.put(jobfuncs.current_job_id, begin_after=at(16, 0))
    assert job.begin_after == at(16, 0) and job.status == "pending"
    assert claim(clock_db) == []
    clock.set(at(15, 59, 59))
    assert claim(clock_db) == []
    clock.set(at(16, 0))
    assert claim(clock_db) == [job.id]
    assert job.refresh().status == "assigned"


def test_4_a_worker_runs_a_scheduled_job_when_the_clock_reaches_it(
    cqueue: jobq.Queue, clock: MovableClock, cworker: jobq.Dispatcher
) -> None:
    job = cqueue.put(jobq.Job(jobfuncs.add, 20, 22), begin_after=at(17, 0))
    with pytest.raises(jobq.WaitTimeout):
        job.wait(timeout=0.5)
    assert job.status == "pending"
    clock.set(at(17, 0))
    assert job.wait(timeout=WAIT) == 42


def test_5_scheduled_jobs_are_ordered_by_time(
    clock_db: jobq.Database, cqueue: jobq.Queue, clock: MovableClock
) -> None:
    clock.set(at(15, 44))
    j1602 = cqueue.put(jobfuncs.current_job_id, begin_after=at(16, 2))
    j1601 = cqueue.put(jobfuncs.current_job_id, begin_after=at(16, 1))
    j1600 = cqueue.put(jobfuncs.current_job_id, begin_after=at(16, 0))
    assert ids(cqueue) == [j1600.id, j1601.id, j1602.id]
    assert [j.begin_after for j in cqueue] == [at(16, 0), at(16, 1), at(16, 2)]
    clock.set(at(16, 5))
    assert claim(clock_db) == [j1600.id]
    assert claim(clock_db, limit=5) == [j1601.id, j1602.id]


def test_5_the_catalogue_order_of_due_and_held_jobs(
    clock_db: jobq.Database, cqueue: jobq.Queue, clock: MovableClock
) -> None:
    job4 = cqueue.put(jobfuncs.current_job_id, begin_after=at(16, 1))
    job3 = cqueue.put(jobfuncs.current_job_id, begin_after=at(16, 2))
    job8 = cqueue.put(jobfuncs.current_job_id, begin_after=at(16, 30))
    job6 = cqueue.put(jobfuncs.current_job_id)
    job7 = cqueue.put(jobfuncs.current_job_id, begin_after=at(15, 35))
    expected = [job6.id, job7.id, job4.id, job3.id, job8.id]
    assert ids(cqueue) == expected
    clock.set(at(17, 0))
    assert claim(clock_db, limit=10) == expected


def test_6_a_pre_dated_job_goes_to_the_tail_like_an_undated_one(
    clock_db: jobq.Database, cqueue: jobq.Queue
) -> None:
    a = cqueue.put(jobfuncs.current_job_id)
    b = cqueue.put(jobfuncs.current_job_id, begin_after=at(15, 0))
    assert b.begin_after == at(15, 0)
    assert ids(cqueue) == [a.id, b.id]
    assert claim(clock_db) == [a.id]
    assert claim(clock_db) == [b.id]


def test_7_begin_after_is_normalized_to_utc(cqueue: jobq.Queue) -> None:
    est = dt.timezone(dt.timedelta(hours=-5), "EST")
    job = cqueue.put(
        jobfuncs.current_job_id, begin_after=dt.datetime(2024, 1, 1, 11, 30, tzinfo=est)
    )
    assert job.begin_after == at(16, 30)
    assert job.begin_after.utcoffset() == dt.timedelta(0)
    assert cqueue[0].begin_after == at(16, 30)


def test_7_a_naive_begin_after_is_a_value_error_and_the_queue_is_unchanged(
    queue: jobq.Queue,
) -> None:
    first = queue.put(jobfuncs.current_job_id)
    job = jobq.Job(jobfuncs.add, 1, 2)
    with pytest.raises(ValueError, match=r"begin_after.*naive"):
        queue.put(job, begin_after=dt.datetime(2024, 1, 1, 16, 0))
    assert not job.stored and job.status == "new"
    assert ids(queue) == [first.id]


def test_a_naive_begin_after_set_on_the_job_is_a_value_error(queue: jobq.Queue) -> None:
    job = jobq.Job(jobfuncs.add, 1, 2)
    job.begin_after = dt.datetime(2024, 1, 1, 16, 0)
    with pytest.raises(ValueError, match=r"begin_after.*naive"):
        queue.put(job)
    assert len(queue) == 0 and not job.stored


def test_a_negative_begin_by_is_a_value_error_and_the_queue_is_unchanged(
    queue: jobq.Queue,
) -> None:
    first = queue.put(jobfuncs.current_job_id)
    with pytest.raises(ValueError, match="negative"):
        queue.put(jobfuncs.current_job_id, begin_by=dt.timedelta(seconds=-1))
    job = jobq.Job(jobfuncs.add, 1, 2)
    job.begin_by = dt.timedelta(minutes=-5)
    with pytest.raises(ValueError, match="negative"):
        queue.put(job)
    with pytest.raises(TypeError):
        queue.put(jobfuncs.current_job_id, begin_by=60)  # type: ignore[arg-type]
    assert ids(queue) == [first.id]
    zero = queue.put(jobfuncs.current_job_id, begin_by=dt.timedelta(0))
    assert zero.begin_by == dt.timedelta(0)


def test_8_putting_an_already_pending_job_is_a_value_error(queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    with pytest.raises(ValueError, match="already-assigned"):
        queue.put(job)
    with pytest.raises(ValueError, match="already-assigned"):
        queue.put_many([jobq.Job(jobfuncs.add, 3, 4), job])
    assert ids(queue) == [job.id]
    assert job.status == "pending"


def test_8_a_stale_handle_of_a_pending_job_is_refused_and_nothing_is_put(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2), begin_after=dt.datetime.now(UTC))
    pulled = queue.pull()
    stale = db.get_job(pulled.id)  # also "new"
    queue.put(pulled)  # pending again
    assert stale.status == "new"
    fresh = jobq.Job(jobfuncs.add, 3, 4)
    with pytest.raises(ValueError, match="already-assigned"):
        queue.put_many([fresh, stale])
    assert ids(queue) == [job.id]  # all or none: the fresh job was not stored either
    assert not fresh.stored


def test_put_many_stores_all_jobs_in_order(queue: jobq.Queue) -> None:
    jobs = queue.put_many([jobq.Job(jobfuncs.add, i, i) for i in range(4)])
    assert [j.status for j in jobs] == ["pending"] * 4
    assert ids(queue) == [j.id for j in jobs]
    with pytest.raises(ValueError):
        queue.put_many([jobs[0], jobs[0]])


def test_a_big_put_many_with_one_bad_job_stores_nothing(queue: jobq.Queue) -> None:
    """Jobs are encoded while the batch is sent (PostgreSQL pipelines its parts): a job that
    cannot be stored, far into a big batch, still fails the whole put with a clear error and
    leaves nothing behind, and the queue goes on working."""
    before = queue.put(jobq.Job(jobfuncs.add, 0, 0))
    jobs = [jobq.Job(jobfuncs.add, i, i) for i in range(2500)]
    jobs[1800] = jobq.Job(lambda: None)
    with pytest.raises(jobq.EncodingError, match="lambda"):
        queue.put_many(jobs)
    assert ids(queue) == [before.id]
    assert not any(job.stored for job in jobs)
    after = queue.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(3)])
    assert ids(queue) == [before.id] + [job.id for job in after]


def test_put_refuses_lambdas_and_local_functions(queue: jobq.Queue) -> None:
    def local() -> None:
        pass

    with pytest.raises(jobq.EncodingError, match="lambda"):
        queue.put(lambda: None)
    with pytest.raises(jobq.EncodingError, match="local function"):
        queue.put(local)
    assert len(queue) == 0


def test_a_bad_retry_policy_is_refused_at_the_put_and_nothing_is_stored(
    queue: jobq.Queue,
) -> None:
    """The policy is checked once for a whole put, before any row is written."""
    with pytest.raises(TypeError, match="RetryPolicy subclass"):
        queue.put(jobq.Job(jobfuncs.add, 1, 2), retry_policy=int)  # type: ignore[arg-type]
    jobs = [jobq.Job(jobfuncs.add, i, i) for i in range(3)]
    with pytest.raises(TypeError, match="RetryPolicy subclass"):
        queue.put_many(jobs, retry_policy="jobq.NeverRetry")  # type: ignore[arg-type]
    assert len(queue) == 0 and not any(job.stored for job in jobs)
    stored = queue.put_many(jobs, retry_policy=jobq.NeverRetry)
    assert [job.retry_policy for job in stored] == ["jobq.model.retry:NeverRetry"] * 3


# -- claiming (14-16) ---------------------------------------------------------------------------


def test_14_a_claim_filter_skips_earlier_jobs(clock_db: jobq.Database, cqueue: jobq.Queue) -> None:
    first = cqueue.put(jobq.Job(jobfuncs.add, 1, 2))
    wanted = cqueue.put(jobq.Job(operator.or_, 1, 2))
    last = cqueue.put(jobq.Job(jobfuncs.add, 3, 4))

    def only_or(record: JobRecord) -> bool:
        return clock_db.rows.job(record).callable is operator.or_

    assert claim(clock_db, accept=only_or) == [wanted.id]
    assert claim(clock_db, accept=only_or) == []
    assert ids(cqueue) == [first.id, last.id]


def test_15_a_job_past_its_deadline_completes_with_a_timeout_failure(
    cqueue: jobq.Queue, clock: MovableClock, cworker: jobq.Dispatcher
) -> None:
    clock.set(at(15, 0))
    job = cqueue.put(
        jobq.Job(jobfuncs.add, 1, 2), begin_after=at(16, 0), begin_by=dt.timedelta(hours=1)
    )
    callback = job.add_callback(jobfuncs.failure_type)
    clock.set(at(17, 0, 1))  # past begin_after + 1 h, never started
    with pytest.raises(jobq.JobFailed) as raised:
        job.wait(timeout=WAIT)
    assert raised.value.failure.check(jobq.TimeoutError)
    assert job.failed
    assert isinstance(job.result, jobq.Failure)
    assert callback.wait(timeout=WAIT) == "jobq.errors.TimeoutError"
    assert job.refresh().status == "completed"
    assert job.active_start is None  # it never ran


def test_15_a_job_within_its_deadline_runs(
    cqueue: jobq.Queue, clock: MovableClock, cworker: jobq.Dispatcher
) -> None:
    job = cqueue.put(jobq.Job(jobfuncs.add, 1, 2), begin_by=dt.timedelta(hours=1))
    assert job.begin_by == dt.timedelta(hours=1)
    assert job.wait(timeout=WAIT) == 3


def test_15_a_job_with_a_passed_deadline_put_late_fails_at_once(
    cqueue: jobq.Queue, cworker: jobq.Dispatcher
) -> None:
    job = cqueue.put(
        jobq.Job(jobfuncs.add, 1, 2), begin_after=at(9, 0), begin_by=dt.timedelta(minutes=5)
    )
    with pytest.raises(jobq.JobFailed) as raised:
        job.wait(timeout=WAIT)
    assert raised.value.failure.type_name == "jobq.errors.TimeoutError"


def test_16_a_put_back_job_is_first(clock_db: jobq.Database, cqueue: jobq.Queue) -> None:
    jobs = [cqueue.put(jobq.Job(jobfuncs.add, i, i)) for i in range(3)]
    pulled = cqueue.pull(2)
    cqueue.put_back(pulled)
    assert pulled.status == "pending"
    assert cqueue[0].id == pulled.id
    assert ids(cqueue) == [jobs[2].id, jobs[0].id, jobs[1].id]
    assert claim(clock_db) == [pulled.id]
    with pytest.raises(jobq.BadStatusError):
        cqueue.put_back(jobs[0])  # pending, not new
    with pytest.raises(jobq.BadStatusError):
        cqueue.put_back(jobq.Job(jobfuncs.add, 1, 1))  # never stored


# -- job basics (17-31) ---------------------------------------------------------------------------


def test_17_a_job_runs_once_and_stores_its_result(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    job = queue.put(jobq.Job(jobfuncs.identity, "my result"))
    assert job.wait(timeout=WAIT) == "my result"
    assert job.status == "completed" and not job.failed and job.result == "my result"
    assert job.active_start is not None and job.active_end is not None
    assert job.active_start <= job.active_end
    with pytest.raises(ValueError):
        queue.put(job)
    with pytest.raises(jobq.BadStatusError):
        job.fail()
    assert job.refresh().result == "my result"


def test_18_call_arguments_are_appended_and_keywords_override(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    partial = jobq.Job(jobfuncs.echo, "obj", value=4)
    job = jobq.Job(partial, "obj2", value=5, op="mul")
    assert job.callable is jobfuncs.echo
    assert job.args == ("obj", "obj2") and job.kwargs == {"value": 5, "op": "mul"}
    queue.put(job)
    assert job.wait(timeout=WAIT) == (("obj", "obj2"), {"value": 5, "op": "mul"})
    callback = job.add_callback(jobq.Job(jobfuncs.echo, "cb", k=1))
    assert callback.wait(timeout=WAIT) == (
        ("cb", (("obj", "obj2"), {"value": 5, "op": "mul"})),
        {"k": 1},
    )


def test_19_a_raised_exception_is_a_failure_and_the_jobs_writes_roll_back(
    db: jobq.Database, queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    make_app_table(db)
    job = queue.put(jobq.Job(jobfuncs.insert_row_then_fail, "lost"))
    with pytest.raises(jobq.JobFailed) as raised:
        job.wait(timeout=WAIT)
    failure = raised.value.failure
    assert job.failed and job.result == failure
    assert failure.check(RuntimeError) and failure.message == "after the insert"
    assert "RuntimeError" in failure.traceback and "insert_row_then_fail" in failure.traceback
    assert app_rows(db) == []


def test_19_a_returned_failure_counts_as_failed_and_the_writes_persist(
    db: jobq.Database, queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    make_app_table(db)
    job = queue.put(jobq.Job(jobfuncs.insert_row_then_return_failure, "kept"))
    callback = job.add_callbacks(jobfuncs.tag_success, jobfuncs.tag_failure)
    with pytest.raises(jobq.JobFailed) as raised:
        job.wait(timeout=WAIT)
    assert raised.value.failure.type_name == "ValueError"
    assert job.failed and isinstance(job.result, jobq.Failure)
    assert app_rows(db) == ["kept"]
    assert callback.wait(timeout=WAIT) == ("failure", "ValueError")


def test_19_a_returned_failure_without_writes(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    job = queue.put(jobfuncs.returns_failure)
    with pytest.raises(jobq.JobFailed):
        job.wait(timeout=WAIT)
    assert job.failure is not None and job.failure.message == "returned, not raised"
    assert job.attempt == 1  # the retry policy was not consulted


def test_20_56_a_job_returning_a_stored_job_completes_with_its_result(
    db: jobq.Database, queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    outer = queue.put(jobq.Job(jobfuncs.put_inner_in, "side", 21))
    callback = outer.add_callback(jobfuncs.describe_result)
    until(lambda: outer.refresh().waiting_on is not None)
    # The inner job waits in a queue nobody serves: the outer one stays active.
    assert outer.status == "active" and outer.result is None
    assert outer.dispatcher_uuid == worker.uuid
    assert outer.waiting_on is not None
    inner = db.get_job(outer.waiting_on)
    assert inner.status == "pending" and inner.queue_name == "side"
    assert callback.refresh().status == "new"
    with db.worker(queues=["side"], poll_interval=0.05):
        assert outer.wait(timeout=WAIT) == 42
    assert inner.refresh().result == 42
    assert outer.waiting_on is None
    assert callback.wait(timeout=WAIT) == "got 42"
    until(lambda: outer.refresh().status == "completed")


def test_56_a_job_putting_its_follow_up_in_its_own_queue(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    outer = queue.put(jobq.Job(jobfuncs.put_inner, 21))
    assert outer.wait(timeout=WAIT) == 42


def test_20_a_job_returning_an_unstored_job_completes_with_its_result(
    db: jobq.Database, queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    outer = queue.put(jobq.Job(jobfuncs.return_unstored_inner, 21))
    assert outer.wait(timeout=WAIT) == 42
    assert outer.status in ("callbacks", "completed")
    inner = db.get_job(outer.id + 1)  # stored by the worker, in the same queue
    assert inner.callable is jobfuncs.double and inner.args == (21,)
    assert inner.queue_name == "" and inner.refresh().result == 42


def test_22_add_callbacks_runs_only_the_matching_slot(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    good = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    bad = queue.put(jobq.Job(jobfuncs.fail, "nope"))
    on_good = good.add_callbacks(jobfuncs.tag_success, jobfuncs.tag_failure)
    on_bad = bad.add_callbacks(jobfuncs.tag_success, jobfuncs.tag_failure)
    assert on_good.wait(timeout=WAIT) == ("success", 3)
    assert on_bad.wait(timeout=WAIT) == ("failure", "RuntimeError")
    # Several add_callbacks each get the same original result.
    again = good.add_callbacks(jobfuncs.tag_success)
    assert again.wait(timeout=WAIT) == ("success", 3)


def test_a_job_lists_its_callbacks_and_a_choice_shows_its_slots(queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    assert job.callbacks == []
    plain = job.add_callback(jobfuncs.identity)
    choice = job.add_callbacks(failure=jobfuncs.tag_failure)
    listed = job.callbacks
    assert [c.id for c in listed] == [plain.id, choice.id]
    assert {c.status for c in listed} == {"new"}  # they wait for the parent's result
    # The slots of an add_callbacks job, read back from its stored row; not `failure`, which
    # is every job's own Failure (None here: it has not run).
    stored_choice = queue.db.get_job(choice.id)
    assert stored_choice.on_success is None
    assert stored_choice.on_failure is not None
    assert stored_choice.on_failure.callable is jobfuncs.tag_failure
    assert stored_choice.failure is None
    assert plain.on_success is None and plain.on_failure is None
    # A callback's own callbacks are its own, not its parent's.
    grandchild = plain.add_callback(jobfuncs.identity)
    assert [c.id for c in plain.callbacks] == [grandchild.id]
    assert [c.id for c in job.callbacks] == [plain.id, choice.id]


def test_an_unstored_job_has_no_callback_listing() -> None:
    with pytest.raises(jobq.BadStatusError, match="not stored yet"):
        _ = jobq.Job(jobfuncs.add, 1, 2).callbacks


def test_23_chained_add_callbacks(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    job = queue.put(jobq.Job(jobfuncs.multiply, 5, 3))
    first = job.add_callbacks(jobq.Job(jobfuncs.multiply, 4))
    second = first.add_callbacks(jobfuncs.identity)
    assert second.wait(timeout=WAIT) == 60
    assert first.refresh().result == 60
    assert job.wait(timeout=WAIT) == 15
    until(lambda: job.refresh().status == "completed")
    assert first.refresh().status == "completed"


def test_24_a_failure_handler_result_flows_to_the_next_success(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    job = queue.put(jobq.Job(jobfuncs.fail, "x"))
    handled = job.add_callbacks(failure=jobfuncs.zero)
    after = handled.add_callbacks(jobfuncs.identity)
    assert after.wait(timeout=WAIT) == 0
    assert handled.refresh().result == 0 and not handled.failed
    with pytest.raises(jobq.JobFailed):
        job.wait(timeout=WAIT)
    assert isinstance(job.result, jobq.Failure)


def test_24_a_missing_slot_passes_the_result_through_unchanged(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    good = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    passed = good.add_callbacks(failure=jobfuncs.zero)
    assert passed.wait(timeout=WAIT) == 3  # the bare value, not (3,)
    bad = queue.put(jobq.Job(jobfuncs.fail, "y"))
    passed_failure = bad.add_callbacks(success=jobfuncs.zero)
    with pytest.raises(jobq.JobFailed) as raised:
        passed_failure.wait(timeout=WAIT)
    assert raised.value.failure.message == "y"
    with pytest.raises(TypeError):
        good.add_callbacks()


def test_25_a_callback_added_to_a_completed_job_runs_and_the_status_stays(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    job = queue.put(jobq.Job(jobfuncs.multiply, 2, 5))
    assert job.wait(timeout=WAIT) == 10
    until(lambda: job.refresh().status == "completed")
    completed_at = job.completed_at
    callback = job.add_callback(jobq.Job(jobfuncs.multiply, 3))
    assert callback.wait(timeout=WAIT) == 30
    job.refresh()
    assert job.status == "completed" and job.completed_at == completed_at
    assert job.result == 10


def test_26_statuses_seen_in_the_queue_during_the_call_and_during_the_callback(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    waiting = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    assert waiting.status == "pending"
    # Claimed by another, live dispatcher (an unknown one's jobs would be handed on).
    db.store.activate_dispatcher(UUID, "elsewhere", 1, 3600.0, 7200.0, db.clock.now())
    assert claim(db) == [waiting.id]
    assert waiting.refresh().status == "assigned"
    job = queue.put(jobfuncs.own_status)
    callback = job.add_callback(jobfuncs.parent_status)
    assert job.status == "pending" and callback.status == "new"
    with db.worker(poll_interval=0.05):
        assert job.wait(timeout=WAIT) == "active"
        assert callback.wait(timeout=WAIT) == ("callbacks", "active")
        until(lambda: job.refresh().status == "completed")
    assert callback.refresh().status == "completed"
    assert waiting.refresh().status == "assigned"  # claimed by another dispatcher


def test_27_fail_a_new_job_gives_its_callbacks_a_timeout_failure(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    later = dt.datetime.now(UTC) + dt.timedelta(hours=1)
    queue.put(jobq.Job(jobfuncs.add, 1, 2), begin_after=later)
    job = queue.pull()
    assert job.status == "new"
    callback = job.add_callbacks(failure=jobfuncs.failure_type)
    job.fail()
    assert job.status in ("callbacks", "completed") and job.failed
    assert job.failure is not None and job.failure.check(jobq.TimeoutError)
    assert callback.wait(timeout=WAIT) == "jobq.errors.TimeoutError"
    until(lambda: job.refresh().status == "completed")


def test_27_fail_with_an_exception_stores_that_exception(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    later = dt.datetime.now(UTC) + dt.timedelta(hours=1)
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2), begin_after=later)
    callback = job.add_callback(jobfuncs.failure_type)
    job.fail(RuntimeError("x"))  # pending: it leaves the queue, its callback enters it
    assert job.id not in ids(queue)
    assert job.failure is not None
    assert job.failure.type_name == "RuntimeError" and job.failure.message == "x"
    with pytest.raises(jobq.JobFailed):
        job.wait(timeout=WAIT)
    assert callback.wait(timeout=WAIT) == "RuntimeError"


def test_27_fail_on_an_active_or_completed_job_is_bad_status(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    assert claim(db) == [job.id]
    assert db.store.start(job.id, 1, UUID, db.clock.now())
    with pytest.raises(jobq.BadStatusError):
        job.fail()
    assert job.refresh().status == "active" and not job.failed
    with pytest.raises(jobq.BadStatusError):
        jobq.Job(jobfuncs.add, 1, 2).fail()  # never stored
    done = queue.put(jobq.Job(jobfuncs.add, 3, 4))
    done.fail()
    with pytest.raises(jobq.BadStatusError):
        done.fail()
    assert done.refresh().failure is not None
    assert done.failure.check(jobq.TimeoutError)  # type: ignore[union-attr]


@pytest.mark.parametrize("func", [jobfuncs.return_self, jobfuncs.return_own_callback])
def test_28_a_job_returning_itself_or_its_callback_fails_with_bad_status(
    queue: jobq.Queue, worker: jobq.Dispatcher, func: Any
) -> None:
    job = queue.put(func)
    with pytest.raises(jobq.JobFailed) as raised:
        job.wait(timeout=WAIT)
    assert raised.value.failure.check(jobq.BadStatusError)
    assert "never end" in raised.value.failure.message
    assert job.waiting_on is None


def test_28_a_callback_returning_its_parent_gets_the_parents_result(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    job = queue.put(jobq.Job(jobfuncs.multiply, 3, 4))
    callback = job.add_callback(jobfuncs.return_parent)
    assert callback.wait(timeout=WAIT) == 12
    assert job.wait(timeout=WAIT) == 12
    until(lambda: job.refresh().status == "completed")


def test_30_the_callable_can_change_only_while_new(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    job = jobq.Job(jobfuncs.add, 3, 4)
    job.callable = jobfuncs.multiply
    job.args = (5, 6)
    queue.put(job)
    with pytest.raises(jobq.BadStatusError):
        job.callable = jobfuncs.add
    with pytest.raises(jobq.BadStatusError):
        job.args = (1, 1)
    assert job.wait(timeout=WAIT) == 30


def test_31_a_failing_callback_is_logged_critical_and_the_parent_result_stands(
    queue: jobq.Queue, worker: jobq.Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="jobq.events")
    job = queue.put(jobq.Job(jobfuncs.multiply, 4, 5))
    callback = job.add_callback(jobfuncs.add)  # add(20) lacks an argument
    with pytest.raises(jobq.JobFailed) as raised:
        callback.wait(timeout=WAIT)
    assert raised.value.failure.check(TypeError)
    assert job.wait(timeout=WAIT) == 20
    until(lambda: job.refresh().status == "completed")
    assert not job.failed and job.result == 20
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    logged = [r.getMessage() for r in critical if "TypeError" in r.getMessage()]
    assert logged and "missing 1 required positional argument" in logged[0]
    assert "Locals:" not in logged[0]  # none recorded by default: no empty section


# -- 57: a job failed while assigned ------------------------------------------------------------


def test_57_a_job_failed_after_its_claim_is_not_run_and_the_next_job_completes(
    db: jobq.Database, queue: jobq.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="jobq.events")
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    (record,) = db.store.claim("", UUID, "main", 1, db.clock.now())
    job.fail()
    assert job.status == "completed" and job.failed
    # the agent now tries to run what it claimed
    Runner(db.rows, UUID, "main", owner=db).run(record)
    assert any("already completed?" in r.getMessage() for r in caplog.records)
    assert job.refresh().status == "completed" and job.failure is not None
    assert job.failure.check(jobq.TimeoutError)
    assert job.active_start is None
    following = queue.put(jobq.Job(jobfuncs.add, 2, 3))
    with db.worker(poll_interval=0.05):
        assert following.wait(timeout=WAIT) == 5


def test_wait_times_out_on_a_job_that_does_not_run(queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    with pytest.raises(jobq.WaitTimeout):
        job.wait(timeout=0.2)
    assert job.status == "pending"


def test_put_records_failure_log_level_and_retry_policy(queue: jobq.Queue) -> None:
    job = queue.put(
        jobq.Job(jobfuncs.add, 1, 2),
        failure_log_level=logging.WARNING,
        retry_policy=jobq.NeverRetry,
    )
    loaded = queue[0]
    assert loaded.failure_log_level == logging.WARNING == job.failure_log_level
    assert loaded.retry_policy == "jobq.model.retry:NeverRetry"


def test_local_outside_a_job_is_not_initialized() -> None:
    with pytest.raises(ValueError, match="not initialized"):
        jobq.local.job()
    with pytest.raises(ValueError, match="not initialized"):
        jobq.local.queue()


def test_a_job_sees_itself_through_jobq_local(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    job = queue.put(jobfuncs.current_job_id)
    assert job.wait(timeout=WAIT) == job.id


def test_8_a_pulled_job_with_new_job_options_or_twice_in_a_batch_is_refused_and_nothing_is_put(
    queue: jobq.Queue,
) -> None:
    first = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    pulled = queue.put(jobq.Job(jobfuncs.add, 5, 6))
    queue.remove(pulled)  # "new" again, as pulled
    fresh = jobq.Job(jobfuncs.add, 3, 4)
    with pytest.raises(ValueError, match="unique_key applies to new jobs"):
        queue.put_many([fresh, pulled], unique_key="k")
    keyed = jobq.Job(jobfuncs.add, 7, 8)
    keyed.unique_key = "own"  # an earlier job's own key makes the batch keyed too
    with pytest.raises(ValueError, match="unique_key applies to new jobs"):
        queue.put_many([keyed, pulled])
    with pytest.raises(ValueError, match="appears twice in one put_many"):
        queue.put_many([fresh, fresh])
    assert ids(queue) == [first.id]  # all or none
    assert not fresh.stored and not keyed.stored
    assert queue.put(pulled).status == "pending"  # the pulled job itself is put again fine
