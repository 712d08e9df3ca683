"""The Store contract, exercised directly (`db.store`) on both engines.

Every operation of `jobq.store.base.Store` that the job life cycle uses: enqueueing, queue
order, claims, fencing of an attempt's writes, callbacks and their release, jobs adopting
an inner job's result, and failing jobs that never started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jobfuncs
import pytest

import jobq
from jobq.model.codec import call_repr, encode_call
from jobq.model.failure import failure_dict
from jobq.store import postgres as postgres_store
from jobq.store import sqlite as sqlite_store
from jobq.store._schema import load_queries
from jobq.store.base import JobQuery, JobRecord, NewJob, Outcome, Store

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1, 16, 0, tzinfo=UTC)
A = "00000000-0000-0000-0000-00000000000a"  # dispatcher UUIDs
B = "00000000-0000-0000-0000-00000000000b"


def at(minutes: float) -> dt.datetime:
    """T0 (16:00 UTC) plus some minutes."""
    return T0 + dt.timedelta(minutes=minutes)


def new_job(
    db: jobq.Database,
    *args: Any,
    func: Any = jobfuncs.add,
    queue: str = "",
    begin_after: dt.datetime = T0,
    begin_by: float | None = None,
) -> NewJob:
    return NewJob(
        queue=queue,
        call=encode_call(db.codec, func, args, {}),
        call_repr=call_repr(func, args, {}),
        begin_after=begin_after,
        begin_by=begin_by,
    )


def put(db: jobq.Database, *args: Any, now: dt.datetime = T0, **kw: Any) -> int:
    (job_id,) = db.store.enqueue([new_job(db, *args, **kw)], now)
    return job_id


def get(store: Store, job_id: int) -> JobRecord:
    record = store.get(job_id)
    assert record is not None
    return record


def order(store: Store, queue: str = "", limit: int = 1000) -> list[int]:
    return [r.id for r in store.pending(queue, 0, limit)]


def value(db: jobq.Database, result: Any) -> Outcome:
    return Outcome(db.codec.dumps(result), repr(result))


def failed(error: BaseException) -> Outcome:
    failure = jobq.Failure.from_exception(error)
    return Outcome(None, str(failure), failed=True, failure=failure_dict(failure))


def claim_one(store: Store, job_id: int, dispatcher: str = A, now: dt.datetime = T0) -> JobRecord:
    """Claim exactly `job_id` for `dispatcher` (agent main)."""
    (record,) = store.claim("", dispatcher, "main", 1, now, accept=lambda r: r.id == job_id)
    assert record.id == job_id
    return record


def run_to_active(store: Store, job_id: int, dispatcher: str = A) -> JobRecord:
    record = claim_one(store, job_id, dispatcher)
    assert store.start(job_id, record.attempt, dispatcher, T0)
    return get(store, job_id)


def all_at_once(work: Callable[[Any], None], args: Sequence[Any]) -> None:
    """`work(arg)` for each of `args`, each on a thread of its own, all let go together."""
    barrier = threading.Barrier(len(args))

    def run(arg: Any) -> None:
        barrier.wait()
        work(arg)

    threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def complete(db: jobq.Database, job_id: int, result: Any = None, dispatcher: str = A) -> None:
    record = run_to_active(db.store, job_id, dispatcher)
    db.store.store_result(job_id, record.attempt, dispatcher, value(db, result), T0)


def add_callback(db: jobq.Database, parent_id: int, *args: Any, **kw: Any) -> int:
    return db.store.add_callback(parent_id, new_job(db, *args, **kw), T0)


def result_of(db: jobq.Database, job_id: int) -> Any:
    payload = db.store.get_result(job_id)
    return None if payload is None else db.codec.loads(payload)


# -- enqueue and get ------------------------------------------------------------------------


def test_enqueue_then_get_returns_the_stored_record(db: jobq.Database) -> None:
    ids = db.store.enqueue(
        [new_job(db, 1, 2), new_job(db, 3, 4, begin_after=at(30), begin_by=60.0)], T0
    )
    assert len(ids) == 2 and ids[0] < ids[1]
    first, second = get(db.store, ids[0]), get(db.store, ids[1])
    assert first.status == "pending" and first.queue == ""
    assert first.begin_after == T0 and first.begin_by is None
    assert first.attempt == 0 and first.dispatcher_uuid is None
    assert first.call_repr == "jobfuncs.add(1, 2)"
    assert first.created == T0 and first.active_start is None
    assert db.codec.loads(first.call) == (jobfuncs.add, (1, 2), {})
    assert second.begin_after == at(30) and second.begin_by == 60.0
    assert db.store.get_result(ids[0]) is None
    assert db.store.count_pending("") == 2


def test_get_of_an_unknown_job_is_none_and_its_result_is_job_not_found(db: jobq.Database) -> None:
    assert db.store.get(999_999) is None
    with pytest.raises(jobq.JobNotFound):
        db.store.get_result(999_999)


def test_queues_are_separate(db: jobq.Database) -> None:
    a = put(db, 1, 1, queue="alpha")
    b = put(db, 2, 2, queue="beta")
    assert order(db.store, "alpha") == [a]
    assert order(db.store, "beta") == [b]
    assert db.store.claim("alpha", A, "main", 10, T0) != []
    assert order(db.store, "beta") == [b]


def test_a_new_jobs_retry_data_is_stored_by_every_insert(db: jobq.Database) -> None:
    """A job put with its policy's settings (`put(retries=N)`) keeps them, put alone, in a
    batch (each engine's bulk insert), or as a callback; without, its retry data is empty."""
    settings = {"retries": 2}
    alone = db.store.enqueue([dataclasses.replace(new_job(db, 1, 1), retry_data=settings)], T0)
    batch = db.store.enqueue(
        [dataclasses.replace(new_job(db, i, 1), retry_data=settings) for i in range(3)]
        + [new_job(db, 9, 9)],
        T0,
    )
    callback = db.store.add_callback(
        alone[0], dataclasses.replace(new_job(db, 5, 5), retry_data=settings), T0
    )
    for job_id in [*alone, *batch[:3], callback]:
        assert get(db.store, job_id).retry_data == settings
    assert get(db.store, batch[3]).retry_data == {}


# -- queue order ----------------------------------------------------------------------------


def test_queue_order_merges_due_and_scheduled_jobs_as_the_catalogue_example(
    db: jobq.Database,
) -> None:
    # Catalogue 3.2: held job4 16:01, job3 16:02, job8 16:30; immediate job6 (put at 16:00)
    # and job7 (pre-dated 15:35, put after job6) -> [job6, job7, job4, job3, job8].
    job4 = put(db, 4, 0, begin_after=at(1))
    job3 = put(db, 3, 0, begin_after=at(2))
    job8 = put(db, 8, 0, begin_after=at(30))
    job6 = put(db, 6, 0)
    job7 = put(db, 7, 0, begin_after=at(-25))
    assert order(db.store) == [job6, job7, job4, job3, job8]


def test_put_back_jobs_come_first_in_fifo_order(db: jobq.Database) -> None:
    j1, j2, j3 = put(db, 1, 0), put(db, 2, 0), put(db, 3, 0)
    pulled = db.store.pull("", 2)
    assert pulled is not None and pulled.id == j3 and pulled.status == "new"
    assert order(db.store) == [j1, j2]
    assert db.store.put_back("", j3, at(1))
    other = db.store.pull("", 1)
    assert other is not None and other.id == j1
    assert db.store.put_back("", j1, at(2))
    assert order(db.store) == [j3, j1, j2]
    assert [r.id for r in db.store.claim("", A, "main", 3, at(3))] == [j3, j1, j2]


def test_pull_by_index_and_from_the_end(db: jobq.Database) -> None:
    j1, j2, j3 = put(db, 1, 0), put(db, 2, 0), put(db, 3, 0)
    last = db.store.pull("", -1)
    assert last is not None and last.id == j3
    assert db.store.pull("", 5) is None
    assert db.store.pull("", -3) is None
    first = db.store.pull("", 0)
    assert first is not None and first.id == j1
    assert order(db.store) == [j2]


def test_remove_takes_only_a_pending_job_of_that_queue(db: jobq.Database) -> None:
    j1 = put(db, 1, 0)
    assert not db.store.remove("other", j1)
    assert db.store.remove("", j1)
    assert get(db.store, j1).status == "new"
    assert not db.store.remove("", j1)


def test_requeue_keeps_id_and_puts_at_the_tail(db: jobq.Database) -> None:
    j1, j2 = put(db, 1, 0), put(db, 2, 0)
    assert db.store.pull("", 0) is not None
    assert db.store.requeue(j1, "", T0, None, None, at(1))
    assert order(db.store) == [j2, j1]
    assert get(db.store, j1).begin_after == T0
    # a pending job cannot be requeued (it is not "new")
    assert not db.store.requeue(j1, "", T0, None, None, at(2))


def test_put_back_refuses_a_job_that_is_not_new(db: jobq.Database) -> None:
    j1 = put(db, 1, 0)
    assert not db.store.put_back("", j1, T0)
    assert order(db.store) == [j1]


# -- claim ----------------------------------------------------------------------------------


def test_claim_takes_up_to_limit_due_jobs_in_order_and_bumps_the_attempt(
    db: jobq.Database,
) -> None:
    ids = [put(db, i, 0) for i in range(5)]
    claimed = db.store.claim("", A, "main", 2, at(1))
    assert [r.id for r in claimed] == ids[:2]
    for record in claimed:
        assert record.status == "assigned"
        assert record.attempt == 1
        assert record.dispatcher_uuid == A and record.agent_name == "main"
        assert record.assigned_at == at(1)
        assert get(db.store, record.id) == record
    assert order(db.store) == ids[2:]
    assert db.store.claim("", A, "main", 0, at(1)) == []


def test_claim_returns_jobs_in_queue_order_even_when_pre_dated(db: jobq.Database) -> None:
    undated = put(db, 1, 0)
    predated = put(db, 2, 0, begin_after=at(-25))  # put after `undated`: the FIFO tail
    assert order(db.store) == [undated, predated]
    assert [r.id for r in db.store.claim("", A, "main", 2, T0)] == [undated, predated]


def test_claim_takes_only_due_jobs(db: jobq.Database) -> None:
    later = put(db, 1, 0, begin_after=at(30))
    assert db.store.claim("", A, "main", 5, at(29)) == []
    assert get(db.store, later).status == "pending"
    (record,) = db.store.claim("", A, "main", 5, at(30))
    assert record.id == later


def test_a_claim_after_a_reschedule_bumps_the_attempt_again(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    first = run_to_active(db.store, job_id)
    assert first.attempt == 1
    db.store.reschedule(job_id, 1, A, None, {"n": 1}, T0)
    rescheduled = get(db.store, job_id)
    assert rescheduled.status == "pending" and rescheduled.lane == 0
    assert rescheduled.retry_data == {"n": 1} and rescheduled.active_start is None
    second = claim_one(db.store, job_id, B)
    assert second.attempt == 2 and second.dispatcher_uuid == B


def test_reschedule_to_a_later_time_holds_the_job_until_then(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    other = put(db, 2, 0)
    run_to_active(db.store, job_id)
    db.store.reschedule(job_id, 1, A, at(60), {}, T0)
    record = get(db.store, job_id)
    assert record.status == "pending" and record.begin_after == at(60) and record.lane == 1
    assert order(db.store) == [other, job_id]
    assert [r.id for r in db.store.claim("", A, "main", 5, at(59))] == [other]
    assert [r.id for r in db.store.claim("", A, "main", 5, at(60))] == [job_id]


def test_claim_with_accept_skips_refused_jobs_and_leaves_them_pending(
    db: jobq.Database,
) -> None:
    a1 = put(db, 1, 0)
    d1 = put(db, 2, func=jobfuncs.double)
    a2 = put(db, 3, 0)
    d2 = put(db, 4, func=jobfuncs.double)
    seen: list[int] = []

    def only_double(record: JobRecord) -> bool:
        seen.append(record.id)
        return record.call_repr.startswith("jobfuncs.double")

    claimed = db.store.claim("", A, "main", 1, T0, accept=only_double)
    assert [r.id for r in claimed] == [d1]
    assert claimed[0].status == "assigned" and claimed[0].attempt == 1
    assert seen[:2] == [a1, d1]
    assert [r.id for r in db.store.claim("", A, "main", 5, T0, accept=only_double)] == [d2]
    assert db.store.claim("", A, "main", 5, T0, accept=only_double) == []
    assert order(db.store) == [a1, a2]
    assert get(db.store, a1).attempt == 0


@pytest.mark.parametrize("filtered", [False, True], ids=["plain", "accept"])
def test_two_concurrent_claimers_never_take_the_same_job(db_url: str, filtered: bool) -> None:
    setup = jobq.connect(db_url)
    ids = setup.store.enqueue([new_job(setup, i, 0) for i in range(120)], T0)
    stores = [jobq.connect(db_url) for _ in range(2)]
    taken: dict[str, list[int]] = {A: [], B: []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def claimer(db: jobq.Database, uuid: str) -> None:
        try:
            barrier.wait()
            while True:
                accept = (lambda r: r.id % 7 != 0) if filtered else None
                records = db.store.claim("", uuid, "main", 3, T0, accept)
                if not records:
                    return
                taken[uuid].extend(r.id for r in records)
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=claimer, args=(db, uuid))
        for db, uuid in zip(stores, (A, B), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert not errors
        assert not set(taken[A]) & set(taken[B])
        expected = [i for i in ids if i % 7 != 0] if filtered else ids
        assert sorted(taken[A] + taken[B]) == expected
        for uuid in (A, B):
            for job_id in taken[uuid][:5]:
                record = get(setup.store, job_id)
                assert record.dispatcher_uuid == uuid and record.attempt == 1
        assert setup.store.count_pending("") == len(ids) - len(expected)
    finally:
        for db in (setup, *stores):
            db.close()


# -- fencing --------------------------------------------------------------------------------


def test_start_is_fenced_on_attempt_and_dispatcher(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    record = claim_one(db.store, job_id)
    assert not db.store.start(job_id, record.attempt + 1, A, T0)
    assert not db.store.start(job_id, record.attempt, B, T0)
    assert get(db.store, job_id) == record  # nothing changed
    assert db.store.start(job_id, record.attempt, A, at(1))
    active = get(db.store, job_id)
    assert active.status == "active" and active.active_start == at(1)
    assert db.store.owns(job_id, record.attempt, A)
    assert not db.store.owns(job_id, record.attempt, B)
    assert not db.store.start(job_id, record.attempt, A, at(2))  # only once


def test_starts_from_many_threads_at_once_are_each_fenced(db: jobq.Database) -> None:
    """Threads starting jobs claimed ahead at the same moment (committed together, several
    per statement) each get their own answer: a stale attempt among them starts nothing."""
    ids = [put(db, i, 0) for i in range(12)]
    records = {job_id: claim_one(db.store, job_id) for job_id in ids}
    stale = ids[4]
    started: dict[int, bool] = {}

    def start(job_id: int) -> None:
        attempt = records[job_id].attempt + (1 if job_id == stale else 0)
        started[job_id] = db.store.start(job_id, attempt, A, at(1))

    all_at_once(start, ids)
    assert started == {job_id: job_id != stale for job_id in ids}
    assert get(db.store, stale).status == "assigned"
    for job_id in ids:
        if job_id != stale:
            record = get(db.store, job_id)
            assert record.status == "active" and record.active_start == at(1)


def test_starts_from_many_threads_at_once_each_give_way_to_a_put_back_job(
    db: jobq.Database,
) -> None:
    """Jobs claimed ahead, started by many threads at the same moment (several a statement),
    none start while a job put back at the front of their queue is due or held unstarted by
    their dispatcher, nor while another queue's front holds nothing back; once the put-back
    job is started, they all start."""
    ids = [put(db, i, 0) for i in range(12)]
    other = put(db, 0, 0, queue="other")
    records = {job_id: claim_one(db.store, job_id) for job_id in ids}
    pulled = db.store.pull("other", 0)
    assert pulled is not None and pulled.id == other and db.store.put_back("other", other, T0)
    front = put(db, 99, 0)
    assert db.store.pull("", -1) is not None and db.store.put_back("", front, T0)
    started: dict[int, bool] = {}

    def start(job_id: int) -> None:
        started[job_id] = db.store.start(job_id, records[job_id].attempt, A, at(1))

    all_at_once(start, ids)  # the put-back job is due and free to claim
    assert started == {job_id: False for job_id in ids}
    held = claim_one(db.store, front)
    all_at_once(start, ids)  # their dispatcher holds it unstarted
    assert started == {job_id: False for job_id in ids}
    assert db.store.start(front, held.attempt, A, at(1))
    all_at_once(start, ids)  # the other queue's put-back job holds nothing of this one back
    assert started == {job_id: True for job_id in ids}
    assert {get(db.store, job_id).status for job_id in ids} == {"active"}


def start_together(db: jobq.Database, starts: list[tuple[int, int, str]]) -> list[bool]:
    """Start (job id, attempt, dispatcher) each, committed together as the engine commits
    several threads' starts at once: on PostgreSQL one start_jobs statement (a start lane's
    flush), on SQLite start_job statements in one transaction."""
    store: Any = db.store
    now = store.driver.to_db_time(at(1))
    params = [
        {"id": job_id, "attempt": attempt, "dispatcher": dispatcher, "now": now}
        for job_id, attempt, dispatcher in starts
    ]
    if store.engine == "postgres":
        answers: list[Any] = store.driver._start_lanes[0]._start_batch(params)
        assert not [a for a in answers if isinstance(a, BaseException)], answers
        return [bool(a) for a in answers]
    with store.driver.transaction() as ex:
        return [ex.run("start_job", **p) == 1 for p in params]


def test_starts_committed_together_are_each_fenced_and_each_give_way_on_their_own_queue(
    db: jobq.Database,
) -> None:
    """Several starts in one statement: each row is fenced on its own attempt and dispatcher,
    and gives way (or not) by what is at the front of its own job's queue and what its own
    dispatcher holds there."""
    mine = [put(db, i, 0) for i in range(4)]  # claimed ahead by A from the back lane
    theirs = put(db, 9, 0)  # claimed ahead by B
    others = [put(db, i, 0, queue="other") for i in range(3)]  # A's, in a queue of their own
    records = {job_id: claim_one(db.store, job_id) for job_id in mine}
    records[theirs] = claim_one(db.store, theirs, dispatcher=B)
    for job_id in others:
        (records[job_id],) = db.store.claim(
            "other", A, "main", 1, T0, accept=lambda r, job_id=job_id: r.id == job_id
        )
    front = put(db, 99, 0)
    assert db.store.pull("", -1) is not None and db.store.put_back("", front, T0)

    def start(*ids: int, stale: int | None = None, by_b: int | None = None) -> list[bool]:
        return start_together(
            db,
            [
                (
                    i,
                    records[i].attempt + (i == stale),
                    B if i == by_b else records[i].dispatcher_uuid or "",
                )
                for i in ids
            ],
        )

    # The put-back job is due and free: no job of its queue starts, the other queue's do.
    assert start(*mine, theirs, *others[:2]) == [False] * 5 + [True, True]
    # A holds it unstarted: A's jobs of that queue wait for it, B's and the other queue's not.
    held = claim_one(db.store, front)
    assert start(*mine, theirs, others[2]) == [False] * 4 + [True, True]
    # Started: A's jobs start, but for a stale attempt and a start in another's name.
    assert db.store.start(front, held.attempt, A, at(1))
    assert start(*mine, stale=mine[1], by_b=mine[2]) == [True, False, False, True]
    assert {get(db.store, i).status for i in mine} == {"active", "assigned"}
    assert get(db.store, mine[1]).status == get(db.store, mine[2]).status == "assigned"
    assert start(mine[1], mine[2]) == [True, True]
    assert {get(db.store, i).status for i in (*mine, theirs, *others)} == {"active"}
    assert get(db.store, mine[0]).active_start == at(1)


def test_a_start_does_not_wait_for_another_threads_start(db: jobq.Database) -> None:
    """PostgreSQL starts a thread's jobs on a lane (a connection) of its own: one start held up
    at the server (its row locked by another session) does not hold the next thread's."""
    if db.store.engine != "postgres":
        pytest.skip("SQLite has one writer: its starts commit one transaction at a time")
    held, free = put(db, 1, 0), put(db, 2, 0)
    records = {job_id: claim_one(db.store, job_id) for job_id in (held, free)}
    locker = db.store.attempt_connection()
    try:
        locker.raw.execute("SELECT 1 FROM jobq_jobs WHERE id = %s FOR UPDATE", (held,))
        results: dict[int, bool] = {}
        first = threading.Thread(
            target=lambda: results.update(
                {held: db.store.start(held, records[held].attempt, A, T0)}
            )
        )
        first.start()
        deadline = time.monotonic() + 10
        while not _waits_for_a_lock(db) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _waits_for_a_lock(db)
        second = threading.Thread(
            target=lambda: results.update(
                {free: db.store.start(free, records[free].attempt, A, T0)}
            )
        )
        second.start()
        second.join(10)
        assert results == {free: True}  # while the first still waits
    finally:
        locker.close()
    first.join(10)
    assert results == {held: True, free: True}
    assert get(db.store, held).status == "active" and get(db.store, free).status == "active"


def _waits_for_a_lock(db: jobq.Database) -> bool:
    with db.store.driver.read() as ex:  # type: ignore[attr-defined]
        ex.raw(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%active_start%'"
        )
        return bool(ex.cursor.fetchone()["n"])


@pytest.mark.parametrize("wrong", ["attempt", "dispatcher"])
def test_writes_of_an_attempt_are_fenced(db: jobq.Database, wrong: str) -> None:
    inner = put(db, 1, 0)
    job_id = put(db, 2, 0)
    record = run_to_active(db.store, job_id)
    attempt = record.attempt + 1 if wrong == "attempt" else record.attempt
    dispatcher = B if wrong == "dispatcher" else A
    before = get(db.store, job_id)
    with pytest.raises(jobq.ReassignedError):
        db.store.store_result(job_id, attempt, dispatcher, value(db, 42), at(1))
    with pytest.raises(jobq.ReassignedError):
        db.store.reschedule(job_id, attempt, dispatcher, None, {"x": 1}, at(1))
    with pytest.raises(jobq.ReassignedError):
        db.store.reschedule(job_id, attempt, dispatcher, at(30), {"x": 1}, at(1))
    with pytest.raises(jobq.ReassignedError):
        db.store.wait_on(job_id, attempt, dispatcher, inner, {"x": 1}, at(1))
    assert get(db.store, job_id) == before
    assert db.store.get_result(job_id) is None
    assert get(db.store, inner).status == "pending"
    # The rightful owner can still finish it.
    db.store.store_result(job_id, record.attempt, A, value(db, 42), at(2))
    assert get(db.store, job_id).status == "completed"
    assert result_of(db, job_id) == 42


def test_a_reassigned_job_refuses_the_old_attempts_result(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    first = run_to_active(db.store, job_id, A)
    db.store.reschedule(job_id, first.attempt, A, None, {}, T0)  # as after a false death
    second = run_to_active(db.store, job_id, B)
    with pytest.raises(jobq.ReassignedError):
        db.store.store_result(job_id, first.attempt, A, value(db, "stale"), at(1))
    assert get(db.store, job_id) == second
    db.store.store_result(job_id, second.attempt, B, value(db, "fresh"), at(1))
    assert result_of(db, job_id) == "fresh"


def test_store_result_of_a_completed_job_raises_and_changes_nothing(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    complete(db, job_id, "first")
    before = get(db.store, job_id)
    with pytest.raises(jobq.ReassignedError):
        db.store.store_result(job_id, before.attempt, A, value(db, "second"), at(5))
    assert get(db.store, job_id) == before
    assert result_of(db, job_id) == "first"


# -- results and callbacks --------------------------------------------------------------------


def test_store_result_without_callbacks_completes_the_job(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    record = run_to_active(db.store, job_id)
    db.store.store_result(job_id, record.attempt, A, value(db, {"x": 1}), at(1))
    done = get(db.store, job_id)
    assert done.status == "completed" and not done.failed
    assert done.active_end == at(1) and done.completed_at == at(1)
    assert result_of(db, job_id) == {"x": 1}


def test_a_failed_outcome_is_stored_as_a_failure(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    record = run_to_active(db.store, job_id)
    db.store.store_result(job_id, record.attempt, A, failed(RuntimeError("bad")), at(1))
    done = get(db.store, job_id)
    assert done.failed and done.status == "completed"
    assert done.failure is not None and done.failure["type_name"] == "RuntimeError"
    assert done.failure["message"] == "bad"
    assert db.store.get_result(job_id) is None


def test_callbacks_wait_as_new_until_the_parent_has_a_result(db: jobq.Database) -> None:
    parent = put(db, 1, 0)
    cb = add_callback(db, parent, func=jobfuncs.describe_result)
    record = get(db.store, cb)
    assert record.status == "new" and record.parent_id == parent
    assert order(db.store) == [parent]
    assert [r.id for r in db.store.claim("", A, "main", 5, T0)] == [parent]


def test_callbacks_are_released_in_the_transaction_that_stores_the_result(
    db: jobq.Database,
) -> None:
    parent = put(db, 1, 0)
    cb1 = add_callback(db, parent, func=jobfuncs.describe_result)
    cb2 = add_callback(db, parent, func=jobfuncs.describe_result)
    record = run_to_active(db.store, parent)
    conn = db.store.attempt_connection()  # the job's own open transaction
    try:
        db.store.store_result(parent, record.attempt, A, value(db, 7), at(1), conn=conn.raw)
        # Not committed yet: other connections still see the parent active, callbacks new.
        assert get(db.store, parent).status == "active"
        assert get(db.store, cb1).status == "new"
        conn.commit()
    finally:
        conn.close()
    assert get(db.store, parent).status == "callbacks"
    assert {get(db.store, cb).status for cb in (cb1, cb2)} == {"pending"}
    assert order(db.store) == [cb1, cb2]


def test_rolled_back_result_releases_nothing(db: jobq.Database) -> None:
    parent = put(db, 1, 0)
    cb = add_callback(db, parent, func=jobfuncs.describe_result)
    record = run_to_active(db.store, parent)
    conn = db.store.attempt_connection()
    try:
        db.store.store_result(parent, record.attempt, A, value(db, 7), at(1), conn=conn.raw)
        conn.rollback()
    finally:
        conn.close()
    assert get(db.store, parent).status == "active"
    assert get(db.store, cb).status == "new"
    assert db.store.get_result(parent) is None


def test_parent_completes_when_its_last_callback_completes(db: jobq.Database) -> None:
    parent = put(db, 1, 0)
    cb1 = add_callback(db, parent, func=jobfuncs.describe_result)
    cb2 = add_callback(db, parent, func=jobfuncs.describe_result)
    complete(db, parent, 7)
    assert get(db.store, parent).status == "callbacks"
    complete(db, cb1, "got 7")
    assert get(db.store, parent).status == "callbacks"
    assert get(db.store, cb1).status == "completed"
    complete(db, cb2, "got 7")
    done = get(db.store, parent)
    assert done.status == "completed" and done.completed_at == T0
    assert result_of(db, parent) == 7


def test_a_callback_with_its_own_callback_completes_its_ancestors_in_turn(
    db: jobq.Database,
) -> None:
    parent = put(db, 1, 0)
    child = add_callback(db, parent, func=jobfuncs.describe_result)
    grandchild = add_callback(db, child, func=jobfuncs.describe_result)
    complete(db, parent, 1)
    assert get(db.store, grandchild).status == "new"
    complete(db, child, "got 1")
    assert get(db.store, child).status == "callbacks"
    assert get(db.store, parent).status == "callbacks"
    assert get(db.store, grandchild).status == "pending"
    complete(db, grandchild, "got 'got 1'")
    assert [get(db.store, j).status for j in (parent, child, grandchild)] == ["completed"] * 3


def test_a_callback_added_to_a_finished_job_is_pending_at_once(db: jobq.Database) -> None:
    parent = put(db, 1, 0)
    complete(db, parent, 10)
    assert get(db.store, parent).status == "completed"
    cb = add_callback(db, parent, func=jobfuncs.describe_result)
    assert get(db.store, cb).status == "pending"
    complete(db, cb, "got 10")
    assert get(db.store, parent).status == "completed"
    assert get(db.store, cb).status == "completed"


def test_add_callback_to_an_unknown_job_is_job_not_found(db: jobq.Database) -> None:
    with pytest.raises(jobq.JobNotFound):
        add_callback(db, 999_999, func=jobfuncs.describe_result)


# -- a job that returns a job -----------------------------------------------------------------


def test_wait_on_an_inner_job_that_is_already_done_adopts_its_result(
    db: jobq.Database,
) -> None:
    inner = put(db, 1, 0)
    outer = put(db, 2, 0)
    cb = add_callback(db, outer, func=jobfuncs.describe_result)
    complete(db, inner, 42)
    record = run_to_active(db.store, outer)
    db.store.wait_on(outer, record.attempt, A, inner, {"w": 1}, at(1))
    done = get(db.store, outer)
    assert done.status == "callbacks" and done.waiting_on is None and not done.failed
    assert result_of(db, outer) == 42
    assert get(db.store, cb).status == "pending"


def test_wait_on_an_inner_job_adopts_its_result_when_it_completes(db: jobq.Database) -> None:
    inner = put(db, 1, 0)
    outer = put(db, 2, 0)
    record = run_to_active(db.store, outer)
    db.store.wait_on(outer, record.attempt, A, inner, {}, at(1))
    waiting = get(db.store, outer)
    assert waiting.status == "active" and waiting.waiting_on == inner
    assert db.store.get_result(outer) is None
    complete(db, inner, 42, dispatcher=B)
    done = get(db.store, outer)
    assert done.status == "completed" and done.waiting_on is None
    assert result_of(db, outer) == 42


def test_a_chain_of_waiting_jobs_all_adopt_the_innermost_result(db: jobq.Database) -> None:
    innermost = put(db, 1, 0)
    middle = put(db, 2, 0)
    outer = put(db, 3, 0)
    rec_outer = run_to_active(db.store, outer)
    db.store.wait_on(outer, rec_outer.attempt, A, middle, {}, T0)
    rec_middle = run_to_active(db.store, middle)
    db.store.wait_on(middle, rec_middle.attempt, A, innermost, {}, T0)
    complete(db, innermost, "deep")
    assert [get(db.store, j).status for j in (innermost, middle, outer)] == ["completed"] * 3
    assert result_of(db, outer) == "deep"


def test_wait_on_a_failed_inner_job_adopts_the_failure(db: jobq.Database) -> None:
    inner = put(db, 1, 0)
    outer = put(db, 2, 0)
    record = run_to_active(db.store, outer)
    db.store.wait_on(outer, record.attempt, A, inner, {}, T0)
    rec_inner = run_to_active(db.store, inner)
    db.store.store_result(inner, rec_inner.attempt, A, failed(ValueError("inner")), T0)
    done = get(db.store, outer)
    assert done.failed and done.failure is not None
    assert done.failure["type_name"] == "ValueError" and done.failure["message"] == "inner"


def test_wait_on_an_unknown_job_is_job_not_found_and_changes_nothing(db: jobq.Database) -> None:
    outer = put(db, 1, 0)
    record = run_to_active(db.store, outer)
    with pytest.raises(jobq.JobNotFound):
        db.store.wait_on(outer, record.attempt, A, 999_999, {}, T0)
    assert get(db.store, outer) == record


def _assert_failed_bad_status(db: jobq.Database, job_id: int) -> None:
    record = get(db.store, job_id)
    assert record.status in ("callbacks", "completed") and record.failed
    assert record.waiting_on is None
    assert record.failure is not None
    assert record.failure["type_name"] == "jobq.errors.BadStatusError"
    assert jobq.Failure(
        **{**record.failure, "type_names": tuple(record.failure["type_names"])}
    ).check(jobq.JobqError)


def test_wait_on_itself_fails_the_job_instead_of_hanging(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    record = run_to_active(db.store, job_id)
    db.store.wait_on(job_id, record.attempt, A, job_id, {}, T0)
    _assert_failed_bad_status(db, job_id)


def test_wait_on_its_own_callback_fails_the_job_and_releases_the_callback(
    db: jobq.Database,
) -> None:
    job_id = put(db, 1, 0)
    child = add_callback(db, job_id, func=jobfuncs.describe_result)
    grandchild = add_callback(db, child, func=jobfuncs.describe_result)
    record = run_to_active(db.store, job_id)
    db.store.wait_on(job_id, record.attempt, A, grandchild, {}, T0)
    _assert_failed_bad_status(db, job_id)
    assert get(db.store, child).status == "pending"


def test_a_cycle_of_waiting_jobs_fails_the_job_that_closes_it(db: jobq.Database) -> None:
    a, b = put(db, 1, 0), put(db, 2, 0)
    rec_a = run_to_active(db.store, a)
    db.store.wait_on(a, rec_a.attempt, A, b, {}, T0)
    rec_b = run_to_active(db.store, b)
    db.store.wait_on(b, rec_b.attempt, A, a, {}, T0)  # b would wait on a, which waits on b
    _assert_failed_bad_status(db, b)
    assert get(db.store, a).status == "completed" and get(db.store, a).failed  # adopted


def test_a_callback_may_wait_on_its_finished_parent(db: jobq.Database) -> None:
    parent = put(db, 1, 0)
    cb = add_callback(db, parent, func=jobfuncs.describe_result)
    complete(db, parent, 12)
    record = run_to_active(db.store, cb)
    db.store.wait_on(cb, record.attempt, A, parent, {}, T0)
    assert result_of(db, cb) == 12
    assert get(db.store, parent).status == "completed"


# -- fail_unstarted ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["pending", "new", "assigned"])
def test_fail_unstarted_completes_a_job_that_never_started(db: jobq.Database, state: str) -> None:
    job_id = put(db, 1, 0)
    if state == "new":
        assert db.store.pull("", 0) is not None
    elif state == "assigned":
        claim_one(db.store, job_id)
    cb = add_callback(db, job_id, func=jobfuncs.describe_result)
    assert db.store.fail_unstarted(job_id, failed(jobq.TimeoutError("late")), at(1))
    record = get(db.store, job_id)
    assert record.status == "callbacks" and record.failed
    assert record.failure is not None and record.failure["type_name"] == "jobq.errors.TimeoutError"
    assert record.active_end == at(1)
    assert get(db.store, cb).status == "pending"
    assert order(db.store) == [cb]
    if state == "assigned":  # the claimer finds it gone
        assert not db.store.start(job_id, 1, A, at(2))


def test_fail_unstarted_without_callbacks_completes_at_once(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    assert db.store.fail_unstarted(job_id, failed(jobq.TimeoutError()), T0)
    assert get(db.store, job_id).status == "completed"
    assert db.store.count_pending("") == 0


@pytest.mark.parametrize("state", ["active", "completed"])
def test_fail_unstarted_refuses_a_started_job(db: jobq.Database, state: str) -> None:
    job_id = put(db, 1, 0)
    if state == "active":
        run_to_active(db.store, job_id)
    else:
        complete(db, job_id, 5)
    before = get(db.store, job_id)
    assert not db.store.fail_unstarted(job_id, failed(jobq.TimeoutError()), at(1))
    assert get(db.store, job_id) == before


# -- annotations ------------------------------------------------------------------------------


def test_set_annotation_merges_json_values(db: jobq.Database) -> None:
    job_id = put(db, 1, 0)
    db.store.set_annotation(job_id, "progress", 0.5)
    db.store.set_annotation(job_id, "note", {"a": [1, 2]})
    db.store.set_annotation(job_id, "progress", 1.0)
    assert get(db.store, job_id).annotations == {"progress": 1.0, "note": {"a": [1, 2]}}
    with pytest.raises(TypeError):
        db.store.set_annotation(job_id, "bad", object())
    with pytest.raises(jobq.JobNotFound):
        db.store.set_annotation(999_999, "x", 1)


# -- retrying a failed job ------------------------------------------------------------------


ALL_STATES = ("new", "pending", "assigned", "active", "callbacks", "completed")


def _failed_job(db: jobq.Database, job: NewJob) -> int:
    (job_id,) = db.store.enqueue([job], T0)
    (record,) = db.store.claim(job.queue, A, "main", 1, T0, start=True)
    assert record.id == job_id
    db.store.store_result(job_id, record.attempt, A, failed(RuntimeError("bad")), at(1))
    return job_id


def test_retry_failed_puts_a_copy_linked_both_ways(db: jobq.Database) -> None:
    job = new_job(db, 1, 2, queue="retries", begin_by=60.0)
    job.job_class = "jobfuncs:Kind"
    job.retry_policy = "jobq.model.retry:NeverRetry"
    job.failure_log_level = 40
    job.quota_names = ("q1",)
    job.put_by = "putter"
    old_id = _failed_job(db, job)
    db.store.set_annotation(old_id, "note", "kept")
    new_id = db.store.retry_failed(old_id, at(5))
    assert new_id is not None and new_id > old_id
    old, new = get(db.store, old_id), get(db.store, new_id)
    assert old.annotations == {"note": "kept", "retried_as": new_id}
    assert old.status == "completed" and old.failed
    assert new.annotations == {"retry_of": old_id}
    assert new.status == "pending" and new.attempt == 0 and not new.failed
    copied = ("queue", "call", "call_repr", "job_class", "retry_policy", "failure_log_level")
    for name in (*copied, "quota_names"):
        assert getattr(new, name) == getattr(old, name), name
    assert new.begin_after == at(5) and new.begin_by is None and new.put_by is None
    assert new.parent_id is None
    assert order(db.store, "retries") == [new_id]


@pytest.mark.parametrize("state", ["succeeded", "pending", "active", "unknown"])
def test_retry_failed_of_a_job_that_did_not_fail_is_none_and_changes_nothing(
    db: jobq.Database, state: str
) -> None:
    job_id = put(db, 1, 0)
    if state == "succeeded":
        complete(db, job_id, 5)
    elif state == "active":
        run_to_active(db.store, job_id)
    elif state == "unknown":
        job_id = 999_999
    before = db.store.get(job_id)
    count = db.store.count_jobs(JobQuery(states=ALL_STATES))
    assert db.store.retry_failed(job_id, at(5)) is None
    assert db.store.get(job_id) == before
    assert db.store.count_jobs(JobQuery(states=ALL_STATES)) == count


def test_retry_failed_of_a_callback_adds_a_new_callback_of_its_parent(
    db: jobq.Database,
) -> None:
    parent = put(db, 1, 0)
    first_cb = add_callback(db, parent, func=jobfuncs.describe_result)
    complete(db, parent, 3)  # releases the callback
    record = run_to_active(db.store, first_cb)
    db.store.store_result(first_cb, record.attempt, A, failed(RuntimeError("bad")), at(1))
    assert get(db.store, parent).status == "completed"
    new_id = db.store.retry_failed(first_cb, at(5))
    assert new_id is not None
    new = get(db.store, new_id)
    assert new.parent_id == parent and new.queue == ""
    assert new.status == "pending"  # the parent's result is stored: released at once
    assert new.call_repr == get(db.store, first_cb).call_repr
    assert new.annotations == {"retry_of": first_cb}
    assert get(db.store, first_cb).annotations == {"retried_as": new_id}
    assert new_id in {r.id for r in db.store.job_children(parent)}
    assert order(db.store) == [new_id]


# -- the query files ----------------------------------------------------------------------------

STORE_DIR = Path(jobq.__file__).parent / "store"


def test_both_engines_define_the_same_queries() -> None:
    sqlite, postgres = load_queries("sqlite"), load_queries("postgres")
    # NOTIFY, advisory locks, the batch statements of inserts, puts, completions and starts, and
    # the server's clock (liveness across machines: one SQLite file has one machine's)
    postgres_only = {
        "server_now",
        "notify",
        "migrate_lock",
        "insert_job",
        "insert_and_notify",
        "insert_puts_and_notify",
        "insert_jobs",
        "store_results_plain",
        "start_jobs",
    }
    # SQLite inserts every job with insert_job_row's positional parameters, and reads the
    # ids back (lastrowid, or a batch's consecutive ids) instead of RETURNING them
    sqlite_only = {"insert_job_row", "last_insert_id", "count_ids_between"}
    assert set(postgres) - set(sqlite) <= postgres_only
    assert set(sqlite) - sqlite_only == set(postgres) - postgres_only
    for name, text in {**sqlite, **postgres}.items():
        assert text.strip(), f"query {name} is empty"
        assert "-- name:" not in text


def test_every_query_is_used_by_the_store_code() -> None:
    source = "\n".join(p.read_text() for p in STORE_DIR.glob("*.py"))
    used = set(re.findall(r"""(?:run|one|all|many|_execute)\(\s*["'](\w+)["']""", source))
    used |= set(re.findall(r"""queries\[["'](\w+)["']\]""", source))  # sent by hand
    names = set(load_queries("sqlite")) | set(load_queries("postgres"))
    assert names - used == set(), "queries defined but never used"
    assert used - names == set(), "queries used but not defined"


def test_query_parameters_use_each_engines_placeholder_style() -> None:
    for name, text in load_queries("sqlite").items():
        assert "%(" not in text, name
    for name, text in load_queries("postgres").items():
        assert not re.search(r"(?<!:):[a-z_]+", text), name


def test_failure_dicts_round_trip_through_json() -> None:
    outcome = failed(RuntimeError("x"))
    assert outcome.failure is not None
    assert json.loads(json.dumps(outcome.failure))["type_names"][0] == "RuntimeError"


def test_a_claim_with_start_makes_jobs_active_in_the_same_statement(db: jobq.Database) -> None:
    store = db.store
    runnable = put(db, 1, 2)
    expired = put(db, 3, 4, begin_after=at(-120), begin_by=60.0)  # deadline passed at T0
    claimed = {r.id: r for r in store.claim("", A, "main", 5, T0, start=True)}
    assert set(claimed) == {runnable, expired}
    assert claimed[runnable].status == "active" and claimed[runnable].active_start == T0
    assert get(store, runnable).status == "active"
    # A job past its deadline is not started: it stays assigned, to be failed unstarted.
    assert claimed[expired].status == "assigned" and claimed[expired].active_start is None
    # The claim was the fenced start: the attempt's result can be stored directly.
    store.store_result(runnable, claimed[runnable].attempt, A, value(db, 3), at(1))
    assert get(store, runnable).status == "completed"


def _store_result_while_held(db: jobq.Database, job_id: int, hold: Any) -> None:
    """Run store_result for `job_id` while another transaction (`hold`, which has already
    written under the job's lock) is open; commit `hold` once store_result waits."""
    record = get(db.store, job_id)
    done = threading.Event()

    def store() -> None:
        db.store.store_result(job_id, record.attempt, A, value(db, "r"), at(2))
        done.set()

    thread = threading.Thread(target=store)
    thread.start()
    assert not done.wait(0.3)  # it waits for the row (PostgreSQL) or the database (SQLite)
    hold.commit()
    hold.close()
    thread.join(30)
    assert done.is_set()


def test_a_callback_added_while_the_result_is_being_stored_is_not_lost(
    db: jobq.Database,
) -> None:
    parent = put(db, 1, 2)
    run_to_active(db.store, parent)
    hold = db.store.attempt_connection()
    callback = db.store.add_callback(parent, new_job(db, func=jobfuncs.identity), T0, conn=hold.raw)
    _store_result_while_held(db, parent, hold)
    assert get(db.store, parent).status == "callbacks"
    assert get(db.store, callback).status == "pending"  # released, not stuck "new"


def test_a_waiter_added_while_the_result_is_being_stored_adopts_it(db: jobq.Database) -> None:
    inner, outer = put(db, 1, 2), put(db, 3, 4)
    run_to_active(db.store, inner)
    run_to_active(db.store, outer, dispatcher=B)
    record = get(db.store, outer)
    hold = db.store.attempt_connection()
    db.store.wait_on(outer, record.attempt, B, inner, {}, T0, conn=hold.raw)
    _store_result_while_held(db, inner, hold)
    assert get(db.store, outer).status == "completed"
    assert result_of(db, outer) == "r"


# -- completions of many threads at once, batch inserts ---------------------------------------


def test_concurrent_completions_each_commit_and_a_lost_claim_writes_nothing(
    db: jobq.Database,
) -> None:
    """Threads completing jobs at once (SQLite groups their commits) each get their own
    outcome: the completions commit, with callbacks released; a stale attempt among them
    raises ReassignedError and leaves its row (and the others) as they were."""
    ids = [put(db, i, 0) for i in range(12)]
    callback_parent = ids[0]
    callback = add_callback(db, callback_parent, 1)
    records = {job_id: run_to_active(db.store, job_id) for job_id in ids}
    stale = ids[5]
    errors: dict[int, BaseException] = {}

    def finish(job_id: int) -> None:
        attempt = records[job_id].attempt + (1 if job_id == stale else 0)
        try:
            db.store.store_result(job_id, attempt, A, value(db, job_id * 10), at(1))
        except BaseException as error:
            errors[job_id] = error

    all_at_once(finish, ids)
    assert set(errors) == {stale} and isinstance(errors[stale], jobq.ReassignedError)
    assert get(db.store, stale).status == "active" and db.store.get_result(stale) is None
    for job_id in ids:
        if job_id not in (stale, callback_parent):
            assert get(db.store, job_id).status == "completed"
            assert result_of(db, job_id) == job_id * 10
    assert get(db.store, callback_parent).status == "callbacks"
    assert get(db.store, callback).status == "pending"


def test_outcomes_handed_over_later_gather_into_one_commit(db: jobq.Database) -> None:
    """Outcomes handed over without waiting (a job's thread goes on) linger for others to
    share their commit; a result stored by a caller who waits commits at once, alone; and the
    batch commits, each told, as soon as it is full."""
    driver: Any = db.store.driver
    group = driver.completions if db.store.engine == "postgres" else driver.group
    group._linger, group._batch_limit = 60.0, 4
    ids = [put(db, i, 0) for i in range(5)]
    records = {job_id: run_to_active(db.store, job_id) for job_id in ids}
    told: dict[int, BaseException | None] = {}
    all_told = threading.Event()

    def later(job_id: int) -> None:
        def then(error: BaseException | None) -> None:
            told[job_id] = error
            if len(told) == 4:
                all_told.set()

        attempt = records[job_id].attempt
        db.store.store_result_later(job_id, attempt, A, value(db, job_id), at(1), then)

    for job_id in ids[:3]:
        later(job_id)
    waits = ids[3]
    db.store.store_result(waits, records[waits].attempt, A, value(db, "now"), at(1))
    assert get(db.store, waits).status == "completed" and result_of(db, waits) == "now"
    assert not told and {get(db.store, job_id).status for job_id in ids[:3]} == {"active"}
    later(ids[4])  # the fourth fills the batch
    assert all_told.wait(10)
    assert told == {job_id: None for job_id in [*ids[:3], ids[4]]}
    for job_id in [*ids[:3], ids[4]]:
        assert get(db.store, job_id).status == "completed" and result_of(db, job_id) == job_id


def test_single_puts_from_many_threads_at_once_each_get_their_own_row(
    db: jobq.Database,
) -> None:
    """Puts of many threads at the same moment share commits (both engines group them): each
    put returns its own job's id, every row holds its own job and the time of its own put, and
    a put the database refuses fails alone."""
    threads, per_thread = 8, 6
    bad_thread, bad_put = 3, 2
    results: dict[tuple[int, int], int | BaseException] = {}

    def put_some(thread: int) -> None:
        for i in range(per_thread):
            job = new_job(db, thread, i)
            if (thread, i) == (bad_thread, bad_put):
                job = dataclasses.replace(job, parent_id=2**63)  # past a 64-bit id
            try:
                (results[(thread, i)],) = db.store.enqueue([job], at(thread + i / 10))
            except Exception as error:
                results[(thread, i)] = error

    all_at_once(put_some, range(threads))
    assert isinstance(results.pop((bad_thread, bad_put)), Exception)
    assert len(results) == threads * per_thread - 1
    ids = list(results.values())
    assert all(isinstance(job_id, int) for job_id in ids) and len(set(ids)) == len(ids)
    for (thread, i), job_id in results.items():
        assert isinstance(job_id, int)
        record = get(db.store, job_id)
        assert record.call_repr == new_job(db, thread, i).call_repr
        assert record.status == "pending" and record.created == at(thread + i / 10)
    assert db.store.count_pending("") == len(ids)


def test_threads_putting_in_a_loop_share_each_commit(db: jobq.Database) -> None:
    """Single puts from 8 threads, each putting again once its put returns (a web app's
    request threads under load): the first back after a commit waits for the others, so
    commits hold nearly all 8 puts, rather than one commit of a single put between each two
    of the rest (about 4 puts a commit without it), and every put is still its own row."""
    driver: Any = db.store.driver
    group = driver.puts if db.store.engine == "postgres" else driver.group
    group._gather_wait = 0.5  # long enough for a loaded test machine; a put alone never waits
    flushed: list[int] = []
    flush = group._flush

    def counted(batch: list[Any]) -> list[Any]:
        flushed.append(len(batch))
        return flush(batch)

    group._flush = counted
    threads, per_thread = 8, 15
    ids: list[int] = []

    def put_some(thread: int) -> None:
        for i in range(per_thread):
            ids.extend(db.store.enqueue([new_job(db, thread, i)], at(i)))

    all_at_once(put_some, range(threads))
    assert len(ids) == len(set(ids)) == threads * per_thread
    assert db.store.count_pending("") == threads * per_thread
    assert sum(flushed) == threads * per_thread
    assert len(flushed) <= 1.5 * per_thread, flushed  # 15 commits of 8 at best


def test_threads_that_put_and_end_leave_no_connection_open_behind_them(
    db: jobq.Database,
) -> None:
    """An application that starts a thread per request (a threading HTTP server): each thread
    puts and ends. The process's open files stay as many as its live threads need, instead of
    growing by a SQLite connection (its file and WAL) for every thread that ever put."""

    def open_files() -> int:
        """The process's open files; on SQLite, those of this database (its file, WAL and
        shared memory), which no other test's thread left in this process opens meanwhile.
        Collected first: sqlite3 closes a connection whose statement a cursor still holds
        only once that cursor is freed, which a reference cycle may hold up until the next
        collection (the connections are closed all the same; not kept, they would stay)."""
        gc.collect()
        fds = os.listdir("/proc/self/fd")
        if db.store.engine != "sqlite":
            return len(fds)
        path = os.path.realpath(db.store.driver.path)  # type: ignore[attr-defined]
        targets = []
        for fd in fds:
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed since
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        return sum(target.startswith(path) for target in targets)

    def round_of_threads() -> None:
        threads = [
            threading.Thread(target=lambda: [put(db, i, 0) for i in range(3)]) for _ in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    def one_more_thread() -> int:
        """Open files once one more thread has put (on SQLite its connection is the one that
        closes those of the threads that ended) and ended."""
        thread = threading.Thread(target=put, args=(db, 0, 0))
        thread.start()
        thread.join(30)
        return open_files()

    round_of_threads()  # connections every run keeps (a pool, the shared unsynced one)
    after_one = one_more_thread()
    for _ in range(4):
        round_of_threads()
    assert one_more_thread() <= after_one + 2, "open files grew with the threads that ended"
    assert db.store.count_pending("") == 5 * 20 * 3 + 2


def test_a_batch_insert_returns_each_job_its_own_id(db: jobq.Database) -> None:
    first = put(db, 0, 0)
    jobs = [new_job(db, i, 1) for i in range(50)]
    ids = db.store.enqueue(jobs, T0)
    assert len(set(ids)) == 50 and min(ids) > first
    for i, job_id in enumerate(ids):
        assert get(db.store, job_id).call_repr == jobs[i].call_repr
    assert order(db.store) == [first, *ids]


def test_a_batch_insert_in_several_parts_returns_each_job_its_own_id(db: jobq.Database) -> None:
    """Both engines send a big batch in parts of INSERT_PART rows (PostgreSQL pipelined,
    SQLite as statements of many VALUES rows): the ids still come back in the jobs' order,
    each row is its own job's, and queue order follows the ids."""
    engine = postgres_store if db.store.engine == "postgres" else sqlite_store
    part = engine.INSERT_PART
    count = 2 * part + 7
    first = put(db, 0, 0)
    jobs = [new_job(db, i, 1) for i in range(count)]
    ids = db.store.enqueue(jobs, T0)
    assert len(set(ids)) == count and min(ids) > first
    assert ids == sorted(ids)
    for i in (0, part - 1, part, 2 * part, count - 1):
        assert get(db.store, ids[i]).call_repr == jobs[i].call_repr
    assert order(db.store, limit=count + 1) == [first, *ids]


def test_a_batch_insert_fits_a_sqlite_build_with_few_parameters(db: jobq.Database) -> None:
    """SQLite inserts a batch as statements of many rows: a build that allows fewer bound
    parameters per statement than INSERT_PART rows need gets smaller parts, not an error."""
    if db.store.engine != "sqlite":
        pytest.skip("PostgreSQL sends a part's rows as one JSON parameter")
    conn = db.store.driver.connection()  # type: ignore[attr-defined]
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # 7 rows of 14 parameters
    try:
        jobs = [new_job(db, i, 2) for i in range(50)]
        ids = db.store.enqueue(jobs, T0)
    finally:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)
    assert len(ids) == 50 and ids == sorted(ids)
    assert [get(db.store, i).call_repr for i in ids] == [job.call_repr for job in jobs]


def test_each_row_of_a_batch_keeps_its_own_fields(db: jobq.Database) -> None:
    """A batch's rows differ in every field a put can set; across a part boundary, each
    stored row has its own job's values (none shifted to a neighbour)."""
    engine = postgres_store if db.store.engine == "postgres" else sqlite_store
    count = engine.INSERT_PART + 3
    jobs = []
    for i in range(count):
        job = new_job(db, i, i, begin_after=T0 + dt.timedelta(seconds=i % 7))
        job.begin_by = None if i % 2 else float(i)
        job.job_class = None if i % 3 else f"jobfuncs:Kind{i}"
        job.retry_policy = None if i % 4 else "jobq.model.retry:NeverRetry"
        job.failure_log_level = None if i % 5 else 10 + i
        job.quota_names = () if i % 6 else (f"q{i}",)
        job.put_by = None if i % 2 == 0 else f"putter-{i}"
        jobs.append(job)
    ids = db.store.enqueue(jobs, T0)
    for job, job_id in zip(jobs, ids, strict=True):
        record = get(db.store, job_id)
        stored = (record.call_repr, record.begin_after, record.begin_by, record.job_class)
        stored += (record.retry_policy, record.failure_log_level, record.quota_names)
        stored += (record.put_by,)
        expected = (job.call_repr, job.begin_after, job.begin_by, job.job_class)
        expected += (job.retry_policy, job.failure_log_level, job.quota_names, job.put_by)
        assert stored == expected


def test_a_lost_connection_fails_only_the_completions_it_carried(db: jobq.Database) -> None:
    """PostgreSQL completes batches on a connection of the group commit's own: if the server
    drops it, the completions in flight fail (nothing written, the runner's commit-error path
    decides), and the next ones reconnect."""
    if db.store.engine != "postgres":
        pytest.skip("SQLite completions share the caller's thread connection")
    first, second = put(db, 1, 0), put(db, 2, 0)
    complete(db, first, "one")
    flush_conn = db.store.driver._flush_conn  # type: ignore[attr-defined]
    assert flush_conn is not None
    with db.store._transaction() as ex:  # type: ignore[attr-defined]
        ex.cursor.execute("SELECT pg_terminate_backend(%s)", (flush_conn.info.backend_pid,))
    record = run_to_active(db.store, second)
    with pytest.raises(jobq.StoreUnavailable):
        db.store.store_result(second, record.attempt, A, value(db, "two"), at(1))
    assert get(db.store, second).status == "active"
    db.store.store_result(second, record.attempt, A, value(db, "two"), at(2))
    assert get(db.store, second).status == "completed" and result_of(db, second) == "two"
