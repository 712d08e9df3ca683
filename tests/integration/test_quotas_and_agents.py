"""Quotas with running workers, and agents and quotas changed while a worker runs (used at its
next poll), on both engines. Jobs wait on gates (`jobfuncs.gated`), which also record how many
of them ran at once; nothing here depends on timing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import jobfuncs
import pytest
from worker_helpers import wait_until

import jobq
from jobq.errors import ConfigError
from jobq.worker.agent import AgentSpec


@pytest.fixture
def token() -> Iterator[str]:
    name = uuid.uuid4().hex
    jobfuncs.GATES[name] = threading.Event()
    yield name
    jobfuncs.GATES[name].set()  # never leave a job waiting


def running(token: str) -> int:
    return jobfuncs.RUNNING.get(token, 0)


def status(job: jobq.Job) -> str:
    return str(job.refresh().status)


def seen_agents(dispatcher: jobq.Dispatcher, queue: str = "") -> dict[str, int]:
    """{agent name: size} as the worker's latest poll used them."""
    polls = dispatcher.stats.polls(1)
    if not polls:
        return {}
    return {name: info["size"] for name, info in polls[0].results.get(queue, {}).items()}


def next_full_poll(dispatcher: jobq.Dispatcher) -> None:
    """Wait until a whole poll began after this call (its claims saw what is stored now)."""
    polls = dispatcher.stats.polls(1)
    key = polls[0].key if polls else 0
    wait_until(lambda: dispatcher.stats.polls(1)[0].key > key + 1, what="two more polls")


# -- catalogue 13.67, with gates instead of live annotations -------------------------------------
def test_jobs_without_a_quota_run_together(queue: jobq.Queue, worker: Any, token: str) -> None:
    jobs = [queue.put(jobq.Job(jobfuncs.gated, token, n)) for n in (1, 2)]
    wait_until(lambda: running(token) == 2, what="both jobs running at once")
    jobfuncs.GATES[token].set()
    assert [j.wait(timeout=15) for j in jobs] == [1, 2]
    assert jobfuncs.MAX_RUNNING[token] == 2


def test_a_shared_size_one_quota_runs_them_one_after_the_other(
    queue: jobq.Queue, worker: Any, token: str
) -> None:
    queue.quotas.create("printer")
    first = queue.put(jobq.Job(jobfuncs.gated, token, "job1"), quota_names=["printer"])
    second = queue.put(jobq.Job(jobfuncs.gated, token, "200 OK"), quota_names=["printer"])
    wait_until(lambda: status(first) == "active", what="job1 running")
    assert status(second) == "pending"  # the quota is full while job1 runs
    assert [j.id for j in queue.quotas["printer"]] == [first.id]
    jobfuncs.GATES[token].set()
    assert first.wait(timeout=15) == "job1"
    assert second.wait(timeout=15) == "200 OK"
    assert jobfuncs.MAX_RUNNING[token] == 1
    assert second.active_start is not None and first.active_end is not None
    assert second.active_start >= first.active_end


def test_quota_resized_and_removed_while_a_worker_runs(
    queue: jobq.Queue, worker: Any, token: str
) -> None:
    queue.quotas.create("db")
    jobs = queue.put_many(
        [jobq.Job(jobfuncs.gated, token, n) for n in range(3)], quota_names=["db"]
    )
    wait_until(lambda: running(token) == 1, what="one job running")
    assert [status(j) for j in jobs] == ["active", "pending", "pending"]
    queue.quotas["db"].size = 2
    wait_until(lambda: running(token) == 2, what="a second job once the quota grew")
    queue.quotas.remove("db")
    wait_until(lambda: running(token) == 3, what="every job once the quota is gone")
    jobfuncs.GATES[token].set()
    assert [j.wait(timeout=15) for j in jobs] == [0, 1, 2]


# -- agents changed while the worker runs --------------------------------------------------------
def test_agents_added_resized_filtered_and_removed_while_a_worker_runs(
    db: jobq.Database, queue: jobq.Queue, token: str
) -> None:
    other = token + "-other"
    jobfuncs.GATES[other] = threading.Event()
    dispatcher = db.worker(agents=[AgentSpec("main", 0)], poll_interval=0.05).start()
    try:
        uuid_ = dispatcher.uuid
        first = queue.put(jobq.Job(jobfuncs.gated, token, 1))
        wait_until(lambda: seen_agents(dispatcher) == {"main": 0}, what="main:0 in use")
        next_full_poll(dispatcher)
        assert status(first) == "pending"  # size 0: no claims

        assert db.set_agent(uuid_, "", "main", size=2).size == 2
        wait_until(lambda: running(token) == 1, what="the job, once main has room")
        second = queue.put(jobq.Job(jobfuncs.gated, token, 2))
        wait_until(lambda: running(token) == 2, what="two jobs at once for main:2")

        # main is full: a new agent, with a filter, takes what it accepts
        added = db.set_agent(uuid_, "", "doubles", size=1, filter="jobfuncs:only_double")
        assert added.filter == "jobfuncs:only_double"
        doubled = queue.put(jobq.Job(jobfuncs.double, 21))
        assert doubled.wait(timeout=15) == 42
        assert doubled.agent_name == "doubles"

        # a changed filter (and size, read in the same row) is used from the next read
        db.set_agent(uuid_, "", "doubles", size=2, filter="jobfuncs:not_double")
        wait_until(lambda: seen_agents(dispatcher).get("doubles") == 2, what="doubles:2")
        third = queue.put(jobq.Job(jobfuncs.gated, other, 3))
        wait_until(lambda: status(third) == "active", what="doubles taking a gated job")
        assert third.refresh().agent_name == "doubles"
        assert {a.name: (a.size, a.filter) for a in db.agents(uuid_)} == {
            "doubles": (2, "jobfuncs:not_double"),
            "main": (2, None),
        }
        jobfuncs.GATES[other].set()
        assert third.wait(timeout=15) == 3

        db.remove_agent(uuid_, "", "doubles")
        wait_until(lambda: seen_agents(dispatcher) == {"main": 2}, what="doubles removed")
        with pytest.raises(LookupError, match="no agent"):
            db.remove_agent(uuid_, "", "doubles")
        jobfuncs.GATES[token].set()
        assert first.wait(timeout=15) == 1 and second.wait(timeout=15) == 2
        assert jobfuncs.MAX_RUNNING[token] == 2
    finally:
        jobfuncs.GATES[other].set()
        dispatcher.stop(grace=10)


def test_bad_agent_changes_are_refused(db: jobq.Database, worker: Any) -> None:
    uuid_ = worker.uuid
    with pytest.raises(ConfigError, match="size must be an integer >= 0"):
        db.set_agent(uuid_, "", "main", size=-1)
    with pytest.raises(ConfigError, match="cannot import filter"):
        db.set_agent(uuid_, "", "main", filter="no_such_module:f")
    with pytest.raises(ConfigError, match="import path"):
        db.set_agent(uuid_, "", "main", filter="not-a-path")
    with pytest.raises(ConfigError, match="must be non-empty"):
        db.set_agent(uuid_, "", "a:b")
    with pytest.raises(LookupError, match="no dispatcher"):
        db.set_agent(str(uuid.uuid4()), "", "main", size=1)
    assert [(a.name, a.size, a.filter) for a in db.agents(uuid_)] == [("main", 3, None)]


def test_a_job_waiting_on_the_job_it_returned_is_not_counted_active(
    db: jobq.Database, token: str
) -> None:
    """Issue 16.6: while an outer job waits on the job it returned, a size-1 agent showed 2
    active; the outer one runs on no thread, so it is counted apart, as waiting."""
    from jobq.monitor.service import Monitor

    outer = db.queue().put(jobq.Job(jobfuncs.return_gated_inner, token))
    with db.worker(agents=[jobq.AgentSpec("main", 1)], poll_interval=0.05):
        wait_until(lambda: running(token) == 1, what="the inner job running")
        [dispatcher] = Monitor(db).status().queue("").dispatchers
        [agent] = dispatcher.agents
        assert (agent.active, agent.waiting, agent.held, agent.size) == (1, 1, 1, 1)
        assert agent.load()["waiting"] == 1
        jobfuncs.GATES[token].set()
        assert outer.wait(timeout=30) == "inner"
