"""A worker and rate limits, in process, on both engines (issue 18.5): a worker whose claim
found a limit's window full claims again when the window frees a claim, not at its next poll."""

from __future__ import annotations

import datetime as dt

import jobfuncs

import jobq
from jobq._clock import SystemClock
from jobq.testing import wait_for_result


def test_a_worker_claims_again_when_the_window_frees(db: jobq.Database) -> None:
    q = db.queue()
    q.rate_limits.create("api", limit=2, per=dt.timedelta(milliseconds=300))
    jobs = q.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(8)], rate_limits=["api"])
    # Polls 60 s apart: without the hint, the 8 jobs would take three polls (3 minutes).
    with db.worker(poll_interval=60, ping_interval=60, death_interval=120).start():
        assert [wait_for_result(j, timeout=30) for j in jobs] == [i + 1 for i in range(8)]
    starts = sorted(j.refresh().active_start or dt.datetime.min for j in jobs)
    for first, third in zip(starts, starts[2:], strict=False):
        assert third - first >= dt.timedelta(milliseconds=300)


def test_the_hint_is_the_time_the_oldest_claim_leaves_the_window(db: jobq.Database) -> None:
    q = db.queue()
    q.rate_limits.create("api", limit=2, per=dt.timedelta(seconds=10))
    q.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(3)], rate_limits=["api"])
    now = db.clock.now()
    assert len(db.store.claim("", "d", "main", 1, now, start=True)) == 1
    assert db.store.rate_limit_wake("") is None  # a claim left
    later = now + dt.timedelta(seconds=1)
    assert len(db.store.claim("", "d", "main", 5, later, start=True)) == 1
    assert db.store.rate_limit_wake("") == now + dt.timedelta(seconds=10)
    assert db.store.rate_limit_wake("") is None  # read once


class _ClockAhead(SystemClock):
    """The real clock of a machine whose time is five minutes ahead (no NTP)."""

    def now(self) -> dt.datetime:
        return super().now() + dt.timedelta(minutes=5)


def test_a_worker_whose_clock_is_ahead_holds_no_other_worker_back(
    db_url: str, db: jobq.Database
) -> None:
    """Windows are measured in the database's time (PostgreSQL's clock; on SQLite the one
    machine's), not in each worker's: the claims of a worker five minutes ahead leave the
    window a second later for a worker on time too (they counted for five minutes more), and
    the start times stored, from both, are the times the window counted."""
    q = db.queue()
    q.rate_limits.create("api", limit=2, per=dt.timedelta(seconds=1))
    first = q.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(2)], rate_limits=["api"])
    intervals = {"poll_interval": 0.05, "ping_interval": 0.5, "death_interval": 5.0}
    with jobq.connect(db_url, clock=_ClockAhead()) as ahead, ahead.worker(**intervals).start():
        assert [wait_for_result(j, timeout=30) for j in first] == [1, 2]
    rest = q.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(2, 6)], rate_limits=["api"])
    with db.worker(**intervals).start():
        assert [wait_for_result(j, timeout=30) for j in rest] == [3, 4, 5, 6]
    starts = sorted(j.refresh().active_start or dt.datetime.min for j in first + rest)
    for earlier, third in zip(starts, starts[2:], strict=False):
        assert third - earlier >= dt.timedelta(seconds=1)
    assert starts[-1] - starts[0] < dt.timedelta(minutes=1)
