"""`jobq.parallel` and `jobq.serial` (catalogue section 6; section 13 items 58-62), on both
engines, with in-process workers. Real worker processes killed or stopped mid-composite:
tests/acceptance/test_compose_interrupt.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import compose_jobs as cj
import pytest
from worker_helpers import wait_until

import jobq
from jobq import Job
from jobq.model.compose import CompositeState
from jobq.testing import InProcessWorker, start_worker

WAIT = 30.0


@pytest.fixture
def w(db: jobq.Database) -> Iterator[InProcessWorker]:
    with start_worker(db) as worker:
        yield worker


def state_of(job: jobq.Job) -> CompositeState:
    state = CompositeState.from_annotations(job.refresh().annotations)
    assert state is not None
    return state


# -- catalogue 58-61 ---------------------------------------------------------------------------
def test_serial_gives_the_postprocess_the_part_jobs(db: jobq.Database, w: InProcessWorker) -> None:
    q = db.queue()
    plain = q.put(jobq.serial(Job(cj.value, 0), Job(cj.value, 1), Job(cj.value, 2)))
    tagged = q.put(
        jobq.serial(
            Job(cj.value, 0), Job(cj.value, 1), Job(cj.value, 2), postprocess=Job(cj.tagged, "foo")
        )
    )
    assert plain.wait(timeout=WAIT) == (0, 1, 2)
    assert tagged.wait(timeout=WAIT) == ("foo", (0, 1, 2))
    parts = tagged.parts
    assert [p.result for p in parts] == [0, 1, 2]
    assert all(p.status == "completed" for p in parts)


def test_parallel_sums_and_partial_postprocess(db: jobq.Database, w: InProcessWorker) -> None:
    q = db.queue()
    summed = q.put(
        jobq.parallel(
            Job(cj.value, 7), Job(cj.value, 14), Job(cj.value, 21), postprocess=cj.sum_results
        )
    )
    tagged = q.put(
        jobq.parallel(
            Job(cj.value, 7),
            Job(cj.value, 14),
            Job(cj.value, 21),
            postprocess=Job(cj.tagged_sum, "foo"),
        )
    )
    assert summed.wait(timeout=WAIT) == 42
    assert tagged.wait(timeout=WAIT) == ("foo", 42)


def test_a_failing_part_does_not_stop_the_others(db: jobq.Database, w: InProcessWorker) -> None:
    for make in (jobq.parallel, jobq.serial):
        job = db.queue().put(
            make(Job(cj.value, 7), Job(cj.boom), Job(cj.value, 21), postprocess=cj.describe)
        )
        assert job.wait(timeout=WAIT) == ["ok:7", "failed:RuntimeError", "ok:21"]
    # The default postprocess hands the Failure on in the tuple.
    job = db.queue().put(jobq.parallel(Job(cj.value, 1), Job(cj.boom, "x")))
    first, second = job.wait(timeout=WAIT)
    assert first == 1 and isinstance(second, jobq.Failure) and second.message == "x"


def test_only_the_postprocess_keyword_is_accepted() -> None:
    with pytest.raises(TypeError):
        jobq.parallel(cj.value, postprocesss=cj.results)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        jobq.serial(cj.value, begin_after=None)  # type: ignore[call-arg]
    composite = jobq.serial(Job(cj.value, 1), postprocess=cj.results)
    assert isinstance(composite, jobq.Composite) and composite.kind == "serial"
    assert jobq.parallel().kind == "parallel"


def test_a_failing_postprocess_fails_the_composite(db: jobq.Database, w: InProcessWorker) -> None:
    job = db.queue().put(jobq.parallel(Job(cj.value, 1), postprocess=Job(cj.boom_post, "post")))
    with pytest.raises(jobq.JobFailed) as failed:
        job.wait(timeout=WAIT)
    assert failed.value.failure.message == "post"


def test_no_parts_runs_the_postprocess_at_once(db: jobq.Database, w: InProcessWorker) -> None:
    assert db.queue().put(jobq.serial()).wait(timeout=WAIT) == ()


def test_a_composite_can_be_a_part(db: jobq.Database, w: InProcessWorker) -> None:
    inner = jobq.parallel(Job(cj.value, 1), Job(cj.value, 2), postprocess=cj.sum_results)
    job = db.queue().put(jobq.serial(inner, Job(cj.value, 3), postprocess=cj.sum_results))
    assert job.wait(timeout=WAIT) == 6


# -- order -------------------------------------------------------------------------------------
def test_serial_runs_one_part_at_a_time_and_the_postprocess_last(
    db: jobq.Database, w: InProcessWorker, tmp_path: Path
) -> None:
    log = str(tmp_path / "log")
    parts = [Job(cj.append_log, log, name, 0.05) for name in "abc"]
    job = db.queue().put(jobq.serial(*parts, postprocess=Job(cj.read_log, log)))
    assert job.wait(timeout=WAIT) == "a><a b><b c><c"


def test_parallel_parts_overlap(db: jobq.Database, w: InProcessWorker, tmp_path: Path) -> None:
    log = str(tmp_path / "log")
    parts = [Job(cj.append_log, log, name, 0.5) for name in "ab"]
    job = db.queue().put(jobq.parallel(*parts, postprocess=Job(cj.read_log, log)))
    text = job.wait(timeout=WAIT)
    assert text.index("<") > text.index(">", text.index(">") + 1)  # both started before an end


# -- dynamic extension (catalogue 59) ----------------------------------------------------------
def test_serial_parts_and_their_callbacks_add_parts(db: jobq.Database, w: InProcessWorker) -> None:
    job = db.queue().put(jobq.serial(cj.first, postprocess=cj.as_list))
    assert job.wait(timeout=WAIT) == ["first", "second", "third"]


def test_parallel_parts_add_parts(db: jobq.Database, w: InProcessWorker) -> None:
    job = db.queue().put(jobq.parallel(cj.first_direct, postprocess=cj.as_list))
    assert job.wait(timeout=WAIT) == ["first", "second", "third"]
    assert len(state_of(job).parts) == 3


def test_add_part_before_put_and_before_it_runs(db: jobq.Database) -> None:
    composite = jobq.parallel(Job(cj.value, 1), postprocess=cj.results)
    composite.add_part(Job(cj.value, 2))  # not stored yet: appended to its arguments
    job = db.queue().put(composite)
    added = job.add_part(Job(cj.value, 3))  # stored, not run yet: kept for its first run
    assert added.stored and added.status == "new"
    with start_worker(db):
        assert job.wait(timeout=WAIT) == (1, 2, 3)
    with pytest.raises(jobq.BadStatusError, match="too late"):
        job.add_part(Job(cj.value, 4))
    with pytest.raises(ValueError, match="already stored"):
        jobq.parallel(added)


def test_composite_outside_a_part_is_a_value_error(db: jobq.Database, w: InProcessWorker) -> None:
    job = db.queue().put(Job(cj.add_third, None))
    with pytest.raises(jobq.JobFailed) as failed:
        job.wait(timeout=WAIT)
    assert "not a part of a composite" in failed.value.failure.message


# -- scheduling is idempotent ------------------------------------------------------------------
def test_a_rerun_composite_resumes_instead_of_creating_again(db: jobq.Database) -> None:
    """Run the composite's body twice (as a retry after an interruption would) before any
    part runs: the second run finds the parts and the postprocess it created."""
    q = db.queue()
    job = q.put(jobq.parallel(Job(cj.value, 20), Job(cj.value, 22), postprocess=cj.sum_results))
    first = db.composition.start(job.refresh(), list(job.args), Job(cj.sum_results))
    state1 = state_of(job)
    second = db.composition.start(job, list(job.args), Job(cj.sum_results))
    state2 = state_of(job)
    assert first.id == second.id == state2.postprocess
    assert state1.parts == state2.parts and len(state2.parts) == 2
    assert [p.status for p in job.parts] == ["pending", "pending"]
    assert len(q) == 3  # the composite itself and its two parts, each once
    # Each part was given one part_done callback.
    assert [len(db.store.job_children(p)) for p in state2.parts] == [1, 1]


def test_graceful_stop_during_a_part_then_restart(db: jobq.Database, tmp_path: Path) -> None:
    flag = tmp_path / "go"
    q = db.queue()
    job = q.put(
        jobq.serial(
            Job(cj.value, 17), Job(cj.wait_for_file, str(flag), 25), postprocess=cj.sum_results
        )
    )
    first = start_worker(db)
    # The composite waits on its postprocess, holding no agent slot.
    wait_until(lambda: job.refresh().waiting_on is not None, WAIT, "composite waiting")
    assert job.status == "active" and job.waiting_on == state_of(job).postprocess
    part = db.get_job(state_of(job).parts[1])
    jobq.testing.wait_for_status(part, "active", timeout=WAIT)
    first.stop(grace=0.0, check=False)  # the running part is handed on (retried)
    assert part.refresh().status == "pending" and part.retry_data["interruptions"] == 1
    flag.touch()
    with start_worker(db):
        assert job.wait(timeout=WAIT) == 42
