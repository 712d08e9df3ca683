"""Catalogue 62 with real worker processes: a composite whose worker is stopped (SIGTERM) or
SIGKILLed while a part runs, and again while its postprocess runs, still ends with the right
result after each restart; nothing is created or run twice except the interrupted jobs."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import compose_jobs as cj
import pytest
from worker_helpers import spawn_worker, wait_until

import jobq
from jobq import Job
from jobq.model.compose import CompositeState

WAIT = 30.0


def spawn(db_url: str, uuid_: str) -> subprocess.Popen[bytes]:
    return spawn_worker(
        db_url, "--poll-interval", "0.1", "--ping-interval", "0.2", "--death-interval", "600",
        "--grace", "0.5", "--log-level", "ERROR", uuid=uuid_,
    )  # fmt: skip


def interrupt(process: subprocess.Popen[bytes], how: str) -> None:
    process.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def state(job: jobq.Job) -> CompositeState | None:
    return CompositeState.from_annotations(job.refresh().annotations)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
@pytest.mark.parametrize("make", [jobq.parallel, jobq.serial], ids=["parallel", "serial"])
def test_interrupted_part_and_postprocess_end_with_the_right_result(
    db: jobq.Database, db_url: str, tmp_path: Path, how: str, make: object
) -> None:
    part_flag, post_flag, marks = tmp_path / "part", tmp_path / "post", tmp_path / "marks"
    composite = make(  # type: ignore[operator]
        Job(cj.value, 17),
        Job(cj.wait_for_file, str(part_flag), 25),
        postprocess=Job(cj.mark_then_sum, str(marks), str(post_flag)),
    )
    job = db.queue().put(composite)
    # One UUID for every start: after a SIGKILL the restart recovers its predecessor's jobs at
    # once (same host, process gone); after SIGTERM they were already handed on.
    worker_uuid = str(uuid.uuid4())
    processes = []
    try:
        processes.append(spawn(db_url, worker_uuid))
        slow = wait_until(lambda: (s := state(job)) and s.postprocess and s, WAIT, "scheduled")
        slow_part = db.get_job(slow.parts[1])
        wait_until(lambda: slow_part.refresh().status == "active", WAIT, "slow part active")
        interrupt(processes[-1], how)
        part_flag.touch()

        processes.append(spawn(db_url, worker_uuid))
        post = db.get_job(slow.postprocess)
        # Its line written, not only its file created: a kill in between would lose the line.
        wait_until(
            lambda: marks.exists() and "run" in marks.read_text(), WAIT, "postprocess running"
        )
        assert post.refresh().status == "active"
        interrupt(processes[-1], how)
        post_flag.touch()

        processes.append(spawn(db_url, worker_uuid))
        assert job.wait(timeout=WAIT) == 42
    finally:
        for process in processes:
            if process.poll() is None:
                interrupt(process, "sigterm")
    # Each interrupted job ran once more; the composite never ran again (it was waiting).
    assert slow_part.refresh().retry_data["interruptions"] == 1 and slow_part.attempt == 2
    assert post.refresh().retry_data["interruptions"] == 1
    assert marks.read_text().split() == ["run", "run"]
    assert job.refresh().attempt == 1
    final = state(job)
    assert final is not None and final.closed and len(final.parts) == 2
