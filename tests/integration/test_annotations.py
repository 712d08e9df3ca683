"""Live annotations, progress, cooperative stop and cancellation (catalogue section 10; section
13 items 65-67 without the quota variant), on both engines."""

from __future__ import annotations

import compose_jobs as cj
import pytest
from jobfuncs import describe_result

import jobq
from jobq import Job
from jobq.testing import start_worker, wait_for_annotation, wait_for_status

WAIT = 30.0


def test_live_annotations_both_ways(db: jobq.Database) -> None:
    """Catalogue 65: the job says hello, the client replies; the job's snapshot does not see
    the reply."""
    job = db.queue().put(cj.hello_and_reply)
    with start_worker(db):
        wait_for_annotation(job, "hello", timeout=WAIT)
        assert job.annotations["hello"] == "from thread!"
        job.set_annotation("reply", "HIYA")
        assert job.wait(timeout=WAIT) == "reply is 'HIYA'. Locally it is MISSING."
    assert job.refresh().annotations == {"hello": "from thread!", "reply": "HIYA"}


def test_get_live_annotation_times_out_to_the_default(db: jobq.Database) -> None:
    job = db.queue().put(Job(cj.flag_and_wait, "alone", 0.2))
    job.set_annotation("other", job.id)  # waits for its own flag: found at once
    with start_worker(db):
        assert job.wait(timeout=WAIT) is None


def test_live_annotations_of_another_job(db: jobq.Database) -> None:
    """Issue 16.6 (catalogue §6, `job=`): a running job writes and reads live annotations of
    another job, here one waiting in a queue no worker serves."""
    other = db.queue("unserved").put(Job(describe_result, 0))
    pinging = db.queue().put(Job(cj.ping_other, other.id))
    with start_worker(db):
        wait_for_annotation(other, "ping", timeout=WAIT)
        assert other.annotations["ping"] == pinging.id
        other.set_annotation("pong", "hi")
        assert pinging.wait(timeout=WAIT) == "hi"
    assert other.refresh().status == "pending"  # annotated, never run


def test_a_job_returning_a_job_it_put(db: jobq.Database) -> None:
    """Catalogue 66."""
    with start_worker(db):
        assert db.queue().put(Job(cj.put_and_return_inner, 42)).wait(timeout=WAIT) == 42


def test_two_jobs_waiting_for_each_others_flag_run_in_parallel(db: jobq.Database) -> None:
    """Catalogue 67 (no quota): both see the other's flag, so both ran at once."""
    q = db.queue()
    one = q.put(Job(cj.flag_and_wait, "one", 10.0))
    two = q.put(Job(cj.flag_and_wait, "two", 10.0))
    one.set_annotation("other", two.id)
    two.set_annotation("other", one.id)
    with start_worker(db):
        assert one.wait(timeout=WAIT) is None
        assert two.wait(timeout=WAIT) is None
    assert one.refresh().status == two.refresh().status == "completed"


def test_annotations_must_be_json(db: jobq.Database) -> None:
    job = db.queue().put(Job(cj.value, 1))
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        job.set_annotation("x", object())
    with pytest.raises(TypeError, match="name must be a string"):
        job.set_annotation(1, "x")  # type: ignore[arg-type]
    job.set_annotation("nested", {"a": [1, 2.5, None, True]})
    other_handle = db.get_job(job.id)  # type: ignore[arg-type]
    assert other_handle.annotations == {"nested": {"a": [1, 2.5, None, True]}}
    with start_worker(db):
        assert db.queue().put(cj.bad_live_annotation).wait(timeout=WAIT).startswith("TypeError")


def test_local_annotation_functions_need_a_job() -> None:
    for call in (
        lambda: jobq.local.set_live_annotation("a", 1),
        lambda: jobq.local.get_live_annotation("a"),
        lambda: jobq.local.progress(1, 2),
        jobq.local.stop_requested,
        jobq.local.composite,
    ):
        with pytest.raises(ValueError, match="not initialized"):
            call()


def test_progress(db: jobq.Database) -> None:
    job = db.queue().put(Job(cj.count_with_progress, 5, 0.05))
    assert job.progress is None
    with start_worker(db):
        wait_for_annotation(job, "progress", timeout=WAIT)
        assert job.progress is not None and job.progress["total"] == 5
        assert job.wait(timeout=WAIT) == 5
    assert job.refresh().progress == {"done": 5, "total": 5, "message": "step 5"}
    # The monitor reads the same shape as a fraction.
    from jobq.monitor.service import progress_of

    record = db.store.get(job.id)  # type: ignore[arg-type]
    assert record is not None and progress_of(record) == 1.0


def test_request_stop(db: jobq.Database) -> None:
    job = db.queue().put(cj.loop_until_stopped)
    with start_worker(db):
        wait_for_annotation(job, "started", timeout=WAIT)
        job.request_stop()
        assert job.wait(timeout=WAIT) == "stopped"


def test_cancel_a_pending_job_tells_its_callbacks(db: jobq.Database) -> None:
    q = db.queue()
    job = q.put(Job(cj.value, 1))
    callback = job.add_callback(describe_result)
    job.cancel()
    assert job.status == "completed" or job.status == "callbacks"
    assert job.failed and job.failure is not None
    assert job.failure.type_name == "jobq.errors.CancelledError"
    assert len(q) == 1  # only the released callback is left in the queue
    with start_worker(db):
        text = callback.wait(timeout=WAIT)
    assert "CancelledError" in text
    assert job.refresh().status == "completed" and job.active_start is None
    with pytest.raises(jobq.BadStatusError, match="can only cancel"):
        job.cancel()


def test_cancel_a_running_job_is_refused(db: jobq.Database) -> None:
    job = db.queue().put(cj.loop_until_stopped)
    with start_worker(db):
        wait_for_status(job, "active", timeout=WAIT)
        with pytest.raises(jobq.BadStatusError, match="request_stop"):
            job.cancel()
        job.request_stop()
        assert job.wait(timeout=WAIT) == "stopped"


def test_cancelling_a_composite_part_counts_as_its_failure(db: jobq.Database) -> None:
    """A part cancelled before it runs: the postprocess sees a CancelledError failure."""
    q = db.queue()
    job = q.put(jobq.parallel(Job(cj.value, 1), Job(cj.value, 2), postprocess=cj.describe))
    # Schedule the parts as the composite's first run does (its re-run resumes from them).
    db.composition.start(job.refresh(), list(job.args), Job(cj.describe))
    parts = job.refresh().parts
    assert [p.status for p in parts] == ["pending", "pending"]
    parts[1].cancel()
    with start_worker(db):
        assert job.wait(timeout=WAIT) == ["ok:1", "failed:CancelledError"]
