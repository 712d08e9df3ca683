"""Rate limits, enforced in the claim itself, on both engines (issue 18.5).

Claims go straight to the store (`db.store.claim`), on a movable clock: each test claims,
moves time and checks how many jobs naming a limit the next claim may take.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import jobfuncs
import pytest
from worker_helpers import execute, raw_connect

import jobq
from jobq.monitor.service import Monitor
from jobq.store.base import JobRecord, Outcome
from jobq.testing import MovableClock

T0 = dt.datetime(2024, 1, 1, 16, 0, tzinfo=dt.UTC)
A = "00000000-0000-0000-0000-00000000000a"
SEC = dt.timedelta(seconds=1)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def q(clock_db: jobq.Database) -> jobq.Queue:
    return clock_db.queue()


def put(q: jobq.Queue, *names: str, **options: Any) -> int:
    job = q.put(jobq.Job(jobfuncs.add, 1, 2), rate_limits=names, **options)
    assert job.id is not None
    return job.id


def claim(db: jobq.Database, limit: int = 10, start: bool | int = True, **kw: Any) -> list[int]:
    records = db.store.claim("", A, "main", limit, db.clock.now(), start=start, **kw)
    return [r.id for r in records]


def record(db: jobq.Database, job_id: int) -> JobRecord:
    found = db.store.get(job_id)
    assert found is not None
    return found


def stored(db: jobq.Database) -> list[Any]:
    """Everything a bad call must leave as it was: the limits, the jobs, the claims made."""
    q = db.queue()
    return [q.rate_limits.limits(), [j.id for j in q], db.store.rate_limits("", db.clock.now())]


# -- the API and bad input -----------------------------------------------------------------
def test_create_read_change_and_list(q: jobq.Queue) -> None:
    limit = q.rate_limits.create("smtp", limit=100, per=dt.timedelta(minutes=1))
    assert (limit.limit, limit.per) == (100, dt.timedelta(minutes=1))
    assert list(q.rate_limits) == ["smtp"] and "smtp" in q.rate_limits and len(q.rate_limits) == 1
    limit.limit = 5
    limit.per = 2 * SEC
    assert q.rate_limits.limits() == {"smtp": (5, 2 * SEC)}
    q.rate_limits.change("smtp", limit=7)
    assert q.rate_limits["smtp"].limit == 7 and q.rate_limits["smtp"].per == 2 * SEC
    assert q.rate_limits.get("nope") is None
    assert q.db.queue("other").rate_limits.limits() == {}  # per queue


@pytest.mark.parametrize(
    ("name", "limit", "per", "error", "says"),
    [
        ("", 1, SEC, ValueError, "bad rate limit name ''"),
        ("two words", 1, SEC, ValueError, "letters, digits"),
        ('a"b', 1, SEC, ValueError, "bad rate limit name"),
        ("x" * 101, 1, SEC, ValueError, "1 to 100 characters"),
        (7, 1, SEC, ValueError, "bad rate limit name 7"),
        ("smtp", 0, SEC, ValueError, "from 1 to 1,000,000 claims per period, got 0"),
        ("smtp", -3, SEC, ValueError, "got -3"),
        ("smtp", 1_000_001, SEC, ValueError, "got 1000001"),
        ("smtp", True, SEC, TypeError, "must be an integer, got True"),
        ("smtp", 2.5, SEC, TypeError, "must be an integer, got 2.5"),
        ("smtp", 1, dt.timedelta(0), ValueError, "longer than zero"),
        ("smtp", 1, -SEC, ValueError, "longer than zero"),
        ("smtp", 1, dt.timedelta(days=400), ValueError, "at most 366 days"),
        ("smtp", 1, 60, TypeError, "must be a timedelta, got 60"),
    ],
)
def test_bad_create_is_refused_and_changes_nothing(
    q: jobq.Queue, name: Any, limit: Any, per: Any, error: type[Exception], says: str
) -> None:
    before = stored(q.db)
    with pytest.raises(error, match=says.replace("(", r"\(").replace(".", r"\.")):
        q.rate_limits.create(name, limit=limit, per=per)
    assert stored(q.db) == before


def test_a_second_create_of_a_name_is_refused(q: jobq.Queue) -> None:
    q.rate_limits.create("smtp", limit=3, per=SEC)
    with pytest.raises(ValueError, match="has a rate limit 'smtp' already"):
        q.rate_limits.create("smtp", limit=9, per=SEC)
    assert q.rate_limits.limits() == {"smtp": (3, SEC)}


@pytest.mark.parametrize(
    ("change", "error", "says"),
    [
        ({"limit": 0}, ValueError, "got 0"),
        ({"limit": -1}, ValueError, "got -1"),
        ({"per": dt.timedelta(0)}, ValueError, "longer than zero"),
        ({"per": "1m"}, TypeError, "must be a timedelta"),
    ],
)
def test_bad_change_is_refused_and_changes_nothing(
    q: jobq.Queue, change: dict[str, Any], error: type[Exception], says: str
) -> None:
    q.rate_limits.create("smtp", limit=3, per=SEC)
    before = stored(q.db)
    with pytest.raises(error, match=says):
        q.rate_limits.change("smtp", **change)
    with pytest.raises(error, match=says):
        for key, value in change.items():
            setattr(q.rate_limits["smtp"], key, value)
    assert stored(q.db) == before


def test_unknown_limits_are_key_errors(q: jobq.Queue) -> None:
    for call in (
        lambda: q.rate_limits.change("nope", limit=2),
        lambda: q.rate_limits.remove("nope"),
        lambda: q.rate_limits["nope"],
    ):
        with pytest.raises(KeyError, match="queue '' has no rate limit 'nope'"):
            call()


def test_put_naming_an_unknown_limit_is_refused_and_stores_nothing(q: jobq.Queue) -> None:
    q.rate_limits.create("smtp", limit=3, per=SEC)
    with pytest.raises(ValueError, match=r"has no rate limit 'smpt' \(it has: 'smtp'\)"):
        q.put(jobq.Job(jobfuncs.add, 1, 2), rate_limits=["smtp", "smpt"])
    with pytest.raises(ValueError, match="has no rate limit 'x'"):
        q.put_many([jobq.Job(jobfuncs.add, 1, 2) for _ in range(3)], rate_limits=["x"])
    with pytest.raises(TypeError, match=r"not the string 'smtp': write rate_limits=\['smtp'\]"):
        q.put(jobq.Job(jobfuncs.add, 1, 2), rate_limits="smtp")
    with pytest.raises(TypeError, match="must be strings, got 3"):
        q.put(jobq.Job(jobfuncs.add, 1, 2), rate_limits=[3])  # type: ignore[list-item]
    assert len(q) == 0


def test_a_job_keeps_its_names(q: jobq.Queue) -> None:
    q.rate_limits.create("smtp", limit=3, per=SEC)
    job_id = put(q, "smtp", "smtp")
    assert record(q.db, job_id).rate_limits == ("smtp",)
    pulled = q.pull()
    q.put(pulled)  # a pulled job put again keeps its names
    assert record(q.db, job_id).rate_limits == ("smtp",)
    jobs = q.put_many([jobq.Job(jobfuncs.add, 1, 2) for _ in range(2)], rate_limits=["smtp"])
    assert [record(q.db, j.id or 0).rate_limits for j in jobs] == [("smtp",), ("smtp",)]


# -- the claim ----------------------------------------------------------------------------------
def test_claims_per_window_never_exceed_the_limit(q: jobq.Queue, clock: MovableClock) -> None:
    q.rate_limits.create("smtp", limit=2, per=10 * SEC)
    ids = [put(q, "smtp") for _ in range(6)]
    assert claim(q.db) == ids[:2]
    assert claim(q.db) == []
    clock.advance(seconds=9.9)
    assert claim(q.db) == []
    clock.advance(seconds=0.2)  # both claims of t=0 left the window
    assert claim(q.db) == ids[2:4]


def test_the_window_slides(q: jobq.Queue, clock: MovableClock) -> None:
    """A sliding window, not a fixed one: claims at t=0 and t=5 (limit 2 per 10 s) let one
    more go at t=10.1, and the next only at t=15.1."""
    q.rate_limits.create("smtp", limit=2, per=10 * SEC)
    ids = [put(q, "smtp") for _ in range(5)]
    assert claim(q.db, limit=1) == ids[:1]
    clock.advance(seconds=5)
    assert claim(q.db) == ids[1:2]
    clock.advance(seconds=5.1)
    assert claim(q.db) == ids[2:3]
    clock.advance(seconds=4.8)
    assert claim(q.db) == []
    clock.advance(seconds=0.2)
    assert claim(q.db) == ids[3:4]


def test_jobs_blocked_by_a_limit_do_not_block_jobs_behind_them(q: jobq.Queue) -> None:
    q.rate_limits.create("smtp", limit=1, per=60 * SEC)
    q.rate_limits.create("sms", limit=1, per=60 * SEC)
    limited = [put(q, "smtp") for _ in range(3)]
    other = put(q, "sms")
    both = put(q, "smtp", "sms")
    free = [put(q) for _ in range(2)]
    assert claim(q.db) == [limited[0], other, *free]
    assert record(q.db, both).status == "pending"
    assert [j.id for j in q] == [*limited[1:], both]


def test_limited_jobs_start_in_their_claim_and_are_never_claimed_ahead(q: jobq.Queue) -> None:
    q.rate_limits.create("smtp", limit=5, per=60 * SEC)
    limited = [put(q, "smtp") for _ in range(3)]
    free = [put(q) for _ in range(3)]
    got = claim(q.db, limit=4, start=1)  # one free thread, three more claimed ahead
    assert got == [limited[0], *free]
    assert record(q.db, limited[0]).status == "active"
    assert [record(q.db, i).status for i in free] == ["assigned"] * 3
    assert claim(q.db, limit=3, start=False) == []  # no free thread: nothing limited
    assert q.rate_limits["smtp"].used == 1


def test_a_claim_does_not_look_past_limited_jobs_waiting_for_a_thread(q: jobq.Queue) -> None:
    """Jobs naming a limit with room, left only because no thread is free to start them, are
    not read past: a claim reads about its own size, however many of them wait (it once read
    every pending job, to claim ahead the few plain jobs behind them)."""
    q.rate_limits.create("smtp", limit=1_000, per=60 * SEC)
    q.put_many([jobq.Job(jobfuncs.add, 1, 2) for _ in range(300)], rate_limits=["smtp"])
    first = next(iter(q)).id
    far_behind = [put(q) for _ in range(3)]
    assert claim(q.db, limit=4, start=1) == [first]
    assert claim(q.db, limit=4, start=False) == []
    assert all(record(q.db, i).status == "pending" for i in far_behind)


def test_a_claim_that_can_start_nothing_waits_for_no_lock(q: jobq.Queue, db_url: str) -> None:
    """Once a claim found the queue's due jobs waiting for a free thread, a claim with no
    thread free returns at once: it takes no claim lock (held here by another session), so a
    busy worker's polls cost its queue nothing."""
    q.rate_limits.create("smtp", limit=1_000, per=60 * SEC)
    ids = [put(q, "smtp") for _ in range(5)]
    assert claim(q.db, limit=4, start=1) == ids[:1]
    holder = raw_connect(db_url)
    try:
        if db_url.startswith("sqlite"):
            holder.execute("BEGIN IMMEDIATE")
        else:
            holder.execute("SELECT pg_advisory_lock(727472632, hashtext(''))")
        got: list[list[int]] = []
        claimer = threading.Thread(target=lambda: got.append(claim(q.db, limit=4, start=False)))
        claimer.start()
        claimer.join(timeout=5)  # a claim waiting for the lock would wait 10 s or more
        assert got == [[]], "the claim waited for the claim lock"
    finally:
        holder.rollback()
        holder.close()
    assert claim(q.db, limit=4, start=2) == ids[1:3]


def test_a_job_put_back_counts_each_claim(q: jobq.Queue) -> None:
    """A retried job was claimed each time: each claim takes one of the window's claims."""
    q.rate_limits.create("smtp", limit=2, per=60 * SEC)
    first = put(q, "smtp")
    second = put(q, "smtp")
    assert claim(q.db, limit=1) == [first]
    r = record(q.db, first)
    q.db.store.reschedule(first, r.attempt, A, None, {}, q.db.clock.now())  # retry "now"
    assert record(q.db, first).lane == 0
    assert claim(q.db) == [first]
    assert claim(q.db) == []
    assert record(q.db, second).status == "pending"
    assert q.rate_limits["smtp"].used == 2


def test_a_job_past_its_deadline_is_taken_without_consulting_limits(
    q: jobq.Queue, clock: MovableClock
) -> None:
    q.rate_limits.create("smtp", limit=1, per=60 * SEC)
    put(q, "smtp")
    late = put(q, "smtp", begin_by=dt.timedelta(seconds=1))
    assert len(claim(q.db, limit=1)) == 1
    clock.advance(seconds=2)
    assert claim(q.db) == [late]  # failed unstarted by its worker: not a claim that runs
    assert record(q.db, late).status == "assigned"
    assert q.rate_limits["smtp"].used == 1


def test_a_filter_agent_claims_within_the_limit(q: jobq.Queue) -> None:
    q.rate_limits.create("smtp", limit=2, per=60 * SEC)
    ids = [put(q, "smtp") for _ in range(4)]
    assert claim(q.db, accept=lambda r: r.id != ids[0]) == ids[1:3]
    assert claim(q.db, accept=lambda r: True) == []


def test_quotas_and_rate_limits_together(q: jobq.Queue, clock: MovableClock) -> None:
    q.quotas.create("db", size=1)
    q.rate_limits.create("smtp", limit=3, per=60 * SEC)
    a = q.put(jobq.Job(jobfuncs.add, 1, 2), quota_names=["db"], rate_limits=["smtp"]).id
    b = q.put(jobq.Job(jobfuncs.add, 1, 2), quota_names=["db"], rate_limits=["smtp"]).id
    c = put(q, "smtp")
    assert claim(q.db) == [a, c]  # b waits for the quota, not the rate limit
    assert q.rate_limits["smtp"].used == 2
    assert record(q.db, b or 0).status == "pending"


# -- changes while workers run ---------------------------------------------------------------
def test_a_change_applies_at_the_next_claim(q: jobq.Queue, clock: MovableClock) -> None:
    q.rate_limits.create("smtp", limit=1, per=60 * SEC)
    ids = [put(q, "smtp") for _ in range(6)]
    assert claim(q.db) == ids[:1]
    q.rate_limits["smtp"].limit = 3  # the claim already made counts in the new window
    assert claim(q.db) == ids[1:3]
    q.rate_limits["smtp"].limit = 2  # lowered below the claims made: none until they leave
    clock.advance(seconds=30)
    assert claim(q.db) == []
    q.rate_limits["smtp"].per = 20 * SEC  # a shorter window: every claim left it
    assert claim(q.db) == ids[3:5]


def test_removing_a_limit_that_pending_jobs_name_is_refused_unless_forced(
    q: jobq.Queue,
) -> None:
    q.rate_limits.create("smtp", limit=1, per=60 * SEC)
    q.rate_limits.create("idle", limit=1, per=60 * SEC)
    ids = [put(q, "smtp") for _ in range(3)]
    q.rate_limits.remove("idle")  # named by no pending job: removed
    assert list(q.rate_limits) == ["smtp"]
    before = stored(q.db)
    with pytest.raises(ValueError, match=r"named by 3 pending job\(s\).*force=True"):
        q.rate_limits.remove("smtp")
    assert stored(q.db) == before
    assert claim(q.db) == ids[:1]
    q.rate_limits.remove("smtp", force=True)
    assert "smtp" not in q.rate_limits
    assert claim(q.db) == ids[1:]  # the name is ignored from then on


# -- exactness across claimers ---------------------------------------------------------------
def test_concurrent_claimers_together_stay_within_the_limit(
    db_url: str, clock: MovableClock
) -> None:
    """Six claimers, each on its own connections, race for jobs naming a limit of 5: the
    claim's lock (PostgreSQL) or write transaction (SQLite) lets exactly 5 through."""
    first = jobq.connect(db_url, clock=clock)
    dbs = [first] + [jobq.connect(db_url, clock=clock) for _ in range(5)]
    try:
        q = first.queue()
        q.rate_limits.create("smtp", limit=5, per=60 * SEC)
        q.put_many([jobq.Job(jobfuncs.add, 1, 2) for _ in range(30)], rate_limits=["smtp"])
        got: list[int] = []
        barrier = threading.Barrier(len(dbs))

        def race(db: jobq.Database) -> None:
            barrier.wait()
            for _ in range(5):
                got.extend(claim(db, limit=2))

        threads = [threading.Thread(target=race, args=(db,)) for db in dbs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == len(set(got)) == 5
        assert len(q) == 25
    finally:
        for db in dbs:
            db.close()


# -- what the monitor reads ------------------------------------------------------------------
def test_use_and_waiting_jobs_are_visible(q: jobq.Queue, clock: MovableClock) -> None:
    q.rate_limits.create("smtp", limit=2, per=10 * SEC)
    [put(q, "smtp") for _ in range(5)]
    claim(q.db)
    (found,) = q.db.store.rate_limits(None, clock.now())
    assert (found.queue, found.name, found.limit, found.per) == ("", "smtp", 2, 10.0)
    assert (found.used, found.waiting) == (2, 3)
    assert found.frees_at == T0 + 10 * SEC
    clock.advance(seconds=11)
    (found,) = q.db.store.rate_limits("", clock.now())
    assert (found.used, found.waiting, found.frees_at) == (0, 3, None)
    assert q.rate_limits["smtp"].waiting == 3


def test_a_retried_copy_of_a_failed_job_names_the_same_limits(q: jobq.Queue) -> None:
    """`jobq retry` (Monitor.retry, store.retry_failed) puts a copy: it is limited as the job
    was, and `jobq job` shows the names."""
    q.rate_limits.create("smtp", limit=1, per=60 * SEC)
    job_id = put(q, "smtp")
    assert claim(q.db) == [job_id]
    r = record(q.db, job_id)
    failed = Outcome(None, "boom", failed=True, failure={"type": "ValueError"})
    q.db.store.store_result(job_id, r.attempt, A, failed, q.db.clock.now())
    copy = q.db.store.retry_failed(job_id, q.db.clock.now())
    assert copy is not None and record(q.db, copy).rate_limits == ("smtp",)
    assert claim(q.db) == []  # the window's one claim went to the original
    summary = Monitor(q.db).job(copy)
    assert summary.rate_limits == ("smtp",) and ("rate limits", ["smtp"]) in summary.items()


def test_a_damaged_rate_limits_column_breaks_no_claim(q: jobq.Queue, db_url: str) -> None:
    """Text that is not a JSON list of names (written by hand) is read as no names: the claim
    goes on, takes that job (its worker fails it, naming the column) and the others in order."""
    q.rate_limits.create("smtp", limit=1, per=60 * SEC)
    damaged = put(q, "smtp")
    rest = [put(q, "smtp") for _ in range(2)]
    execute(db_url, "UPDATE jobq_jobs SET rate_limits = ? WHERE id = ?", ('["smtp"', damaged))
    assert record(q.db, damaged).damaged == ("rate_limits",)
    assert claim(q.db) == [damaged, rest[0]]


def test_claims_are_forgotten_a_minute_after_leaving_the_window(
    q: jobq.Queue, clock: MovableClock, db_url: str
) -> None:
    q.rate_limits.create("smtp", limit=2, per=10 * SEC)
    [put(q, "smtp") for _ in range(6)]
    assert len(claim(q.db)) == 2
    clock.advance(seconds=69)  # the claims of t=0 are 59 s past their window: kept
    assert len(claim(q.db)) == 2
    (kept,) = execute(db_url, "SELECT count(*) FROM jobq_rate_limit_claims")
    assert kept == (4,)
    clock.advance(seconds=11)  # those of t=0 are now 70 s past it: forgotten by this claim
    assert len(claim(q.db)) == 2
    (kept,) = execute(db_url, "SELECT count(*) FROM jobq_rate_limit_claims")
    assert kept == (4,)  # t=69 and t=80


@pytest.mark.parametrize("limited", ["quota", "rate limit"])
def test_in_the_database_time_due_jobs_are_still_judged_at_the_claimers_time(
    db: jobq.Database, limited: str
) -> None:
    """With `database_time` only the windows move to the database's clock: which jobs are due
    is judged at the claimer's `now`, as their times were written on the putters' clocks (a
    database clock behind the workers' left a job put "now" undue for the difference). The
    claim of a job naming a rate limit is stamped with the window's time."""
    q = db.queue()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # the workers' clocks are ahead
    if limited == "quota":
        q.quotas.create("q1", size=5)
        job = q.put(jobq.Job(jobfuncs.add, 1, 2), begin_after=later, quota_names=["q1"])
    else:
        q.rate_limits.create("smtp", limit=5, per=60 * SEC)
        job = q.put(jobq.Job(jobfuncs.add, 1, 2), begin_after=later, rate_limits=["smtp"])
    claimer_now = later + dt.timedelta(seconds=1)
    records = db.store.claim("", A, "main", 5, claimer_now, start=True, database_time=True)
    assert [r.id for r in records] == [job.id]
    stamped = records[0].active_start
    assert stamped is not None
    if limited == "quota":
        assert stamped == claimer_now
    else:  # the database's time, an hour before the claimer's
        assert abs(stamped - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
        assert q.rate_limits["smtp"].used == 1
