"""Priorities (`put(..., priority=N)`, issue 18.3) on both engines: among a queue's due jobs
higher priorities are claimed first, then by time, with put-back jobs still first; on every
claim path (plain, an agent's filter, quotas, the callback slot); shown in queue order and
by the monitor; bad priorities refused at the call with nothing stored. (A real worker
process draining a mixed backlog: tests/acceptance/test_priorities_process.py.)"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import jobfuncs as jf
import pytest
from click.testing import CliRunner

import jobq
from jobq.cli import main
from jobq.errors import ConfigError
from jobq.monitor.service import Monitor
from jobq.store.base import JobQuery, JobRecord
from jobq.testing import MovableClock
from jobq.worker.schedules import Schedules


def claim(db: jobq.Database, limit: int, accept: Any = None, queue: str = "") -> list[JobRecord]:
    return db.store.claim(queue, str(uuid.uuid4()), "main", limit, db.clock.now(), accept=accept)


def backlog(queue: jobq.Queue, later: dt.datetime) -> dict[str, int]:
    """Jobs of mixed priorities, due now but for two high ones scheduled later; by name."""
    jobs = {
        "low": queue.put(jf.add, priority=-5),
        "zero_a": queue.put(jf.add),
        "high_a": queue.put(jf.add, priority=7),
        "future_top": queue.put(jf.add, priority=10, begin_after=later),
        "zero_b": queue.put(jf.add, priority=0),
        "high_b": queue.put(jf.add, priority=7),
        "mid": queue.put(jf.add, priority=3),
        "future_high": queue.put(jf.add, priority=7, begin_after=later),
    }
    return {name: job.id for name, job in jobs.items() if job.id is not None}


DUE_ORDER = ["high_a", "high_b", "mid", "zero_a", "zero_b", "low"]


@pytest.mark.parametrize("path", ["plain", "filter", "quotas"])
def test_due_jobs_are_claimed_higher_priority_first_then_by_time(
    db: jobq.Database, queue: jobq.Queue, path: str
) -> None:
    if path == "quotas":
        queue.quotas.create("slots", 100)
    ids = backlog(queue, db.clock.now() + dt.timedelta(hours=1))
    accept = (lambda record: True) if path == "filter" else None
    taken = [r.id for r in claim(db, 2, accept)] + [r.id for r in claim(db, 10, accept)]
    assert taken == [ids[name] for name in DUE_ORDER]
    assert len(queue) == 2  # the two scheduled for later wait, whatever their priority


def test_a_filter_takes_the_highest_priority_job_it_accepts(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    """An agent's filter judges candidates in queue order: it skips the jobs it refuses
    and takes the highest priority it accepts."""
    refused = queue.put(jobq.Job(jf.double, 1), priority=9)
    low = queue.put(jobq.Job(jf.add, 1, 2), priority=-1)
    high = queue.put(jobq.Job(jf.add, 1, 2), priority=4)
    taken = claim(db, 5, lambda record: record.call_repr.startswith("jobfuncs.add"))
    assert [r.id for r in taken] == [high.id, low.id]
    assert [j.id for j in queue] == [refused.id]


def test_jobs_put_back_come_first_whatever_their_priority(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    top = queue.put(jf.add, priority=10)
    back = queue.put(jf.add, priority=-10)
    queue.put_back(queue.pull(1))  # `back`, at the front now
    assert [j.id for j in queue] == [back.id, top.id]
    assert [r.id for r in claim(db, 1)] == [back.id]


def test_the_queue_and_the_monitor_list_pending_jobs_in_claim_order(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    ids = backlog(queue, db.clock.now() + dt.timedelta(hours=1))
    expected = [ids[n] for n in ["future_top", "high_a", "high_b", "future_high", "mid"]]
    expected += [ids[n] for n in ["zero_a", "zero_b", "low"]]  # listed at their priority
    assert [j.id for j in queue] == expected
    assert [j.priority for j in queue] == [10, 7, 7, 7, 3, 0, 0, -5]
    monitor = Monitor(db)
    assert [r.id for r in monitor.list(JobQuery(states=("pending",)), limit=50)] == expected
    both = JobQuery(states=("pending", "completed"))  # the general listing's order
    assert [r.id for r in db.store.list_jobs(both, db.clock.now(), offset=0, limit=50)] == expected
    assert queue[0].id == ids["future_top"] and queue[-1].id == ids["low"]


def test_the_monitor_filters_and_shows_priorities(db: jobq.Database, queue: jobq.Queue) -> None:
    ids = backlog(queue, db.clock.now() + dt.timedelta(hours=1))
    monitor = Monitor(db)
    at_least = monitor.select(["pending", "priority:7.."]).query
    assert {r.id for r in monitor.list(at_least)} == {
        ids[n] for n in ("future_top", "high_a", "high_b", "future_high")
    }
    exactly = monitor.select(["pending", "priority:0"]).query
    assert monitor.count(exactly) == 2
    below = monitor.select(["pending", "priority:..-1"]).query
    assert [r.id for r in monitor.list(below)] == [ids["low"]]
    assert monitor.job(ids["mid"]).priority == 3
    assert monitor.job(ids["mid"]).to_json()["priority"] == 3
    for bad in ("priority:11", "priority:high", "priority:5..2"):
        with pytest.raises(ValueError, match="priority"):
            monitor.select(["pending", bad])


def test_put_many_a_job_s_own_priority_and_a_pulled_job(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    jobs = queue.put_many([jf.add, jobq.Job(jf.add, 1, 2)], priority=4)
    assert [j.priority for j in jobs] == [4, 4]
    assert {db.get_job(j.id).priority for j in jobs if j.id is not None} == {4}
    own = jobq.Job(jf.add, 1, 2)
    own.priority = -2  # a Job's own priority, used when put gives none
    assert queue.put(own).priority == -2
    assert db.get_job(own.id).priority == -2  # type: ignore[arg-type]
    pulled = queue.pull(0)  # one of the priority-4 jobs
    queue.put(pulled)  # keeps its priority
    assert db.get_job(pulled.id).priority == 4  # type: ignore[arg-type]
    pulled = queue.pull(0)
    queue.put(pulled, priority=9)  # or takes put's
    assert db.get_job(pulled.id).priority == 9  # type: ignore[arg-type]


def test_callbacks_inherit_their_job_s_priority_and_a_retry_keeps_it(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    job = queue.put(jf.fail, priority=6)
    callback = job.add_callback(jobq.Job(jf.describe_result))
    assert db.get_job(callback.id).priority == 6  # type: ignore[arg-type]
    with jobq.testing.start_worker(db):
        assert callback.wait(timeout=30) is not None
    copy = Monitor(db).retry(job.id)  # type: ignore[arg-type]
    assert copy.priority == 6 and db.get_job(copy.id).priority == 6


def test_the_callback_slot_takes_callbacks_by_priority(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    parents = [queue.put(jobq.Job(jf.add, 1, 1), priority=p) for p in (1, 8, 1)]
    callbacks = [p.add_callback(jobq.Job(jf.identity)) for p in parents]
    with db.store._transaction() as ex:  # type: ignore[attr-defined]
        ex.raw("UPDATE jobq_jobs SET status = 'completed' WHERE parent_id IS NULL")
        ex.raw("UPDATE jobq_jobs SET status = 'pending', lane = 0 WHERE parent_id IS NOT NULL")
    now = db.clock.now()
    me = str(uuid.uuid4())
    db.store.activate_dispatcher(me, "host", 1, 5.0, 60.0, now)
    taken = db.store.claim_callbacks("", me, "main", 5, now)
    assert [r.id for r in taken] == [callbacks[1].id, callbacks[0].id, callbacks[2].id]


@pytest.mark.parametrize("bad", [11, -11, 1000, "1", 1.5, True, None])
def test_a_bad_priority_is_refused_at_the_put_and_nothing_is_stored(
    db: jobq.Database, queue: jobq.Queue, bad: Any
) -> None:
    queue.put(jf.add)
    if bad is None:  # a Job's own priority is checked too
        job = jobq.Job(jf.add)
        job.priority = 42
        with pytest.raises(ValueError, match=r"job\.priority=42 is out of range.*-10 to 10"):
            queue.put_many([jf.add, job])
    elif isinstance(bad, int) and not isinstance(bad, bool):
        with pytest.raises(ValueError, match=rf"priority={bad} is out of range.*-10 to 10"):
            queue.put(jf.add, priority=bad)
        with pytest.raises(ValueError, match=rf"priority={bad}"):
            queue.put_many([jf.add, jf.add], priority=bad)
    else:
        with pytest.raises(TypeError, match=r"priority must be an int from -10 to 10"):
            queue.put(jf.add, priority=bad)
    assert len(queue) == 1
    assert Monitor(db).count(JobQuery(states=("pending", "new"))) == 1


def test_a_running_job_puts_jobs_with_priorities(db: jobq.Database, queue: jobq.Queue) -> None:
    """jobq.local's queue: the put joins the running job's transaction, priority included."""
    parent = queue.put(jobq.Job(jf.put_with_priorities, [2, -4]))
    with jobq.testing.start_worker(db):
        parent.wait(timeout=30)
    children = Monitor(db).list(JobQuery(states=("pending", "completed")), limit=10)
    stored = {r.call_repr: r.priority for r in children if r.id != parent.id}
    assert stored == {"jobfuncs.add(2, 0)": 2, "jobfuncs.add(-4, 0)": -4}


START = dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


def test_a_schedule_puts_its_jobs_at_its_priority(
    clock_db: jobq.Database, clock: MovableClock
) -> None:
    made = clock_db.schedule(
        "urgent", "0 * * * *", jobq.Job(jf.add, 1, 2), missed="once", priority=8
    )
    assert made.priority == 8 and made.to_json()["priority"] == 8
    for bad in (11, "8"):
        with pytest.raises(ConfigError, match=r"schedule 'bad'.*priorit.*-10 to 10"):
            clock_db.schedule("bad", "0 * * * *", jobq.Job(jf.add, 1, 2), priority=bad)
    assert [s.name for s in clock_db.schedules()] == ["urgent"]
    clock.set(START + dt.timedelta(hours=1, minutes=1))
    assert Schedules(clock_db.store).tick(clock.now()) == 1
    (job_id,) = [j for _, j in clock_db.store.schedule_ticks("urgent") if j]
    assert clock_db.get_job(job_id).priority == 8
    result = CliRunner().invoke(
        main,
        ["schedule", "add", "urgent", "0 * * * *", "jobfuncs:add", "1", "2", "--priority", "-3",
         "--db", clock_db.url or "", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert clock_db.get_schedule("urgent").priority == -3  # a changed definition
    refused = CliRunner().invoke(
        main,
        ["schedule", "add", "other", "0 * * * *", "jobfuncs:add", "--priority", "12",
         "--db", clock_db.url or ""],
    )  # fmt: skip
    assert refused.exit_code == 2 and "--priority" in refused.output
    assert [s.name for s in clock_db.schedules()] == ["urgent"]


def test_the_jobs_command_filters_by_priority_and_refuses_a_bad_one(
    db: jobq.Database, queue: jobq.Queue
) -> None:
    ids = backlog(queue, db.clock.now() + dt.timedelta(hours=1))
    url = db.url or ""
    shown = CliRunner().invoke(
        main, ["jobs", "pending", "--priority", "3..6", "--json", "--db", url]
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.split() == ["[", str(ids["mid"]), "]"]
    table = CliRunner().invoke(main, ["jobs", "pending", "--db", url])
    assert "priority" in table.output
    for bad in ("11", "x", "..", "4..2"):
        refused = CliRunner().invoke(main, ["jobs", "pending", "--priority", bad, "--db", url])
        assert refused.exit_code == 2 and "bad value for priority" in refused.output, bad
