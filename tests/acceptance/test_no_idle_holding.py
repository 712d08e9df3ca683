"""Real worker processes: no worker idles while another holds jobs it cannot start, and a
finished job's callbacks never wait behind unrelated long jobs (issue 16.1, issue 15.4)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jobfuncs
from worker_helpers import spawn_worker, stop_workers, wait_until

import jobq

WAIT = 60.0


def spawn(db_url: str, agent: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    return spawn_worker(
        db_url, "--poll-interval", "0.5", "--grace", "5", "--log-level", "WARNING",
        "--agent", agent, log=log,
    )  # fmt: skip


def test_two_workers_of_size_one_run_two_long_jobs_at_once(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    """After a run of short jobs (the workers then claim ahead), two long jobs put together:
    one worker may claim both, but gives the one it cannot start back to the idle other."""
    workers = [spawn(db_url, "main:1"), spawn(db_url, "main:1")]
    try:
        queue = db.queue()
        short = queue.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(300)])
        assert short[-1].wait(timeout=WAIT) == 300
        wait_until(lambda: all(job.refresh().status == "completed" for job in short[-5:]))
        first, second = queue.put_many(
            [
                jobq.Job(jobfuncs.mark_then_wait_for, str(tmp_path), "one", "two", 30.0),
                jobq.Job(jobfuncs.mark_then_wait_for, str(tmp_path), "two", "one", 30.0),
            ]
        )
        assert [first.wait(timeout=WAIT), second.wait(timeout=WAIT)] == [True, True]
    finally:
        stop_workers(*workers)


def test_callbacks_finish_while_long_jobs_fill_the_agent(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    """Ten short jobs with callbacks, then three long jobs that fill the size-3 agent: every
    short job reaches completed (its callback done) while the long ones still run."""
    go, end, log = tmp_path / "go", tmp_path / "end", tmp_path / "worker.log"
    worker = spawn(db_url, "main:3", log)
    try:
        queue = db.queue()
        shorts = queue.put_many([jobq.Job(jobfuncs.wait_for_file, str(go)) for _ in range(10)])
        callbacks = [job.add_callback(jobq.Job(jobfuncs.identity)) for job in shorts]
        longs = queue.put_many([jobq.Job(jobfuncs.wait_for_file, str(end)) for _ in range(3)])
        go.touch()
        try:
            wait_until(
                lambda: all(job.refresh().status == "completed" for job in shorts),
                timeout=WAIT,
                what="the short jobs' callbacks",
            )
        except AssertionError as error:  # say where each job is, and what the worker said
            states = [(job.id, job.refresh().status) for job in [*shorts, *callbacks, *longs]]
            raise AssertionError(
                f"{error}; jobs {states}; worker exit code {worker.poll()}; "
                f"worker log:\n{log.read_text()}"
            ) from None
        assert [job.refresh().status for job in longs] == ["active"] * 3
        assert [job.wait(timeout=1) for job in callbacks] == [True] * 10
        end.touch()
        assert [job.wait(timeout=WAIT) for job in longs] == [True] * 3
    finally:
        stop_workers(worker)
