"""How an attempt ends, and what follows: results stored, fenced on the attempt, and handed
on to callbacks, parents and jobs waiting on them; reschedules; waits on returned jobs;
unstarted jobs failed; callbacks added; a failed job retried as a copy.

Functions of `SqlStore`'s operations, each over the engine's `Driver`; `write_result` is the
general path of a result, which drivers fall back on when their group commit cannot
complete a job by itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from jobq.errors import JobNotFound, ReassignedError
from jobq.model.retry import SETTINGS
from jobq.store._queue import annotate
from jobq.store._rows import job_record
from jobq.store.base import NewJob, Outcome
from jobq.store.driver import Driver, Executor, Row

DONE = ("callbacks", "completed")  # statuses of a job whose result is stored


# -- results -----------------------------------------------------------------------------------
def result_params(
    driver: Driver, job_id: int, attempt: int, dispatcher: str, outcome: Outcome, now: dt.datetime
) -> Row:
    """The parameters of the `store_result` query (and of the engines' group completions)."""
    return dict(
        id=job_id,
        attempt=attempt,
        dispatcher=dispatcher,
        result=outcome.result,
        result_repr=outcome.result_repr,
        failed=outcome.failed,
        failure=None if outcome.failure is None else json.dumps(outcome.failure),
        # Most jobs end on their first attempt, with no retry data: skip json.dumps.
        retry_data=json.dumps(outcome.retry_data) if outcome.retry_data else "{}",
        now=driver.to_db_time(now),
    )


def store_result(
    driver: Driver,
    job_id: int,
    attempt: int,
    dispatcher: str,
    outcome: Outcome,
    now: dt.datetime,
    conn: object | None,
) -> None:
    params = result_params(driver, job_id, attempt, dispatcher, outcome, now)
    if conn is None:
        driver.commit_result(params, now, write_result)
        return
    with driver.transaction(conn) as ex:  # with the job's own writes, in its transaction
        write_result(driver, ex, params, now)


def store_result_later(
    driver: Driver,
    job_id: int,
    attempt: int,
    dispatcher: str,
    outcome: Outcome,
    now: dt.datetime,
    then: Callable[[BaseException | None], None],
) -> None:
    params = result_params(driver, job_id, attempt, dispatcher, outcome, now)
    driver.commit_result_later(params, now, write_result, then)


def write_result(driver: Driver, ex: Executor, params: Row, now: dt.datetime) -> None:
    """Store a result (fenced: `ReassignedError` if the attempt lost its job) and do what
    follows it, in `ex`'s transaction."""
    row = ex.one("store_result", **params)
    if row is None:
        raise ReassignedError(
            f"job {params['id']} attempt {params['attempt']} is no longer held by "
            f"dispatcher {params['dispatcher']}; its result was not stored"
        )
    _after_stored(driver, ex, params["id"], row, now)


def _after_stored(driver: Driver, ex: Executor, job_id: int, row: Row, now: dt.datetime) -> None:
    """After `store_result` (which completed the job unless it has callbacks), do only
    what its RETURNING row says is needed; the general path is `_settle`."""
    released = 0
    if row["status"] == "callbacks":
        released = ex.run("release_callbacks", id=job_id, now=driver.to_db_time(now))
    if released or row["quota_names"] != "[]":  # new work, or quota slots set free
        driver.notify(ex, row["queue"])
    if row["status"] == "completed" and row["parent_id"] is not None:
        _tell_parent(driver, ex, row["parent_id"], now)
    if row["has_waiters"]:
        _hand_to_waiters(driver, ex, job_id, now)


def _settle(driver: Driver, ex: Executor, job_id: int, now: dt.datetime) -> None:
    """`job_id` just got its result: release its callbacks, complete it if none are open,
    and hand the result to the jobs that returned it (in this same transaction)."""
    row = ex.one("lock_job", id=job_id)
    assert row is not None
    released = ex.run("release_callbacks", id=job_id, now=driver.to_db_time(now))
    if released or row["quota_names"] != "[]":  # new work, or quota slots set free
        driver.notify(ex, row["queue"])
    _complete_if_done(driver, ex, job_id, now)
    _hand_to_waiters(driver, ex, job_id, now)


def _hand_to_waiters(driver: Driver, ex: Executor, job_id: int, now: dt.datetime) -> None:
    """Jobs that returned `job_id` adopt its result now."""
    for waiter in ex.all("waiters", id=job_id):
        ex.run("adopt_result", id=waiter["id"], inner=job_id, now=driver.to_db_time(now))
        _settle(driver, ex, waiter["id"], now)


def _complete_if_done(driver: Driver, ex: Executor, job_id: int, now: dt.datetime) -> None:
    open_row = ex.one("count_open_callbacks", id=job_id)
    if open_row and open_row["n"]:
        return
    if not ex.run("mark_completed", id=job_id, now=driver.to_db_time(now)):
        return
    # A completed callback may be the last open one of its parent.
    parent = ex.one("parent_of", id=job_id)
    if parent and parent["parent_id"] is not None:
        _tell_parent(driver, ex, parent["parent_id"], now)


def _tell_parent(driver: Driver, ex: Executor, parent_id: int, now: dt.datetime) -> None:
    """A callback of `parent_id` completed: the parent completes if it was the last.
    The parent's row is locked first, so concurrent last callbacks count one by one."""
    locked = ex.one("lock_job", id=parent_id)
    if locked and locked["status"] == "callbacks":
        _complete_if_done(driver, ex, parent_id, now)


# -- other ends of an attempt ------------------------------------------------------------------
def reschedule(
    driver: Driver,
    job_id: int,
    attempt: int,
    dispatcher: str,
    when: dt.datetime | None,
    retry_data: dict[str, Any],
    now: dt.datetime,
) -> None:
    """Put a running job back in its queue, at the front (`when` None or past) or due at
    `when`, fenced on the attempt."""
    front = when is None or when <= now
    with driver.transaction() as ex:
        n = ex.run(
            "reschedule",
            id=job_id,
            attempt=attempt,
            dispatcher=dispatcher,
            lane=0 if front else 1,
            begin_after=driver.to_db_time(now if front or when is None else when),
            retry_data=json.dumps(retry_data),
        )
        if n != 1:
            raise ReassignedError(f"job {job_id} attempt {attempt} was reassigned")
        row = ex.one("lock_job", id=job_id)
        assert row is not None
        driver.notify(ex, row["queue"])


def wait_on(
    driver: Driver,
    job_id: int,
    attempt: int,
    dispatcher: str,
    inner_id: int,
    retry_data: dict[str, Any],
    now: dt.datetime,
    conn: object | None,
) -> None:
    """The attempt returned job `inner_id`: its job waits for that job's result, and adopts
    it at once if it is stored already."""
    with driver.transaction(conn) as ex:
        inner = ex.one("lock_job", id=inner_id)  # lock the inner job first, as _settle does
        if inner is None:
            raise JobNotFound(f"job {job_id} returned job {inner_id}, which does not exist")
        if _depends_on(ex, inner_id, job_id):
            # The inner job cannot finish before this one does: waiting would hang both.
            _fail_waiting(driver, ex, job_id, attempt, dispatcher, inner_id, retry_data, now)
            return
        n = ex.run(
            "wait_on",
            id=job_id,
            attempt=attempt,
            dispatcher=dispatcher,
            inner=inner_id,
            retry_data=json.dumps(retry_data),
        )
        if n != 1:
            raise ReassignedError(f"job {job_id} attempt {attempt} was reassigned")
        ex.run("mark_has_waiters", id=inner_id)  # under the inner job's lock (lock_job)
        if inner["status"] in DONE:
            ex.run("adopt_result", id=job_id, inner=inner_id, now=driver.to_db_time(now))
            _settle(driver, ex, job_id, now)


def _depends_on(ex: Executor, inner_id: int, job_id: int) -> bool:
    """True if `inner_id` needs `job_id`'s result to finish: it is that job, one of its
    callbacks (at any depth), or waits (through any chain) on one of those."""
    seen: set[int] = set()
    todo = [inner_id]
    while todo and len(seen) < 1000:
        current = todo.pop()
        if current == job_id:
            return True
        if current in seen:
            continue
        seen.add(current)
        row = ex.one("wait_links", id=current)
        if row is None or row["status"] in DONE:
            continue
        todo += [j for j in (row["parent_id"], row["waiting_on"]) if j is not None]
    return False


def _fail_waiting(
    driver: Driver,
    ex: Executor,
    job_id: int,
    attempt: int,
    dispatcher: str,
    inner_id: int,
    retry_data: dict[str, Any],
    now: dt.datetime,
) -> None:
    message = (
        f"job {job_id} returned job {inner_id}, which cannot finish before job {job_id} "
        f"does (the job itself, or one of its callbacks): waiting would never end"
    )
    failure = {
        "type_name": "jobq.errors.BadStatusError",
        "message": message,
        "traceback": f"jobq.errors.BadStatusError: {message}\n",
        "type_names": [
            "jobq.errors.BadStatusError",
            "jobq.errors.JobqError",
            "Exception",
        ],
        "verbose": "",
    }
    row = ex.one(
        "store_result",
        id=job_id,
        attempt=attempt,
        dispatcher=dispatcher,
        result=None,
        result_repr=f"jobq.errors.BadStatusError: {message}",
        failed=True,
        failure=json.dumps(failure),
        retry_data=json.dumps(retry_data),
        now=driver.to_db_time(now),
    )
    if row is None:
        raise ReassignedError(f"job {job_id} attempt {attempt} was reassigned")
    _after_stored(driver, ex, job_id, row, now)


def fail_unstarted(driver: Driver, job_id: int, outcome: Outcome, now: dt.datetime) -> bool:
    """Fail a claimed job that was never started (past its deadline, say)."""
    with driver.transaction() as ex:
        n = ex.run(
            "fail_unstarted",
            id=job_id,
            result_repr=outcome.result_repr,
            failure=json.dumps(outcome.failure),
            now=driver.to_db_time(now),
        )
        if n == 1:
            _settle(driver, ex, job_id, now)
        return n == 1


# -- callbacks and retries ---------------------------------------------------------------------
def add_callback(
    driver: Driver, parent_id: int, callback: NewJob, now: dt.datetime, conn: object | None
) -> int:
    with driver.transaction(conn) as ex:
        return _insert_callback(driver, ex, parent_id, callback, now)


def _insert_callback(
    driver: Driver, ex: Executor, parent_id: int, callback: NewJob, now: dt.datetime
) -> int:
    """Insert `callback` as a callback of `parent_id` (in its queue), pending at once if the
    parent's result is stored already, else "new" until it is."""
    parent = ex.one("lock_job", id=parent_id)
    if parent is None:
        raise JobNotFound(f"no job with id {parent_id}")
    released = parent["status"] in DONE
    job = dataclasses.replace(callback, queue=parent["queue"], parent_id=parent_id, begin_after=now)
    new_id = driver.insert_job(ex, job, "pending" if released else "new", now)
    ex.run("mark_has_callbacks", id=parent_id)  # under the parent's lock (lock_job)
    if released:
        driver.notify(ex, parent["queue"])
    return new_id


def _latest_retry(driver: Driver, ex: Executor, job_id: int) -> int:
    """`job_id`, or the copy that `retry_failed` last made of it (its `retried_as` chain)."""
    seen = {job_id}
    while True:
        row = ex.one("get_job", id=job_id)
        if row is None:
            return job_id
        copy = job_record(driver, row).annotations.get("retried_as")
        if not isinstance(copy, int) or copy in seen:
            return job_id
        seen.add(copy)
        if ex.one("get_job", id=copy) is None:  # pruned: stay with the last one left
            return job_id
        job_id = copy


def retry_failed(driver: Driver, job_id: int, now: dt.datetime) -> int | None:
    """Put a copy of a failed (completed) job as a new job, due `now`: in its queue, or as a
    new callback of its parent (of the parent's latest copy if it was retried, so that the copy
    gets the result of the run that replaced the failed one). Annotations `retried_as` (on the
    old job) and `retry_of` (on the copy) link the two. Returns the copy's id; None (and
    nothing written) if the job is not completed and failed."""
    with driver.transaction() as ex:
        locked = ex.one("lock_job", id=job_id)
        if locked is None or locked["status"] != "completed" or not locked["failed"]:
            return None
        row = ex.one("get_job", id=job_id)
        assert row is not None
        record = job_record(driver, row)
        copy = NewJob(
            queue=record.queue,
            call=record.call,
            call_repr=record.call_repr,
            begin_after=now,
            job_class=record.job_class,
            retry_policy=record.retry_policy,
            failure_log_level=record.failure_log_level,
            quota_names=record.quota_names,
            priority=record.priority,
            # The policy's settings (put(retries=N)) go with the copy; its counts start afresh.
            retry_data={k: v for k, v in record.retry_data.items() if k in SETTINGS} or None,
            keep_result=record.keep_result,  # a copy is kept as long as the job it copies
            rate_limits=record.rate_limits,  # and counts against the same rate limits
        )
        if record.parent_id is not None:
            parent_id = _latest_retry(driver, ex, record.parent_id)
            new_id = _insert_callback(driver, ex, parent_id, copy, now)
        else:
            ex.run("ensure_queue", queue=record.queue, now=driver.to_db_time(now))
            new_id = driver.insert_job(ex, copy, "pending", now)
            driver.notify(ex, record.queue)
        annotate(ex, job_id, "retried_as", json.dumps(new_id))
        annotate(ex, new_id, "retry_of", json.dumps(job_id))
        return new_id
