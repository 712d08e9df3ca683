"""What `put` refuses because stored it would stop workers (issue 17.1): a `begin_by` whose
deadline no datetime can hold broke every worker's deadline check and, on PostgreSQL, the
claim statement of the whole queue. Refused at the call, with nothing stored."""

from __future__ import annotations

import datetime as dt

import pytest
from jobfuncs import add

import jobq

WAIT = 30.0


def _count(db: jobq.Database) -> int:
    return len(db.queue())


def test_put_refuses_a_begin_by_past_the_year_9999_and_the_queue_goes_on(
    db: jobq.Database,
) -> None:
    queue = db.queue()
    with pytest.raises(ValueError, match=r"begin_by=.* is out of range"):
        queue.put(jobq.Job(add, 1, 2), begin_by=dt.timedelta.max)
    job = jobq.Job(add, 1, 2)
    job.begin_by = dt.timedelta(days=3_000_000)
    with pytest.raises(ValueError, match="past the year 9999"):
        queue.put_many([jobq.Job(add, 0, 0), job])  # all or none: the first is not stored
    late = dt.datetime(9999, 12, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="out of range"):
        queue.put(jobq.Job(add, 1, 2), begin_after=late, begin_by=dt.timedelta(days=60))
    assert _count(db) == 0
    long_deadline = queue.put(jobq.Job(add, 2, 3), begin_by=dt.timedelta(days=365 * 1000))
    with db.worker(poll_interval=0.05):
        assert long_deadline.wait(timeout=WAIT) == 5
