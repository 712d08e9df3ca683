"""Payload integrity with a secret (issue 17.8), on both engines through a running worker: a
signed call verifies only in a row with the import columns it was put with (job class, retry
policy), a result never verifies as a call, and a worker with the secret refuses an agent
filter that was not set by a process with it. Whoever writes the database without the
secret can make no worker run code or arguments that no holder of the secret put."""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

import jobfuncs
import pytest
from jobfuncs import add
from worker_helpers import execute, spawn_worker, stop_workers, wait_until

import jobq
from jobq.model.retry import policy_path
from jobq.worker.agent import AgentSpec

SECRET = "s3cret"
WAIT = 20.0


def call_of(db_url: str, job_id: int | None) -> bytes:
    (payload,) = execute(db_url, "SELECT call FROM jobq_jobs WHERE id = ?", (job_id,))[0]
    return bytes(payload)


def test_a_call_copied_into_a_row_with_another_retry_policy_is_refused(db_url: str) -> None:
    with jobq.connect(db_url, secret=SECRET) as db:
        queue = db.queue()
        source = queue.put(jobq.Job(add, 20, 22))
        target = queue.put(jobq.Job(add, 1, 1), retry_policy=jobq.NeverRetry)
        moved = queue.put(jobq.Job(add, 2, 2))
        intact = queue.put(jobq.Job(add, 3, 3))
        execute(
            db_url,
            "UPDATE jobq_jobs SET call = ? WHERE id = ?",
            (call_of(db_url, source.id), target.id),
        )
        policy = execute(db_url, "SELECT retry_policy FROM jobq_jobs WHERE id = ?", (target.id,))
        execute(
            db_url, "UPDATE jobq_jobs SET retry_policy = ? WHERE id = ?", (policy[0][0], moved.id)
        )
        with db.worker(poll_interval=0.1).start():
            for forged in (target, moved):
                with pytest.raises(jobq.JobFailed) as failed:
                    forged.wait(timeout=WAIT)
                assert failed.value.failure.check(jobq.SignatureError)
                assert "copied from another row" in str(failed.value)
            assert source.wait(timeout=WAIT) == 42
            assert intact.wait(timeout=WAIT) == 6


def test_a_result_copied_into_a_call_is_refused(db_url: str) -> None:
    with jobq.connect(db_url, secret=SECRET) as db:
        queue = db.queue()
        with db.worker(poll_interval=0.1).start():
            done = queue.put(jobq.Job(add, 2, 3))
            assert done.wait(timeout=WAIT) == 5
        forged = queue.put(jobq.Job(add, 1, 1))
        (result,) = execute(db_url, "SELECT result FROM jobq_jobs WHERE id = ?", (done.id,))[0]
        execute(db_url, "UPDATE jobq_jobs SET call = ? WHERE id = ?", (bytes(result), forged.id))
        with db.worker(poll_interval=0.1).start(), pytest.raises(jobq.JobFailed) as failed:
            forged.wait(timeout=WAIT)
        assert failed.value.failure.check(jobq.SignatureError)


def test_an_unsigned_agent_filter_claims_nothing_until_set_with_the_secret(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = uuid.uuid4().hex
    jobfuncs.GATES[token] = threading.Event()
    with jobq.connect(db_url, secret=SECRET) as db:
        queue = db.queue()
        dispatcher = db.worker(agents=[AgentSpec("main", 0)], poll_interval=0.05).start()
        try:
            # A row written without the secret (as a writer of the database could): no seal.
            execute(
                db_url,
                "INSERT INTO jobq_agents (dispatcher_uuid, queue, name, size, filter)"
                " VALUES (?, '', 'doubles', 1, 'jobfuncs:only_double')",
                (dispatcher.uuid,),
            )
            job = queue.put(jobq.Job(jobfuncs.double, 21))
            with caplog.at_level(logging.ERROR, logger="jobq.events"):
                wait_until(
                    lambda: any("not signed" in r.getMessage() for r in caplog.records),
                    what="the refusal of the unsigned filter",
                )
            target = dispatcher.polls + 5
            wait_until(lambda: dispatcher.polls >= target, what="five polls")
            assert job.refresh().status == jobq.Status.PENDING
            db.set_agent(dispatcher.uuid, "", "doubles", size=1, filter="jobfuncs:only_double")
            assert job.wait(timeout=WAIT) == 42 and job.agent_name == "doubles"
        finally:
            dispatcher.stop(grace=10)


def test_a_worker_process_with_the_secret_refuses_a_forged_filter(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBQ_SECRET", SECRET)
    log = tmp_path / "worker.log"
    uuid_ = str(uuid.uuid4())
    with jobq.connect(db_url, secret=SECRET) as db:
        worker = spawn_worker(
            db_url, "--agent", "main:0", "--poll-interval", "0.1", uuid=uuid_, log=log
        )
        try:
            wait_until(lambda: len(db.agents(uuid_)) == 1, what="the worker's agent")
            # Size 0: the sealed agent itself must not take the job before the forged one
            # would (the worker reads its agents about once a second).
            sealed = db.set_agent(uuid_, "", "doubles", size=0, filter="jobfuncs:only_double")
            # Forged: the sealed filter row moved to another agent name (the seal binds it).
            execute(
                db_url,
                "INSERT INTO jobq_agents (dispatcher_uuid, queue, name, size, filter, filter_seal)"
                " VALUES (?, '', 'copied', 1, 'jobfuncs:only_double', ?)",
                (uuid_, sealed.filter_seal),
            )
            job = db.queue().put(jobq.Job(jobfuncs.double, 4))
            wait_until(lambda: "agent copied" in log.read_text(), what="the refusal")
            assert job.refresh().status == jobq.Status.PENDING
            db.set_agent(uuid_, "", "doubles", size=1)  # the sealed agent takes it
            assert job.wait(timeout=WAIT) == 8 and job.agent_name == "doubles"
        finally:
            stop_workers(worker)


def test_a_replaced_holder_runs_with_the_replacing_put_s_call_and_policy(db_url: str) -> None:
    """on_conflict="replace" writes the new call with its own policy: the signature holds."""
    with jobq.connect(db_url, secret=SECRET) as db:
        queue = db.queue()
        first = queue.put(jobq.Job(add, 1, 1), unique_key="k")
        second = queue.put(
            jobq.Job(add, 2, 2), unique_key="k", on_conflict="replace", retry_policy=jobq.NeverRetry
        )
        assert second.put_outcome == "replaced" and second.id == first.id
        with db.worker(poll_interval=0.1).start():
            assert first.wait(timeout=WAIT) == 4
        assert first.refresh().retry_policy == policy_path(jobq.NeverRetry)
