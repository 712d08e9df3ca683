"""Unique jobs (`put(..., unique_key=...)`) on both engines, in-process: a held key makes no
second job, every move out of the key's states releases it, `unique_for` periods, put_many
row by row, puts from inside a job, and the bad inputs (refused at the call, nothing stored).
Concurrent producers in several processes: tests/acceptance/test_unique_process.py."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import jobfuncs
import pytest
from worker_helpers import wait_until

import jobq
from jobq.monitor import Monitor
from jobq.testing import MovableClock

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


def token() -> str:
    return uuid.uuid4().hex


def test_a_second_put_with_a_held_key_returns_the_holder(queue: jobq.Queue) -> None:
    first = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="email:42")
    second = queue.put(jobq.Job(jobfuncs.double, 2), unique_key="email:42")
    assert first.put_outcome == "created"
    assert second.put_outcome == "existing"
    assert second.id == first.id
    assert second.args == (1,)  # the holder's handle, unchanged
    assert second.unique_key == "email:42"
    assert len(queue) == 1
    other = queue.put(jobq.Job(jobfuncs.double, 3), unique_key="email:43")
    plain = queue.put(jobq.Job(jobfuncs.double, 4))
    assert other.put_outcome == plain.put_outcome == "created"
    assert plain.unique_key is None
    assert len(queue) == 3


def test_keys_are_per_queue(db: jobq.Database) -> None:
    a = db.queue("a").put(jobq.Job(jobfuncs.double, 1), unique_key="k")
    b = db.queue("b").put(jobq.Job(jobfuncs.double, 1), unique_key="k")
    assert a.id != b.id and b.put_outcome == "created"


def test_replace_changes_a_pending_holder_call_and_time(queue: jobq.Queue) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    first = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="k")
    second = queue.put(
        jobq.Job(jobfuncs.double, 7), unique_key="k", on_conflict="replace", begin_after=later
    )
    assert second.put_outcome == "replaced" and second.id == first.id
    stored = queue.db.get_job(first.id)  # type: ignore[arg-type]
    assert stored.args == (7,)
    assert stored.begin_after == later
    assert len(queue) == 1


def test_replace_keeps_a_running_holder(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    gate = token()
    first = queue.put(jobq.Job(jobfuncs.gated, gate, "first"), unique_key="k")
    wait_until(lambda: first.refresh().status == jobq.Status.ACTIVE, what="job started")
    second = queue.put(
        jobq.Job(jobfuncs.gated, gate, "second"), unique_key="k", on_conflict="replace"
    )
    assert second.put_outcome == "existing" and second.id == first.id
    jobfuncs.open_gate(gate)
    assert first.wait(timeout=15) == "first"


def test_pending_and_active_hold_the_key_until_the_job_completes(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    gate = token()
    first = queue.put(jobq.Job(jobfuncs.gated, gate, 1), unique_key="k")
    wait_until(lambda: first.refresh().status == jobq.Status.ACTIVE, what="job started")
    assert queue.put(jobq.Job(jobfuncs.gated, gate, 2), unique_key="k").id == first.id
    jobfuncs.open_gate(gate)
    first.wait(timeout=15)
    after = queue.put(jobq.Job(jobfuncs.double, 3), unique_key="k")
    assert after.put_outcome == "created" and after.id != first.id


def test_pending_only_releases_the_key_when_a_worker_claims_the_job(queue: jobq.Queue) -> None:
    gate = token()
    first = queue.put(jobq.Job(jobfuncs.gated, gate, 1), unique_key="k", unique_while=("pending",))
    again = queue.put(jobq.Job(jobfuncs.double, 9), unique_key="k", unique_while=("pending",))
    assert again.id == first.id
    dispatcher = queue.db.worker(poll_interval=0.05).start()
    try:
        wait_until(lambda: first.refresh().status == jobq.Status.ACTIVE, what="job started")
        second = queue.put(
            jobq.Job(jobfuncs.gated, gate, 2), unique_key="k", unique_while="pending"
        )
        assert second.put_outcome == "created" and second.id != first.id
        jobfuncs.open_gate(gate)
        assert first.wait(timeout=15) == 1 and second.wait(timeout=15) == 2
    finally:
        dispatcher.stop(grace=10)


def test_a_failed_job_releases_its_key(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    first = queue.put(jobq.Job(jobfuncs.fail, "no"), unique_key="k")
    with pytest.raises(jobq.JobFailed):
        first.wait(timeout=15)
    assert queue.put(jobq.Job(jobfuncs.double, 1), unique_key="k").put_outcome == "created"


def test_a_retried_job_keeps_its_key_while_pending_and_active(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    queue = clock_db.queue()
    tok = token()
    first = queue.put(jobq.Job(jobfuncs.fail_first_then, tok, "ok"), unique_key="k", retries=2)
    dispatcher = clock_db.worker(poll_interval=0.05).start()
    try:
        wait_until(lambda: first.refresh().attempt >= 1 and first.status == jobq.Status.PENDING)
        # Back in its queue for its retry: still the key's holder.
        assert queue.put(jobq.Job(jobfuncs.double, 1), unique_key="k").id == first.id
        clock.advance(dt.timedelta(hours=1))
        assert first.wait(timeout=15) == "ok"
    finally:
        dispatcher.stop(grace=10)
    assert queue.put(jobq.Job(jobfuncs.double, 1), unique_key="k").put_outcome == "created"


def test_a_pending_only_key_is_not_taken_back_by_a_retry(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    """A job's retry puts it back in its queue; with ("pending",) it let go of its key at its
    first claim and never takes it back (so a newer holder is never in conflict with it)."""
    queue = clock_db.queue()
    tok = token()
    first = queue.put(
        jobq.Job(jobfuncs.fail_first_then, tok, "ok"),
        unique_key="k",
        unique_while=("pending",),
        retries=2,
    )
    dispatcher = clock_db.worker(poll_interval=0.05).start()
    try:
        wait_until(lambda: first.refresh().attempt >= 1 and first.status == jobq.Status.PENDING)
        second = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="k", unique_while=("pending",))
        assert second.put_outcome == "created" and second.id != first.id
        clock.advance(dt.timedelta(hours=1))
        assert first.wait(timeout=15) == "ok"
        assert second.wait(timeout=15) == 2
    finally:
        dispatcher.stop(grace=10)


def test_pull_remove_and_cancel_release_the_key(queue: jobq.Queue) -> None:
    pulled = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="a")
    assert queue.pull().id == pulled.id
    assert queue.put(jobq.Job(jobfuncs.double, 2), unique_key="a").put_outcome == "created"
    removed = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="b")
    queue.remove(removed)
    assert queue.put(jobq.Job(jobfuncs.double, 2), unique_key="b").put_outcome == "created"
    cancelled = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="c")
    cancelled.cancel()
    assert queue.put(jobq.Job(jobfuncs.double, 2), unique_key="c").put_outcome == "created"
    failed = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="d")
    Monitor(queue.db).fail(failed.id)  # type: ignore[arg-type]
    assert queue.put(jobq.Job(jobfuncs.double, 2), unique_key="d").put_outcome == "created"


def test_a_pulled_job_put_back_while_another_holds_its_key_is_refused(queue: jobq.Queue) -> None:
    queue.put(jobq.Job(jobfuncs.double, 1), unique_key="k")
    pulled = queue.pull()
    holder = queue.put(jobq.Job(jobfuncs.double, 2), unique_key="k")
    with pytest.raises(jobq.BadStatusError, match="another job holds its unique key"):
        queue.put_back(pulled)
    with pytest.raises(jobq.BadStatusError, match="another job holds its unique key"):
        queue.put(pulled)
    assert [j.id for j in queue] == [holder.id]
    assert pulled.refresh().status == jobq.Status.NEW


def test_an_operator_retry_copies_a_failed_job_without_its_key(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    first = queue.put(jobq.Job(jobfuncs.fail, "no"), unique_key="k")
    with pytest.raises(jobq.JobFailed):
        first.wait(timeout=15)
    copy = Monitor(queue.db).retry(first.id)  # type: ignore[arg-type]
    assert copy.unique_key is None


def test_unique_for_makes_no_second_job_within_the_period(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    queue = clock_db.queue()
    hour = dt.timedelta(hours=1)
    first = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="k", unique_for=hour)
    queue.pull()  # out of its queue: the period holds whatever becomes of the job
    again = queue.put(jobq.Job(jobfuncs.double, 2), unique_key="k", unique_for=hour)
    assert again.put_outcome == "existing" and again.id == first.id
    assert len(queue) == 0
    clock.advance(hour + dt.timedelta(seconds=1))
    later = queue.put(jobq.Job(jobfuncs.double, 3), unique_key="k", unique_for=hour)
    assert later.put_outcome == "created" and later.id != first.id
    # The retention loop forgets periods that are over.
    clock.advance(2 * hour)
    assert clock_db.store.prune_unique_keys(clock.now()) == 1


def test_unique_for_and_unique_while_together(clock_db: jobq.Database, clock: MovableClock) -> None:
    queue = clock_db.queue()
    minute = dt.timedelta(minutes=1)
    first = queue.put(
        jobq.Job(jobfuncs.double, 1),
        unique_key="k",
        unique_for=minute,
        unique_while=("pending", "active"),
    )
    clock.advance(2 * minute)  # the period is over, but the job still holds the key: pending
    again = queue.put(
        jobq.Job(jobfuncs.double, 2),
        unique_key="k",
        unique_for=minute,
        unique_while=("pending", "active"),
    )
    assert again.id == first.id and again.put_outcome == "existing"
    assert len(queue) == 1


def test_put_many_honours_keys_row_by_row(queue: jobq.Queue) -> None:
    held = queue.put(jobq.Job(jobfuncs.double, 0), unique_key="n0")
    jobs = queue.put_many(
        [jobq.Job(jobfuncs.double, i) for i in range(5)],
        unique_key=lambda job: f"n{job.args[0] % 3}",
    )
    assert [j.put_outcome for j in jobs] == [
        "existing",
        "created",
        "created",
        "existing",
        "existing",
    ]
    assert jobs[0].id == jobs[3].id == held.id and jobs[4].id == jobs[1].id
    assert len(queue) == 3
    # A Job's own key, and rows without one.
    own = jobq.Job(jobfuncs.double, 10)
    own.unique_key = "n1"
    mixed = queue.put_many([own, jobq.Job(jobfuncs.double, 11)])
    assert mixed[0].id == jobs[1].id and mixed[0].put_outcome == "existing"
    assert mixed[1].put_outcome == "created" and mixed[1].unique_key is None
    assert len(queue) == 4


def test_a_put_inside_a_job_honours_the_key(db: jobq.Database, worker: jobq.Dispatcher) -> None:
    parent = db.queue().put(jobq.Job(jobfuncs.put_keyed, "follow", "f:1", 3))
    parent.wait(timeout=15)
    follow = db.queue("follow")
    assert len(follow) == 1
    assert follow[0].unique_key == "f:1" and follow[0].args == (0,)


def test_the_monitor_shows_the_key(queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(jobfuncs.double, 1), unique_key="email:42", unique_while=["pending"])
    summary = dict(Monitor(queue.db).job(job.id).items())  # type: ignore[arg-type]
    assert summary["unique key"] == "email:42"
    assert summary["unique while"] == "pending"


LONG = "x" * 513


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"unique_key": ""}, ValueError, "unique_key must not be empty"),
        ({"unique_key": LONG}, ValueError, "is 513 characters long; the limit is 512"),
        ({"unique_key": 42}, TypeError, "unique_key must be a string"),
        ({"unique_key": "k", "unique_while": ("done",)}, ValueError, "unknown state 'done'"),
        ({"unique_key": "k", "unique_while": ("active",)}, ValueError, "must include 'pending'"),
        ({"unique_key": "k", "on_conflict": "merge"}, ValueError, "'keep' or 'replace'"),
        ({"unique_key": "k", "unique_for": dt.timedelta(0)}, ValueError, "positive timedelta"),
        ({"unique_key": "k", "unique_for": dt.timedelta(-1)}, ValueError, "positive timedelta"),
        ({"unique_key": "k", "unique_for": 60}, TypeError, "unique_for must be a timedelta"),
        ({"unique_while": ("pending",)}, ValueError, "unique_while needs a unique_key"),
        ({"on_conflict": "keep"}, ValueError, "on_conflict needs a unique_key"),
    ],
)
def test_bad_unique_options_are_refused_at_the_call(
    queue: jobq.Queue, options: dict[str, Any], error: type[Exception], words: str
) -> None:
    queue.put(jobq.Job(jobfuncs.double, 0), unique_key="held")
    with pytest.raises(error, match=words):
        queue.put(jobq.Job(jobfuncs.double, 1), **options)
    with pytest.raises(error, match=words):
        queue.put_many([jobq.Job(jobfuncs.double, 2)], **options)
    assert [j.args for j in queue] == [(0,)]


def test_a_bad_key_from_a_key_function_rolls_the_batch_back(queue: jobq.Queue) -> None:
    keys = iter(["ok", LONG])
    with pytest.raises(ValueError, match="the limit is 512"):
        queue.put_many(
            [jobq.Job(jobfuncs.double, i) for i in range(2)], unique_key=lambda j: next(keys)
        )
    assert len(queue) == 0


@pytest.mark.parametrize("count", [1, 3])
def test_a_key_function_raising_stop_iteration_fails_the_put_and_stores_nothing(
    queue: jobq.Queue, count: int
) -> None:
    """A key function ending its own iterator (`next` on an exhausted one) is an error of the
    put, whatever the batch's size, not an empty batch."""
    keys = iter(["k0"])
    with pytest.raises(RuntimeError, match="StopIteration raised while encoding"):
        queue.put_many(
            [jobq.Job(jobfuncs.double, i) for i in range(count)],
            unique_key=lambda j: next(keys) if j.args[0] else next(iter(())),
        )
    assert len(queue) == 0


def test_a_keyed_put_stores_every_option_a_plain_put_stores(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    """A put with a unique key takes its own insert statement: it must store every other
    option of the put as the plain insert does."""
    queue.rate_limits.create("smtp", limit=5, per=dt.timedelta(minutes=1))
    job = queue.put(
        jobq.Job(jobfuncs.double, 1),
        unique_key="mail:1",
        priority=7,
        rate_limits=["smtp"],
        timeout=dt.timedelta(seconds=30),
        keep_result=dt.timedelta(hours=1),
    )
    plain = queue.put(jobq.Job(jobfuncs.double, 2), priority=7)
    record = Monitor(db).job(job.id)
    assert record.priority == 7
    assert record.rate_limits == ("smtp",)
    assert record.time_limit == dt.timedelta(seconds=30)
    assert record.keep_result == dt.timedelta(hours=1)
    assert queue.rate_limits["smtp"].waiting == 1
    assert [j.id for j in queue] == [job.id, plain.id]  # same priority: put order
