"""Quotas, enforced in the claim itself, on both engines (catalogue 3.4; section 13 items 9-13).

Claims go straight to the store (`db.store.claim`), on a movable clock: each test drives jobs
through claim / start / result / reschedule and checks who may be claimed next.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import jobfuncs
import pytest

import jobq
from jobq.store.base import JobRecord, Outcome
from jobq.testing import MovableClock
from jobq.worker.recovery import hand_on

T0 = dt.datetime(2024, 1, 1, 16, 0, tzinfo=dt.UTC)
A = "00000000-0000-0000-0000-00000000000a"  # dispatcher UUIDs
B = "00000000-0000-0000-0000-00000000000b"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def q(clock_db: jobq.Database) -> jobq.Queue:
    return clock_db.queue()


def put(q: jobq.Queue, *names: str, **options: Any) -> int:
    job = q.put(jobq.Job(jobfuncs.add, 1, 2), quota_names=names, **options)
    assert job.id is not None
    return job.id


def claim(
    db: jobq.Database, limit: int = 10, dispatcher: str = A, queue: str = "", **kw: Any
) -> list[int]:
    return [r.id for r in db.store.claim(queue, dispatcher, "main", limit, db.clock.now(), **kw)]


def record(db: jobq.Database, job_id: int) -> JobRecord:
    found = db.store.get(job_id)
    assert found is not None
    return found


def start(db: jobq.Database, job_id: int) -> JobRecord:
    r = record(db, job_id)
    assert db.store.start(job_id, r.attempt, r.dispatcher_uuid or "", db.clock.now())
    return record(db, job_id)


def finish(db: jobq.Database, job_id: int) -> None:
    r = record(db, job_id)
    if r.status == "assigned":
        r = start(db, job_id)
    outcome = Outcome(db.codec.dumps(3), "3")
    db.store.store_result(job_id, r.attempt, r.dispatcher_uuid or "", outcome, db.clock.now())
    assert record(db, job_id).status == "completed"


def holders(q: jobq.Queue, name: str) -> list[int]:
    return sorted(j.id for j in q.quotas[name] if j.id is not None)


# -- the API and put ---------------------------------------------------------------------------
def test_unknown_quota_name_is_a_value_error_and_the_queue_is_unchanged(q: jobq.Queue) -> None:
    """Catalogue 13.9."""
    q.quotas.create("a")
    with pytest.raises(ValueError) as error:
        q.put(jobq.Job(jobfuncs.add, 1, 2), quota_names=("a", "x"))
    assert error.value.args[0] == ("unknown quota name", "x")
    with pytest.raises(ValueError, match="unknown quota name"):
        q.put_many([jobq.Job(jobfuncs.add, i, 2) for i in range(3)], quota_names=["a", "b"])
    assert len(q) == 0
    # quotas belong to one queue
    with pytest.raises(ValueError, match="unknown quota name"):
        q.db.queue("other").put(jobq.Job(jobfuncs.add, 1, 2), quota_names=["a"])
    assert len(q.db.queue("other")) == 0


def test_a_string_of_names_is_a_type_error(q: jobq.Queue) -> None:
    """Catalogue 13.10 (for put: there is no pending-job setter)."""
    q.quotas.create("abc")
    with pytest.raises(TypeError, match="provide an iterable of names"):
        q.put(jobq.Job(jobfuncs.add, 1, 2), quota_names="abc")
    with pytest.raises(TypeError, match="must be strings"):
        q.put(jobq.Job(jobfuncs.add, 1, 2), quota_names=[1])  # type: ignore[list-item]
    assert len(q) == 0
    job_id = put(q, "abc", "abc")
    assert record(q.db, job_id).quota_names == ("abc",)


def test_quotas_mapping(q: jobq.Queue) -> None:
    assert len(q.quotas) == 0 and list(q.quotas) == []
    quota = q.quotas.create("db")
    assert quota.size == 1 and quota.name == "db"
    q.quotas.create("net", size=3)
    assert list(q.quotas) == ["db", "net"] and len(q.quotas) == 2
    assert "db" in q.quotas and "x" not in q.quotas
    assert q.quotas.sizes() == {"db": 1, "net": 3}
    with pytest.raises(ValueError, match="quota already exists"):
        q.quotas.create("db", size=5)
    assert q.quotas["db"].size == 1
    with pytest.raises(ValueError, match=">= 1"):
        q.quotas.create("zero", size=0)
    with pytest.raises(ValueError, match=">= 1"):
        q.quotas.resize("db", -1)
    with pytest.raises(TypeError, match="integer"):
        q.quotas.create("s", size="2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        q.quotas.create("")
    q.quotas["net"].size = 4
    assert q.quotas["net"].size == 4
    q.quotas.resize("net", 2)
    assert q.quotas.sizes()["net"] == 2
    with pytest.raises(KeyError):
        q.quotas["x"]
    with pytest.raises(KeyError):
        q.quotas.resize("x", 2)
    assert q.quotas.get("x") is None
    q.quotas.remove("net")
    with pytest.raises(KeyError):
        q.quotas.remove("net")
    q.quotas.remove("db")
    with pytest.raises(KeyError, match="no quota"):
        quota.size  # noqa: B018 - a handle on a removed quota
    assert list(q.quotas) == []


# -- catalogue 13.11-13.13 ---------------------------------------------------------------------
def test_size_one_quota_runs_its_jobs_one_at_a_time(clock_db: jobq.Database, q: jobq.Queue) -> None:
    """Catalogue 13.11, and a job without the quota behind them is still considered."""
    q.quotas.create("cat")
    a, b, free = put(q, "cat"), put(q, "cat"), put(q)
    assert claim(clock_db, 1) == [a]
    assert claim(clock_db) == [free]  # b is skipped, the jobs after it are not
    assert claim(clock_db) == []
    quota = q.quotas["cat"]
    assert holders(q, "cat") == [a] and len(quota) == 1 and quota.filled
    assert clock_db.get_job(a) in quota and clock_db.get_job(b) not in quota
    start(clock_db, a)
    assert claim(clock_db, dispatcher=B) == []  # running still holds the slot
    finish(clock_db, a)
    assert claim(clock_db, dispatcher=B) == [b]


def test_shrinking_a_full_quota_leaves_running_jobs_alone(
    clock_db: jobq.Database, q: jobq.Queue
) -> None:
    """Catalogue 13.12."""
    q.quotas.create("cat", size=2)
    j1, j2, j3 = put(q, "cat"), put(q, "cat"), put(q, "cat")
    assert claim(clock_db, 1) == [j1]
    assert claim(clock_db, 1) == [j2]
    assert claim(clock_db) == []
    q.quotas["cat"].size = 1
    assert q.quotas["cat"].filled and len(q.quotas["cat"]) == 2
    start(clock_db, j1)
    start(clock_db, j2)  # already claimed jobs run on
    finish(clock_db, j1)
    assert claim(clock_db) == []  # one holder left: still full at size 1
    finish(clock_db, j2)
    assert claim(clock_db) == [j3]
    finish(clock_db, j3)
    assert len(q.quotas["cat"]) == 0 and not q.quotas["cat"].filled


def test_growing_a_quota_lets_waiting_jobs_go(clock_db: jobq.Database, q: jobq.Queue) -> None:
    q.quotas.create("cat")
    a, b, c = put(q, "cat"), put(q, "cat"), put(q, "cat")
    assert claim(clock_db) == [a]
    q.quotas.resize("cat", 3)
    assert claim(clock_db) == [b, c]


def test_removed_quota_name_is_ignored(clock_db: jobq.Database, q: jobq.Queue) -> None:
    """Catalogue 13.13: removing a quota while pending jobs name it is allowed."""
    q.quotas.create("cat")
    q.quotas.create("dog")
    a, b, c = put(q, "cat"), put(q, "cat"), put(q, "dog", "cat")
    assert claim(clock_db) == [a]
    q.quotas.remove("cat")
    assert claim(clock_db) == [b, c]  # "cat" is ignored; c still takes the "dog" slot
    d = put(q, "dog")
    assert claim(clock_db) == []
    finish(clock_db, c)
    assert claim(clock_db) == [d]


def test_a_job_naming_several_quotas_needs_a_slot_in_each(
    clock_db: jobq.Database, q: jobq.Queue
) -> None:
    q.quotas.create("a", size=2)
    q.quotas.create("b", size=1)
    j1, j2, j3, j4, j5 = put(q, "a", "b"), put(q, "a"), put(q, "b"), put(q, "a"), put(q)
    assert claim(clock_db) == [j1, j2, j5]  # j3: b is full; j4: a filled up within this claim
    finish(clock_db, j1)
    assert claim(clock_db) == [j3, j4]


def test_a_filter_agent_respects_quotas(clock_db: jobq.Database, q: jobq.Queue) -> None:
    q.quotas.create("cat")
    a, b, c = put(q, "cat"), put(q, "cat"), put(q)
    assert claim(clock_db, accept=lambda r: r.id != a) == [b, c]
    assert claim(clock_db, accept=lambda r: True) == []


def test_jobs_behind_many_blocked_ones_are_claimed(clock_db: jobq.Database, q: jobq.Queue) -> None:
    """More blocked jobs than a claim looks at in one go: the jobs behind them still go."""
    q.quotas.create("cat")
    blocked = q.put_many([jobq.Job(jobfuncs.add, i, 0) for i in range(150)], quota_names=["cat"])
    free = put(q)
    assert claim(clock_db, 3) == [blocked[0].id, free]


def test_claims_respect_time_and_order_with_quotas(
    clock_db: jobq.Database, q: jobq.Queue, clock: MovableClock
) -> None:
    q.quotas.create("cat", size=5)
    later = put(q, "cat", begin_after=T0 + dt.timedelta(minutes=10))
    now = put(q, "cat")
    assert claim(clock_db) == [now]
    clock.advance(minutes=10)
    assert claim(clock_db) == [later]


# -- rescheduled and put-back jobs ---------------------------------------------------------------
def test_a_job_put_back_now_keeps_its_slot(clock_db: jobq.Database, q: jobq.Queue) -> None:
    """Interrupted and retried "now" (front of the queue): it may be claimed again although
    its quota is full, because it counts itself; the others stay blocked."""
    q.quotas.create("cat")
    a, b = put(q, "cat"), put(q, "cat")
    assert claim(clock_db) == [a]
    r = start(clock_db, a)
    clock_db.store.reschedule(a, r.attempt, A, None, {}, clock_db.clock.now())
    assert record(clock_db, a).status == "pending" and holders(q, "cat") == [a]
    assert claim(clock_db, dispatcher=B) == [a]
    assert claim(clock_db, dispatcher=B) == []
    # the sweep's path: the worker holding it is gone, its retry policy says "now"
    start(clock_db, a)
    hand_on(clock_db, [record(clock_db, a)], "test: its worker is gone")
    assert record(clock_db, a).status == "pending" and holders(q, "cat") == [a]
    assert claim(clock_db) == [a]
    # a claimed job released before it started keeps its slot too
    assert clock_db.store.release(a, record(clock_db, a).attempt, A)
    assert holders(q, "cat") == [a]
    assert claim(clock_db, dispatcher=B) == [a]
    finish(clock_db, a)
    assert claim(clock_db) == [b]


def test_a_job_rescheduled_later_frees_its_slot(
    clock_db: jobq.Database, q: jobq.Queue, clock: MovableClock
) -> None:
    q.quotas.create("cat")
    a, b = put(q, "cat"), put(q, "cat")
    assert claim(clock_db) == [a]
    r = start(clock_db, a)
    clock_db.store.reschedule(a, r.attempt, A, T0 + dt.timedelta(hours=1), {}, clock_db.clock.now())
    assert holders(q, "cat") == []
    assert claim(clock_db) == [b]
    clock.advance(hours=1)
    assert claim(clock_db) == []  # a is due again, but b holds the slot now
    finish(clock_db, b)
    assert claim(clock_db) == [a]


def test_a_pulled_job_gives_its_kept_slot_up(clock_db: jobq.Database, q: jobq.Queue) -> None:
    q.quotas.create("cat")
    a, b = put(q, "cat"), put(q, "cat")
    assert claim(clock_db) == [a]
    assert clock_db.store.release(a, record(clock_db, a).attempt, A)
    assert holders(q, "cat") == [a]
    pulled = q.pull()
    assert pulled.id == a and holders(q, "cat") == []
    assert claim(clock_db) == [b]
    q.put_back(pulled)  # at the front, but without a slot: it waits like the others
    assert claim(clock_db) == []
    finish(clock_db, b)
    assert claim(clock_db) == [a]


def test_a_job_past_its_deadline_is_claimed_without_consulting_quotas(
    clock_db: jobq.Database, q: jobq.Queue, clock: MovableClock
) -> None:
    """It is failed unstarted by the worker, so it takes no slot."""
    q.quotas.create("cat")
    a = put(q, "cat")
    late = put(q, "cat", begin_by=dt.timedelta(minutes=1))
    b = put(q, "cat")
    assert claim(clock_db) == [a]
    clock.advance(minutes=2)
    assert claim(clock_db) == [late]
    finish(clock_db, a)
    assert claim(clock_db) == [b]


def test_put_again_after_pull_may_change_quota_names(
    clock_db: jobq.Database, q: jobq.Queue
) -> None:
    q.quotas.create("cat")
    a = put(q, "cat")
    job = q.pull()
    q.put(job)
    assert record(clock_db, a).quota_names == ("cat",)
    q.put(q.pull(), quota_names=())
    assert record(clock_db, a).quota_names == ()


# -- concurrency -------------------------------------------------------------------------------
def test_concurrent_claimers_never_exceed_a_quota(db_url: str) -> None:
    """Six threads (six dispatchers, each with its own connection) claim and finish jobs as
    fast as they can; no moment has more than `size` jobs of the quota claimed or running.

    `held` is raised after a claim commits and lowered before the result commits, so it is
    never more than the database's count of holders: seeing it above 2 would be a breach.
    """
    db = jobq.connect(db_url)
    try:
        q = db.queue()
        q.quotas.create("cat", size=2)
        q.put_many([jobq.Job(jobfuncs.add, i, 0) for i in range(60)], quota_names=["cat"])
        q.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(20)])
        lock = threading.Lock()
        state = {"held": 0, "peak": 0, "done": 0, "seen": 0}
        problems: list[str] = []
        deadline = time.monotonic() + 30

        def claimer(uuid: str) -> None:
            store = db.store
            try:
                while time.monotonic() < deadline:
                    with lock:
                        if state["done"] >= 80:
                            return
                    records = store.claim("", uuid, "main", 3, db.clock.now())
                    mine = sum(1 for r in records if r.quota_names)
                    with lock:
                        state["held"] += mine
                        state["peak"] = max(state["peak"], state["held"])
                    seen = len(store.quota_holders("", "cat"))
                    with lock:
                        state["seen"] = max(state["seen"], seen)
                    if not records:
                        time.sleep(0.001)
                    for r in records:
                        assert store.start(r.id, r.attempt, uuid, db.clock.now())
                        time.sleep(0.002)  # hold the slot a little
                        with lock:
                            state["held"] -= 1 if r.quota_names else 0
                        outcome = Outcome(db.codec.dumps(0), "0")
                        store.store_result(r.id, r.attempt, uuid, outcome, db.clock.now())
                        with lock:
                            state["done"] += 1
            except Exception as error:  # pragma: no cover - reported below
                problems.append(repr(error))

        threads = [
            threading.Thread(target=claimer, args=(f"00000000-0000-0000-0000-{i:012d}",))
            for i in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert problems == []
        assert state["done"] == 80
        assert state["peak"] <= 2 and state["seen"] <= 2, state
        assert state["peak"] >= 1
        assert len(q) == 0
    finally:
        db.close()
