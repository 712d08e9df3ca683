"""assert_enqueued / refute_enqueued / all_enqueued: pending jobs, inspected, never run."""

from __future__ import annotations

import datetime as dt
import re

import kit_jobs
import pytest

import jobq
from jobq.testing import all_enqueued, assert_enqueued, refute_enqueued


@pytest.fixture
def filled(queue: jobq.Queue) -> list[jobq.Job]:
    return [
        queue.put(jobq.Job(kit_jobs.add, 1, 2)),
        queue.put(jobq.Job(kit_jobs.add, 3, 4)),
        queue.put(jobq.Job(kit_jobs.record, "t", value={"user": 7})),
        queue.put(
            jobq.Job(kit_jobs.double, 5),
            begin_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        ),
    ]


def test_all_enqueued_matches_by_callable_args_kwargs_and_due(
    queue: jobq.Queue, filled: list[jobq.Job]
) -> None:
    ids = lambda jobs: [j.id for j in jobs]  # noqa: E731
    add1, add2, rec, later = filled
    assert ids(all_enqueued(queue)) == ids(filled)
    assert ids(all_enqueued(queue, kit_jobs.add)) == [add1.id, add2.id]
    assert ids(all_enqueued(queue, "kit_jobs:add")) == [add1.id, add2.id]
    assert ids(all_enqueued(queue, "add")) == [add1.id, add2.id]
    assert ids(all_enqueued(queue, kit_jobs.add, args=(3, 4))) == [add2.id]
    assert ids(all_enqueued(queue, kit_jobs.add, args=[3])) == []
    assert ids(all_enqueued(queue, kwargs={"value": {"user": 7}})) == [rec.id]
    assert ids(all_enqueued(queue, kwargs={"value": {"user": 8}})) == []
    assert ids(all_enqueued(queue, due=False)) == [later.id]
    assert ids(all_enqueued(queue, kit_jobs.double, due=True)) == []
    assert len(queue) == 4 and all(j.refresh().status == "pending" for j in filled)


def test_assert_enqueued_returns_the_matches_or_lists_the_queue(
    queue: jobq.Queue, filled: list[jobq.Job]
) -> None:
    assert [j.id for j in assert_enqueued(queue, kit_jobs.add, args=(1, 2))] == [filled[0].id]
    assert len(assert_enqueued(queue, kit_jobs.add, count=2)) == 2
    with pytest.raises(AssertionError) as e:
        assert_enqueued(queue, kit_jobs.add, args=(9, 9))
    message = str(e.value)
    assert message.startswith(
        "expected a pending job matching kit_jobs:add, args (9, 9); none.\n"
        "pending in queue '':\n"
        f"  job {filled[0].id} (kit_jobs.add(1, 2)), begin_after "
    )
    assert f"job {filled[3].id} (kit_jobs.double(5))" in message
    with pytest.raises(AssertionError, match=re.escape("expected 1 pending job(s) matching")):
        assert_enqueued(queue, kit_jobs.add, count=1)


def test_assert_enqueued_on_an_empty_queue(queue: jobq.Queue) -> None:
    with pytest.raises(AssertionError, match="queue '' has no pending job"):
        assert_enqueued(queue, kit_jobs.add)
    assert assert_enqueued(queue, kit_jobs.add, count=0) == []
    refute_enqueued(queue)


def test_refute_enqueued_names_what_matched(queue: jobq.Queue, filled: list[jobq.Job]) -> None:
    refute_enqueued(queue, kit_jobs.fail)
    refute_enqueued(queue, kit_jobs.add, args=(2, 1))
    with pytest.raises(AssertionError) as e:
        refute_enqueued(queue, kit_jobs.add, kwargs={})
    assert str(e.value) == (
        "expected no pending job matching kit_jobs:add, kwargs including {}; found 2:\n"
        f"  job {filled[0].id} (kit_jobs.add(1, 2))\n"
        f"  job {filled[1].id} (kit_jobs.add(3, 4))"
    )


def test_jobs_that_ran_are_no_longer_enqueued(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    job = queue.put(jobq.Job(kit_jobs.add, 1, 2))
    job.wait(timeout=10)
    refute_enqueued(queue, kit_jobs.add)
