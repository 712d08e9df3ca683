"""Wait helpers: they return what they waited for, or say what they saw instead."""

from __future__ import annotations

import re
import uuid

import kit_jobs
import pytest

import jobq
from jobq.testing import (
    start_worker,
    wait_for_annotation,
    wait_for_deactivation,
    wait_for_result,
    wait_for_start,
    wait_for_status,
)


def test_wait_for_result_returns_the_value_or_the_failure(
    queue: jobq.Queue, worker: jobq.Dispatcher
) -> None:
    assert wait_for_result(queue.put(jobq.Job(kit_jobs.add, 20, 22)), timeout=10) == 42
    failure = wait_for_result(queue.put(jobq.Job(kit_jobs.fail, "nope")), timeout=10)
    assert isinstance(failure, jobq.Failure)
    assert failure.type_name == "ValueError" or failure.type_name.endswith("ValueError")
    assert failure.message == "nope"


def test_wait_for_result_says_what_it_saw(queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(kit_jobs.add, 1, 2))  # no worker: it stays pending
    message = (
        f"job {job.id} (kit_jobs.add(1, 2)) never completed within 0.1 s: last status 'pending'"
    )
    with pytest.raises(AssertionError, match=re.escape(message)):
        wait_for_result(job, timeout=0.1)


def test_wait_for_start_and_status_on_a_running_job(db: jobq.Database) -> None:
    token = uuid.uuid4().hex
    with start_worker(db) as worker:
        job = db.queue().put(jobq.Job(kit_jobs.gated, token, "done"))
        assert wait_for_start(job, timeout=10) is job
        assert job.status == "active" and job.active_start is not None
        with pytest.raises(AssertionError, match="never reached status 'completed' within") as e:
            wait_for_status(job, "completed", timeout=0.1)
        assert "last status 'active'" in str(e.value)
        kit_jobs.gate(token).set()
        assert wait_for_status(job, ["callbacks", "completed"], timeout=10).result == "done"
        worker.drain(timeout=10)


def test_wait_for_start_says_a_job_never_started(queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(kit_jobs.add, 1, 2))
    with pytest.raises(AssertionError, match=r"never started within 0\.1 s: last status 'pending'"):
        wait_for_start(job, timeout=0.1)
    job.fail()
    with pytest.raises(AssertionError, match=r"finished without starting: failed with .*Timeout"):
        wait_for_start(job, timeout=1)


def test_wait_for_status_rejects_unknown_statuses(queue: jobq.Queue) -> None:
    job = queue.put(jobq.Job(kit_jobs.add, 1, 2))
    with pytest.raises(ValueError):
        wait_for_status(job, "finished")
    with pytest.raises(TypeError, match="stored"):
        wait_for_status(jobq.Job(kit_jobs.add, 1, 2), "pending")


def test_wait_for_annotation(queue: jobq.Queue, worker: jobq.Dispatcher) -> None:
    job = queue.put(jobq.Job(kit_jobs.annotate, "progress", 50))
    assert wait_for_annotation(job, "progress", timeout=10) == 50
    assert wait_for_annotation(job, "progress", value=50, timeout=1) == 50
    with pytest.raises(AssertionError) as e:
        wait_for_annotation(job, "progress", value=100, timeout=0.1)
    assert str(e.value).startswith(
        f"job {job.id} (kit_jobs.annotate('progress', 50)) never got annotation 'progress' == "
        f"100 within 0.1 s: last annotations {{'progress': 50}}"
    )


def test_wait_for_deactivation(db: jobq.Database) -> None:
    worker = start_worker(db)
    with pytest.raises(AssertionError, match=r"was never deactivated within 0\.1 s: activated"):
        wait_for_deactivation(worker.dispatcher, timeout=0.1)
    worker.stop()
    record = wait_for_deactivation(worker.dispatcher, timeout=10)
    assert record.uuid == worker.dispatcher.uuid and record.deactivated is not None
