"""The database-wide monitor (catalogue 8.3, scenarios 70-75) and operator actions, on both
engines, driven through the store on a fake clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import jobfuncs
import pytest

import jobq
from jobq.monitor import Monitor
from jobq.monitor.metrics import database_metrics
from jobq.monitor.views import TimedJob
from jobq.store.base import JobQuery
from jobq.testing import MovableClock

from .conftest import T0, UUID, Driver

OTHER = "22222222-2222-4222-8222-222222222222"


def ids(records: list) -> list[int]:
    return [r.id for r in records]


def q(monitor: Monitor, *args: str) -> JobQuery:
    return monitor.select(args).query


def test_pending_counts_order_and_callable_globs(clock_db: jobq.Database, monitor: Monitor) -> None:
    queue = clock_db.queue()
    jobs = [
        queue.put(jobq.Job(jobfuncs.add, 1, 2)),
        queue.put(jobq.Job(jobfuncs.add, 3, 4)),
        queue.put(jobq.Job(jobfuncs.double, 5)),
        queue.put(jobq.Job(jobfuncs.identity, "x")),
        queue.put(jobq.Job(jobfuncs.describe_result, 1)),
        queue.put(jobq.Job(jobfuncs.sleep_then, 0)),
    ]
    assert monitor.count(q(monitor, "pending")) == 6
    assert ids(monitor.list(q(monitor, "pending"))) == [j.id for j in jobs]
    assert monitor.list(q(monitor, "pending"))[0].call_repr == "jobfuncs.add(1, 2)"
    assert monitor.count(q(monitor, "pending", "callable:ad*")) == 2  # the name alone
    assert monitor.count(q(monitor, "pending", "callable:*funcs.dou*")) == 1  # the full name
    assert monitor.count(q(monitor, "pending", "callable:*s*")) == 2  # describe_result, sleep_then
    assert monitor.count(q(monitor, "pending", "callable:jobfuncs.*")) == 6
    assert monitor.count(q(monitor, "pending", "callable:add")) == 2
    assert monitor.count(q(monitor, "pending", "queue:nope")) == 0
    # paging
    assert ids(monitor.list(q(monitor, "pending"), offset=2, limit=2)) == [jobs[2].id, jobs[3].id]


def test_states_and_failed_versus_succeeded(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver
) -> None:
    driver.dispatcher()
    queue = clock_db.queue()
    failed = queue.put(jobq.Job(jobfuncs.fail))
    ok = queue.put(jobq.Job(jobfuncs.add, 1, 1))
    active = queue.put(jobq.Job(jobfuncs.double, 3))
    with_callback = queue.put(jobq.Job(jobfuncs.identity, 4))
    with_callback.add_callback(jobfuncs.describe_result)
    driver.run(failed, 1, 1, error=RuntimeError("boom"))
    driver.run(ok, 1, 1, value=2)
    driver.claim_only(active)
    driver.start(active)
    driver.run(with_callback, 1, 1, value=4)  # its callback is now pending: status callbacks
    counts = monitor.jobstats(
        q(monitor, "pending", "assigned", "active", "callbacks", "completed")
    ).counts
    assert {k: counts[k] for k in ("active", "callbacks", "succeeded", "failed", "pending")} == {
        "active": 1,
        "callbacks": 1,
        "succeeded": 1,
        "failed": 1,
        "pending": 1,
    }
    assert ids(monitor.list(q(monitor, "failed"))) == [failed.id]
    assert ids(monitor.list(q(monitor, "succeeded"))) == [ok.id]
    assert ids(monitor.list(q(monitor, "completed"))) == [ok.id, failed.id]  # newest first
    with pytest.raises(ValueError, match='zero or one of "completed", "succeeded,"'):
        monitor.select(["succeeded", "failed"])


def test_jobstats_has_real_minimums(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver
) -> None:
    driver.dispatcher()
    queue = clock_db.queue()
    quick = queue.put(jobq.Job(jobfuncs.add, 1, 1))
    slow = queue.put(jobq.Job(jobfuncs.add, 2, 2))
    driver.run(quick, wait=1, active=2, value=2)
    driver.run(slow, wait=10, active=30, value=4)
    stats = monitor.jobstats(q(monitor, "completed"))
    assert stats.longest_active == TimedJob(dt.timedelta(seconds=30), slow.id)
    assert stats.shortest_active == TimedJob(dt.timedelta(seconds=2), quick.id)
    longest_wait, shortest_wait = stats.longest_wait, stats.shortest_wait
    assert longest_wait is not None and shortest_wait is not None
    assert longest_wait.job_id == slow.id and shortest_wait.job_id == quick.id
    assert shortest_wait.duration < longest_wait.duration


def test_time_filters_split_jobs(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver, clock: MovableClock
) -> None:
    driver.dispatcher()
    queue = clock_db.queue()
    old, new = queue.put(jobq.Job(jobfuncs.add, 1, 1)), queue.put(jobq.Job(jobfuncs.add, 2, 2))
    driver.claim_only(old)
    driver.start(old)
    clock.advance(5)
    driver.claim_only(new)
    driver.start(new)
    clock.advance(1)
    assert ids(monitor.list(q(monitor, "active", "start:before2S"))) == [old.id]
    assert ids(monitor.list(q(monitor, "active", "start:since2S"))) == [new.id]
    assert ids(monitor.list(q(monitor, "active", "start:since10S,before2S"))) == [old.id]
    assert ids(monitor.list(q(monitor, "active"))) == [old.id, new.id]  # oldest start first
    driver.finish(old, 2)
    clock.advance(10)
    driver.finish(new, 4)
    clock.advance(1)
    assert monitor.lastcompleted(["end:before5S"]).id == old.id  # type: ignore[union-attr]
    assert monitor.lastcompleted().id == new.id  # type: ignore[union-attr]
    assert monitor.count(q(monitor, "completed", "callbacks_completed:since5S")) == 1
    assert monitor.count(q(monitor, "pending", "start:since1H")) == 0  # start drops pending
    with pytest.raises(ValueError, match="unsupported filters: start"):
        monitor.nextpending(["start:since1M"])


def test_agent_and_uuid_filters_judge_pending_jobs_by_the_agents_filters(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver
) -> None:
    driver.dispatcher()
    driver.dispatcher(OTHER, agents=(("", "filtered", 1, "jobfuncs:only_double"),))
    queue = clock_db.queue()
    queue.put(jobq.Job(jobfuncs.add, 1, 2))
    assert monitor.count(q(monitor, "pending")) == 1
    assert monitor.count(q(monitor, "pending", "agent:filtered")) == 0
    doubled = queue.put(jobq.Job(jobfuncs.double, 2))
    assert monitor.count(q(monitor, "pending", "agent:filtered")) == 1
    assert ids(monitor.list(q(monitor, "pending", "agent:filtered"))) == [doubled.id]
    assert monitor.count(q(monitor, "pending", "uuid:THIS")) == 2  # agent main takes all
    assert monitor.count(q(monitor, "pending", f"uuid:{OTHER}")) == 1
    # held jobs are matched on their own agent and dispatcher
    driver.claim_only(doubled, uuid=OTHER, agent="filtered")
    assert monitor.count(q(monitor, "assigned", "agent:filt*")) == 1
    assert monitor.count(q(monitor, "assigned", "uuid:THIS")) == 0
    assert (
        monitor.jobstats(q(monitor, "pending", "assigned", "agent:filtered")).counts["assigned"]
        == 1
    )


def test_status_lists_queues_dispatchers_and_merges_pending_by_begin_after(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver, clock: MovableClock
) -> None:
    driver.dispatcher(agents=(("", "main", 3, None), ("alt", "main", 2, None)))
    first = clock_db.queue("alt").put(jobq.Job(jobfuncs.add, 1, 1))
    clock.advance(1)
    second = clock_db.queue().put(jobq.Job(jobfuncs.add, 2, 2))
    clock.advance(1)
    third = clock_db.queue("alt").put(jobq.Job(jobfuncs.add, 3, 3))
    assert ids(monitor.list(q(monitor, "pending"))) == [first.id, second.id, third.id]
    status = monitor.status(queue="alt")
    assert [q.name for q in status.queues] == ["alt"]
    assert status.queue("alt").pending == 2
    info = status.queue("alt").dispatcher(UUID)
    assert {a.name: a.size for a in info.agents}["main"] == 2 and info.dead is False
    clock.advance(60)  # no ping for longer than the death interval
    assert monitor.status().queue("alt").dispatcher(UUID).dead is True
    assert [d.state for d in monitor.dispatchers()] == ["dead"]


def test_queue_stats_count_each_state_of_each_queue(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver, clock: MovableClock
) -> None:
    """`jobq status` and the metrics count every queue's jobs by state (pending and due,
    assigned, active, callbacks, succeeded, failed), whichever index or scan each engine
    counts them with; jobs pulled from their queue are not counted."""
    driver.dispatcher()
    jobs: list[jobq.Job] = []
    for i in range(18):
        queue = clock_db.queue(("", "alt", "third")[i % 3])
        later = clock.now() + dt.timedelta(hours=1) if i % 4 == 3 else None
        jobs.append(queue.put(jobq.Job(jobfuncs.add, i, 1), begin_after=later))
    for i, job in enumerate(jobs):
        if i % 4 == 3:
            continue  # scheduled: pending, not due
        step = i % 6
        if step == 1:
            driver.claim_only(job)  # assigned
        elif step == 2:
            driver.claim_only(job, start=True)  # active
        elif step == 4:
            driver.run(job, 0, 1, value=i)  # succeeded
        elif step == 5:
            job.add_callback(jobfuncs.describe_result)
            driver.run(job, 0, 1, error=RuntimeError("no"))  # callbacks: its callback waits
    monitor.pull(jobs[0].id)  # type: ignore[arg-type]  # pulled: "new"
    failed = clock_db.queue("alt").put(jobq.Job(jobfuncs.add, 0, 0))
    driver.run(failed, 0, 1, error=RuntimeError("boom"))  # failed
    now = clock.now()
    expected: dict[str, dict[str, int]] = {}
    every = clock_db.store.list_jobs(JobQuery(states=ALL_STATES), now, limit=1000)
    assert jobs[0].id not in ids(every) and len(every) == len(jobs) + 2  # two callbacks wait
    for record in every:
        state = record.status
        if state == "completed":
            state = "failed" if record.failed else "succeeded"
        counts = expected.setdefault(record.queue, {})
        counts[state] = counts.get(state, 0) + 1
        if state == "pending" and record.begin_after <= now:
            counts["due"] = counts.get("due", 0) + 1
    got = {
        stats.name: {
            name: value
            for name in ("pending", "due", "assigned", "active", "callbacks", "succeeded", "failed")
            if (value := getattr(stats, name))
        }
        for stats in clock_db.store.queue_stats(now)
    }
    assert got == expected
    assert {"pending", "due", "assigned", "active", "callbacks", "succeeded", "failed"} <= {
        state for counts in got.values() for state in counts
    }


def test_job_summary_traceback_and_tree(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver
) -> None:
    driver.dispatcher()
    job = clock_db.queue().put(jobq.Job(jobfuncs.fail, "kaput"))
    callback = job.add_callback(jobfuncs.failure_type)
    clock_db.store.set_annotation(job.id, "progress", {"done": 1, "total": 4})  # type: ignore[arg-type]
    driver.run(job, 2, 3, error=RuntimeError("kaput"))
    summary = monitor.job(job.id)  # type: ignore[arg-type]
    assert summary.status == "callbacks" and summary.failed is True
    assert summary.callbacks == (callback.id,)
    assert summary.active == dt.timedelta(seconds=3) and summary.wait == dt.timedelta(0, 2)
    assert summary.progress == 0.25
    assert summary.result is not None
    assert summary.result.startswith("Traceback") and "RuntimeError: kaput" in summary.result
    brief = monitor.traceback(job.id, "brief")  # type: ignore[arg-type]
    assert brief is not None and brief.splitlines()[-1] == "RuntimeError: kaput"
    verbose = monitor.traceback(job.id, "verbose")  # type: ignore[arg-type]
    assert verbose is not None and "raise error\nRuntimeError: kaput" in verbose
    assert "not recorded" in verbose and "--traceback-locals" in verbose  # off by default
    with pytest.raises(ValueError, match="detail must be one of brief, default, verbose"):
        monitor.traceback(job.id, "loud")  # type: ignore[arg-type]
    assert monitor.traceback(callback.id) is None  # type: ignore[arg-type]
    tree = monitor.tree(job.id)  # type: ignore[arg-type]
    assert [c.id for c in tree.callbacks] == [callback.id]
    with pytest.raises(jobq.JobNotFound):
        monitor.job(999999)


def test_operator_actions(clock_db: jobq.Database, monitor: Monitor, driver: Driver) -> None:
    driver.dispatcher()
    queue = clock_db.queue()
    pulled = queue.put(jobq.Job(jobfuncs.add, 1, 1))
    assert monitor.pull(pulled.id).status == "new"  # type: ignore[arg-type]
    with pytest.raises(jobq.BadStatusError, match="can only pull a pending job"):
        monitor.pull(pulled.id)  # type: ignore[arg-type]
    doomed = queue.put(jobq.Job(jobfuncs.add, 2, 2))
    failed = monitor.fail(doomed.id, "not today")  # type: ignore[arg-type]
    assert failed.failed and failed.failure["message"] == "not today"  # type: ignore[index]
    with pytest.raises(jobq.BadStatusError, match="can only retry a failed"):
        monitor.retry(pulled.id)  # type: ignore[arg-type]
    copy = monitor.retry(doomed.id)  # type: ignore[arg-type]
    assert copy.status == "pending" and copy.call_repr == "jobfuncs.add(2, 2)"
    assert copy.annotations == {"retry_of": doomed.id}
    assert clock_db.store.get(doomed.id).annotations == {"retried_as": copy.id}  # type: ignore
    monitor.pause("")
    assert clock_db.store.paused_queues() == {""}
    assert monitor.status().queue("").paused is True
    monitor.resume("")
    assert clock_db.store.paused_queues() == set()
    assert monitor.agent_size("", "main", 7) == 1
    assert clock_db.store.agents(UUID)[0].size == 7
    with pytest.raises(ValueError, match="no agent 'nope'"):
        monitor.agent_size("", "nope", 1)
    monitor.quota_size("", "db", 2)
    assert clock_db.store.quotas() == [("", "db", 2)]


def test_pausing_an_unknown_queue_is_refused_and_creates_nothing(db: jobq.Database) -> None:
    monitor = Monitor(db)
    db.queue("reports")
    with pytest.raises(jobq.QueueNotFound, match=r"no queue named 'repotrs'.*'reports'"):
        monitor.pause("repotrs")
    with pytest.raises(jobq.QueueNotFound, match="no queue named 'repotrs'"):
        monitor.resume("repotrs")
    assert "repotrs" not in [q.name for q in monitor.status().queues]
    assert db.store.paused_queues() == set()


def test_a_paused_queue_is_not_claimed_from(db: jobq.Database) -> None:
    monitor = Monitor(db)
    monitor.pause("", create=True)  # before its first job
    job = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
    with db.worker(poll_interval=0.05) as worker:
        polls = worker.polls
        while worker.polls < polls + 30:  # agents (and pause flags) are re-read every second
            job.refresh()
            assert job.status == "pending"
            worker.wake()
            time.sleep(0.05)
        monitor.resume("")
        assert job.wait(timeout=20) == 3


def test_retention_prunes_old_completed_jobs_in_batches(
    clock_db: jobq.Database, driver: Driver, clock: MovableClock
) -> None:
    from jobq.worker.retention import Retention

    driver.dispatcher()
    queue = clock_db.queue()
    old = [queue.put(jobq.Job(jobfuncs.add, i, i)) for i in range(5)]
    parent = queue.put(jobq.Job(jobfuncs.identity, 1))
    for job in old:
        driver.run(job, 0, 1, value=0)
    driver.run(parent, 0, 1, value=1)
    late = parent.add_callback(jobfuncs.describe_result)  # added after completion: pending
    clock.advance(8 * 86400)
    recent = queue.put(jobq.Job(jobfuncs.add, 9, 9))
    driver.run(recent, 0, 1, value=18)
    clock_db.store.deactivate_dispatcher(UUID, clock.now())
    retention = Retention(clock_db.store, batch=2)
    result = retention.tick(clock.now())
    assert result is not None and result.jobs == 5 and result.dispatchers == 0
    for job in old:
        with pytest.raises(jobq.JobNotFound):
            job.refresh()
    assert parent.refresh().status == "completed"  # its late callback still needs its result
    assert late.refresh().status == "pending" and recent.refresh().status == "completed"
    assert retention.tick(clock.advance(30)) is None  # not yet: every 60 s
    clock.advance(8 * 86400)
    result = retention.tick(clock.now())
    assert result is not None and result.dispatchers == 1
    assert clock_db.store.get_dispatcher(UUID) is None and clock_db.store.agents(UUID) == []
    off = Retention(clock_db.store, keep=None).tick(clock.now())  # prunes only expired jobs
    assert off is not None and (off.jobs, off.dispatchers, off.expired) == (0, 0, 0)


def test_throughput_totals_and_metrics(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver, clock: MovableClock
) -> None:
    driver.dispatcher()
    queue = clock_db.queue("reports")
    a, b, c = (queue.put(jobq.Job(jobfuncs.add, i, 1)) for i in range(3))
    driver.run(a, 1, 2, value=1)
    clock.advance(60)
    driver.run(b, 1, 4, value=2)
    driver.run(c, 1, 1, error=ValueError("no"))
    buckets = clock_db.store.throughput(T0, dt.timedelta(minutes=1), 3)
    assert [(x.succeeded, x.failed) for x in buckets] == [(1, 0), (1, 1), (0, 0)]
    totals = {t.failed: t for t in clock_db.store.job_totals(T0)}
    assert totals[False].count == 2 and totals[False].active_sum == pytest.approx(6.0)
    assert totals[False].active_max == pytest.approx(4.0) and totals[True].count == 1
    clock_db.store.ping(UUID, clock.now())
    text = database_metrics(monitor)
    assert 'jobq_jobs{queue="reports",status="succeeded"} 2' in text
    assert 'jobq_jobs{queue="reports",status="failed"} 1' in text
    assert 'jobq_window_jobs{queue="reports",outcome="succeeded"} 2' in text
    assert f'jobq_dispatcher_up{{uuid="{UUID}",host="testhost"}} 1' in text
    assert "# TYPE jobq_jobs gauge" in text


def test_list_jobs_query_fields_all_work(clock_db: jobq.Database, monitor: Monitor) -> None:
    """Every JobQuery time field is accepted by both engines' SQL (NULL or set)."""
    job = clock_db.queue().put(jobq.Job(jobfuncs.add, 1, 1))
    base = JobQuery(states=("pending",))
    now = clock_db.clock.now()
    for name in [f.name for f in dataclasses.fields(JobQuery) if f.name.endswith("_since")]:
        since = dataclasses.replace(base, **{name: now - dt.timedelta(hours=1)})
        expected = [job.id] if name == "requested_since" else []
        assert ids(clock_db.store.list_jobs(since, now)) == expected, name


ALL_STATES = ("pending", "assigned", "active", "callbacks", "completed")


def assert_listed_as_in_general(
    store: Any, states: tuple[str, ...], fields: dict[str, Any], now: dt.datetime
) -> None:
    """A listing of `states` alone (which may take its own indexed query) gives what the
    general listing of every state gives for those rows, in the same order."""
    general = [
        r.id
        for r in store.list_jobs(JobQuery(states=ALL_STATES, **fields), now)
        if r.status in states
    ]
    assert ids(store.list_jobs(JobQuery(states=states, **fields), now)) == general, (
        states,
        fields,
    )


def test_completed_jobs_are_listed_in_the_general_order_through_their_own_index(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver, clock: MovableClock
) -> None:
    """A listing of completed jobs only reads the completed index (monitor_completed_jobs);
    it must give what the general listing gives for those rows: newest first, ties on the
    completion time broken by id, with the other filters and paging."""
    driver.dispatcher()
    jobs = []
    for i in range(8):
        queue = clock_db.queue("other" if i % 3 == 0 else "")
        job = queue.put(jobq.Job(jobfuncs.add, i, 1))
        driver.claim_only(job)
        driver.start(job)
        if i % 2 == 0:
            clock.advance(1)  # pairs of jobs complete at the same time
        driver.finish(job, error=RuntimeError("boom") if i % 4 == 1 else None, value=i + 1)
        jobs.append(job)
    clock_db.queue().put(jobq.Job(jobfuncs.add, 0, 0))  # pending: only in the general listing
    store = clock_db.store
    now = clock.now()
    for fields in [{}, {"failed": True}, {"failed": False}, {"queues": ("other",)}]:
        assert_listed_as_in_general(store, ("completed",), fields, now)
    every = ids(store.list_jobs(JobQuery(states=("completed",)), now))
    assert sorted(every) == sorted(j.id for j in jobs)
    assert every[:2] == [jobs[7].id, jobs[6].id]  # same completion time: higher id first
    paged = ids(store.list_jobs(JobQuery(states=("completed",)), now, offset=3, limit=2))
    assert paged == every[3:5]


def test_pending_jobs_are_listed_in_the_general_order_queue_by_queue(
    clock_db: jobq.Database,
    monitor: Monitor,
    driver: Driver,
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A listing of pending jobs only reads each queue's pending index in order and merges the
    queues (monitor_pending_jobs); it must give what the general listing gives for those rows:
    put-back jobs first, then by when they became due, ties by id, across queues, with the
    other filters and paging; with many queues it reads every pending row instead."""
    driver.dispatcher()
    names = ["", "other", "reports"]
    pending = []
    for i in range(12):
        queue = clock_db.queue(names[i % 3])
        # Some pre-dated (due before jobs put earlier), some scheduled later, some put together.
        begin_after = clock.now() + dt.timedelta(seconds=(-30, 0, 45, 5)[i % 4])
        pending.append(queue.put(jobq.Job(jobfuncs.add, i, 1), begin_after=begin_after))
        if i % 3 == 0:
            clock.advance(1)
    held = clock_db.queue("other").put(jobq.Job(jobfuncs.add, 0, 0))
    driver.claim_only(held)  # held: only in the general listing
    done = clock_db.queue("reports").put(jobq.Job(jobfuncs.add, 0, 0))
    driver.run(done, 1, 1, value=0)  # completed: likewise
    cancelled = pending.pop(4)
    monitor.pull(cancelled.id)  # type: ignore[arg-type]
    clock.advance(1)
    assert clock_db.store.put_back("reports", cancelled.id, clock.now())  # type: ignore[arg-type]
    store = clock_db.store
    now = clock.now()
    listed = ids(store.list_jobs(JobQuery(states=("pending",)), now))
    assert listed[0] == cancelled.id  # put back: the front of every queue's order
    assert sorted(listed) == sorted(j.id for j in [*pending, cancelled])
    filters: list[dict[str, Any]] = [
        {},
        {"queues": ("other", "reports")},
        {"queue": "rep*"},
        {"callable": "add"},
        {"requested_since": T0},
    ]
    for fields in filters:
        assert_listed_as_in_general(store, ("pending",), fields, now)
    for offset, limit in [(0, 1), (2, 5), (10, 5), (0, 0)]:
        paged = ids(store.list_jobs(JobQuery(states=("pending",)), now, offset=offset, limit=limit))
        assert paged == listed[offset : offset + limit]
    monkeypatch.setattr("jobq.store._monitor.MERGED_QUEUES_MOST", 1)  # three queues: fall back
    assert ids(store.list_jobs(JobQuery(states=("pending",)), now)) == listed
    assert_listed_as_in_general(store, ("pending",), {"queue": "rep*"}, now)


def test_held_jobs_are_listed_in_the_general_order_through_the_dispatcher_index(
    clock_db: jobq.Database, monitor: Monitor, driver: Driver, clock: MovableClock
) -> None:
    """A listing of held jobs only (assigned, active, callbacks) reads the dispatcher index
    (monitor_held_jobs); it must give what the general listing gives for those rows: oldest
    start (or claim) first, ties by id, with the other filters and paging."""
    driver.dispatcher()
    held = []
    for i in range(7):
        queue = clock_db.queue("other" if i % 3 == 0 else "")
        job = queue.put(jobq.Job(jobfuncs.add, i, 1))
        driver.claim_only(job)
        if i % 3 != 1:
            driver.start(job)  # the others stay assigned
        if i == 5:
            job.add_callback(jobfuncs.describe_result)
            driver.finish(job, value=6)  # callbacks: its callback is pending
        if i % 2 == 0:
            clock.advance(1)  # pairs of jobs start at the same time
        held.append(job)
    clock_db.queue().put(jobq.Job(jobfuncs.add, 0, 0))  # pending: only in the general listing
    store = clock_db.store
    now = clock.now()
    for states in [("assigned", "active", "callbacks"), ("active",), ("assigned", "callbacks")]:
        for fields in [{}, {"queues": ("other",)}]:
            assert_listed_as_in_general(store, states, fields, now)
    all_held = JobQuery(states=("assigned", "active", "callbacks"))
    every = ids(store.list_jobs(all_held, now))
    assert sorted(every) == sorted(j.id for j in held)
    assert ids(store.list_jobs(all_held, now, offset=2, limit=3)) == every[2:5]
