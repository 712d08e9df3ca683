"""Claiming ahead: an agent whose jobs are short claims more jobs than it has free threads
(about CLAIM_AHEAD_BELOW seconds of its work, at most CLAIM_AHEAD_MOST times its size), so a
thread ending a job starts the next at once; an agent whose jobs are long never does (a job
claimed ahead counts as started while it waits)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import jobfuncs
import pytest
from worker_helpers import wait_until

import jobq
from jobq.worker.agent import CLAIM_AHEAD_BELOW, CLAIM_AHEAD_MOST, AgentSpec


@pytest.fixture
def token() -> Iterator[str]:
    token = uuid.uuid4().hex
    yield token
    jobfuncs.open_gate(token)  # never leave a worker thread waiting


def one_at_a_time(db: jobq.Database) -> jobq.Dispatcher:
    return db.worker(agents=[AgentSpec("main", 1)], poll_interval=0.05).start()


def busy_after_short_jobs(queue: jobq.Queue, token: str) -> jobq.Job:
    """Run five short jobs (the agent then claims ahead), then a job that holds the agent's
    only thread until its gate opens; returns that job, once running."""
    warm = [queue.put(jobq.Job(jobfuncs.add, i, 1)) for i in range(5)]
    assert [job.wait(timeout=20) for job in warm] == [1, 2, 3, 4, 5]
    blocking = queue.put(jobq.Job(jobfuncs.gated, token, "first"))
    wait_until(lambda: jobfuncs.RUNNING.get(token, 0) == 1, timeout=20)
    return blocking


def test_short_jobs_are_claimed_ahead_and_run_in_order(db: jobq.Database, token: str) -> None:
    queue = db.queue()
    dispatcher = one_at_a_time(db)
    try:
        blocking = busy_after_short_jobs(queue, token)
        ahead = queue.put(jobq.Job(jobfuncs.logged_step, token, "second"))
        # Taken by this worker while its only thread is still busy, not yet run.
        wait_until(lambda: db.store.get(ahead.id).status == "active", timeout=20)  # type: ignore[union-attr]
        assert jobfuncs.calls(token) == []
        jobfuncs.open_gate(token)
        assert blocking.wait(timeout=20) == "first"
        assert ahead.wait(timeout=20) is None
        assert jobfuncs.calls(token) == ["second"]
        assert jobfuncs.MAX_RUNNING[token] == 1
    finally:
        dispatcher.stop(grace=10)


def test_shorter_jobs_are_claimed_further_ahead_up_to_a_bound(
    db: jobq.Database, token: str
) -> None:
    queue = db.queue()
    dispatcher = one_at_a_time(db)
    try:
        blocking = busy_after_short_jobs(queue, token)
        pool = dispatcher._pools[("", "main")]
        ahead = pool.claim_ahead  # no job ends while the blocking one runs: it stays put
        assert 1 < ahead <= CLAIM_AHEAD_MOST  # size 1: more than one job, and bounded
        more = CLAIM_AHEAD_MOST + 2
        waiting = queue.put_many([jobq.Job(jobfuncs.logged_step, token, i) for i in range(more)])

        def statuses() -> list[str]:
            return [db.store.get(job.id).status for job in waiting]  # type: ignore[union-attr, arg-type]

        wait_until(lambda: statuses().count("active") == ahead, timeout=20)
        for _ in range(5):  # several polls of the dispatcher: it takes no more
            seen = dispatcher.polls
            wait_until(lambda seen=seen: dispatcher.polls > seen + 1, timeout=20)
            assert statuses() == ["active"] * ahead + ["pending"] * (more - ahead)
        assert jobfuncs.calls(token) == []
        jobfuncs.open_gate(token)
        assert blocking.wait(timeout=20) == "first"
        assert [job.wait(timeout=20) for job in waiting] == [None] * more
        assert jobfuncs.calls(token) == list(range(more))
        assert jobfuncs.MAX_RUNNING[token] == 1
    finally:
        dispatcher.stop(grace=10)


def test_long_jobs_are_not_claimed_ahead(db: jobq.Database, token: str) -> None:
    queue = db.queue()
    dispatcher = one_at_a_time(db)
    try:
        long = queue.put(jobq.Job(jobfuncs.sleep_then, CLAIM_AHEAD_BELOW * 3, "long"))
        assert long.wait(timeout=20) == "long"
        blocking = queue.put(jobq.Job(jobfuncs.gated, token, "first"))
        wait_until(lambda: jobfuncs.RUNNING.get(token, 0) == 1, timeout=20)
        waiting = queue.put(jobq.Job(jobfuncs.logged_step, token, "second"))
        for _ in range(10):  # several polls of the dispatcher
            seen = dispatcher.polls
            wait_until(lambda seen=seen: dispatcher.polls > seen + 1, timeout=20)
            assert db.store.get(waiting.id).status == "pending"  # type: ignore[union-attr]
        jobfuncs.open_gate(token)
        assert blocking.wait(timeout=20) == "first"
        assert waiting.wait(timeout=20) is None
    finally:
        dispatcher.stop(grace=10)


def test_jobs_claimed_ahead_still_run_when_the_worker_stops(db: jobq.Database, token: str) -> None:
    """A graceful stop runs the jobs its agent already claimed (they show as active): none
    is handed on as interrupted without ever having run, which its policy might fail."""
    queue = db.queue()
    dispatcher = one_at_a_time(db)
    stopped = threading.Thread(target=dispatcher.stop, kwargs={"grace": 20})
    try:
        blocking = busy_after_short_jobs(queue, token)
        ahead = queue.put_many([jobq.Job(jobfuncs.logged_step, token, i, i) for i in range(2)])
        wait_until(
            lambda: all(db.store.get(job.id).status == "active" for job in ahead),  # type: ignore[union-attr, arg-type]
            timeout=20,
        )
        stopped.start()
        wait_until(lambda: not dispatcher.activated, timeout=20)  # stopping: claims no more
        jobfuncs.open_gate(token)
        stopped.join(30)
        assert not stopped.is_alive()
        assert blocking.wait(timeout=20) == "first"
        assert [job.wait(timeout=20) for job in ahead] == [0, 1]
        assert [job.attempt for job in ahead] == [1, 1]
        assert all("interruptions" not in job.retry_data for job in ahead)
        assert jobfuncs.calls(token) == [0, 1]
    finally:
        jobfuncs.open_gate(token)
        if not stopped.is_alive() and stopped.ident is None:
            dispatcher.stop(grace=10)
