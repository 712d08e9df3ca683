"""Execution time limits end to end on both engines (issue 18.4): a real `jobq worker` process
takes away a job that ignores its stop request (its late writes refused, a healthy job beside
it untouched), applies its `--job-timeout` default, and `jobq job` (a real CLI process), the
JSON API and the dashboard's job page show the limit and the timeout; under `--processes 2`
the child whose thread still runs the runaway is replaced, the job's outcome is the timeout
(not an interruption) and the next job runs; bad options are refused before any worker
starts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import jobfuncs
import pytest
import timeout_jobs
from starlette.testclient import TestClient
from timeout_jobs import events
from worker_helpers import (
    jobq_output,
    run_jobq,
    spawn_worker,
    stop_workers,
    wait_until,
)

import jobq
from jobq.web import create_app
from jobq.worker.supervisor import Supervisor, slot_uuids
from jobq.worker.timeouts import RUNAWAY_EXIT

pytestmark = pytest.mark.slow

WAIT = 60.0


def _start(
    db_url: str, log: Path, *options: str, uuid: str | None = None
) -> subprocess.Popen[bytes]:
    return spawn_worker(db_url, "--poll-interval", "0.1", *options, uuid=uuid, log=log)


def _stop(proc: subprocess.Popen[bytes]) -> int | None:
    """Stop the worker (SIGTERM, killed after 30 s); its exit code."""
    stop_workers(proc)
    return proc.returncode


@pytest.fixture
def worker_process(db: jobq.Database, db_url: str, tmp_path: Path) -> Iterator[Path]:
    """A `jobq worker` process with a 0.5 s grace and a 2 s default limit; its log's path."""
    log = tmp_path / "worker.log"
    proc = _start(db_url, log, "--timeout-grace", "0.5", "--job-timeout", "2")
    try:
        yield log
    finally:
        (tmp_path / "release").touch()
        assert _stop(proc) == 0, log.read_text(errors="replace")


def _completed(job: jobq.Job) -> bool:
    return job.refresh().status == jobq.Status.COMPLETED


def _timeout_message(job: jobq.Job) -> str:
    failure = job.result
    assert job.failed and isinstance(failure, jobq.Failure), job.result
    assert failure.type_name == "jobq.errors.JobTimeout", failure
    return failure.message


def test_a_worker_process_takes_a_runaway_away_and_the_monitor_shows_it(
    db: jobq.Database, db_url: str, worker_process: Path, tmp_path: Path
) -> None:
    folder = str(tmp_path)
    queue = db.queue()
    runaway = queue.put(jobq.Job(timeout_jobs.runaway, folder), timeout=1)
    healthy = queue.put(jobq.Job(timeout_jobs.healthy, folder, 0.5), timeout=30)
    wait_until(lambda: _completed(runaway), WAIT, what="the runaway to be taken away")
    assert "its attempt was taken away" in _timeout_message(runaway)
    assert "returning" not in events(tmp_path)  # its thread still runs
    wait_until(lambda: _completed(healthy), WAIT)
    assert (healthy.failed, healthy.result) == (False, "healthy")
    (tmp_path / "release").touch()
    wait_until(lambda: "returning" in events(tmp_path), WAIT)
    seen = events(tmp_path)
    assert "put refused: ReassignedError" in seen
    assert "annotation refused: ReassignedError" in seen
    assert any(line.startswith("old connection refused") for line in seen), seen
    assert "its attempt was taken away" in _timeout_message(runaway.refresh())
    assert "follow-up ran" not in events(tmp_path)
    # The monitor: `jobq job ID`, the JSON API and the dashboard's job page.
    shown = jobq_output("job", str(runaway.id), "--db", db_url)
    assert re.search(r"time limit +1\.00s", shown), shown
    assert "JobTimeout" in shown
    with TestClient(create_app(db)) as client:
        data = client.get(f"/api/jobs/{runaway.id}").json()
        page = client.get(f"/jobs/{runaway.id}")
    assert data["time_limit"] == {"seconds": 1.0}, data
    assert "JobTimeout" in json.dumps(data)
    assert page.status_code == 200
    assert re.search(r"<td>time limit</td><td>[^<]*1[^<]*</td>", page.text), page.text
    assert "JobTimeout" in page.text


def test_the_worker_default_limit_applies_to_jobs_without_their_own(
    db: jobq.Database, db_url: str, worker_process: Path, tmp_path: Path
) -> None:
    job = db.queue().put(jobq.Job(timeout_jobs.cooperative, str(tmp_path)))
    wait_until(lambda: _completed(job), WAIT)
    assert "time limit of 2 s; it ended once its stop was requested" in _timeout_message(job)
    assert events(tmp_path) == ["stop seen"]
    shown = jobq_output("job", str(job.id), "--db", db_url)
    assert "JobTimeout" in shown
    assert re.search(r"time limit +-", shown), shown  # its own: none


def test_jobq_put_gives_a_job_its_limit(
    db: jobq.Database, db_url: str, worker_process: Path, tmp_path: Path
) -> None:
    job_id = int(
        jobq_output(
            "put", "timeout_jobs:cooperative", str(tmp_path), "--timeout", "0.5", "--db", db_url
        )
    )
    job = db.get_job(job_id)
    assert job.retry_data == {"timeout": 0.5}
    wait_until(lambda: _completed(job), WAIT)
    assert "time limit of 0.5 s" in _timeout_message(job)
    done = run_jobq("put", "jobfuncs:add", "1", "2", "--timeout", "-1", "--db", db_url)
    assert done.returncode == 2
    assert "timeout must be > 0" in done.stderr and "-1.0" in done.stderr
    assert db.store.get(job_id + 1) is None  # nothing stored


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--job-timeout", "0"], "--job-timeout must be > 0"),
        (["--job-timeout", "-3"], "--job-timeout must be > 0"),
        (["--timeout-grace", "-1"], "--timeout-grace must be >= 0"),
        (
            ["--job-timeout", "5", "--timeout-grace", "10"],
            "--job-timeout (5 s) must not be shorter than the grace period (10 s)",
        ),
        (["--processes", "2", "--job-timeout", "0"], "--job-timeout must be > 0"),
    ],
)
def test_bad_limit_options_stop_the_worker_at_once(
    db: jobq.Database, db_url: str, tmp_path: Path, options: list[str], words: str
) -> None:
    done = run_jobq("worker", "--db", db_url, *options, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr
    assert db.store.list_dispatchers() == []  # no worker started


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_under_processes_the_child_running_a_runaway_is_replaced(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    folder = str(tmp_path)
    log = tmp_path / "supervisor.log"
    base = str(uuid.uuid4())
    proc = _start(
        db_url,
        log,
        *("--processes", "2", "--agent", "main:2", "--timeout-grace", "0.5", "--grace", "5"),
        uuid=base,
    )
    try:
        runaway = db.queue().put(
            jobq.Job(timeout_jobs.runaway, folder, open_connection=False), timeout=1
        )
        wait_until(lambda: _completed(runaway), WAIT, what="the runaway to be taken away")
        started = [line for line in events(tmp_path) if line.startswith("started")]
        assert len(started) == 1
        pid = int(started[0].split()[1])
        # The child whose thread runs it exits (its thread cannot be stopped), and is
        # replaced: a new process under the same slot UUID runs the next job.
        wait_until(lambda: _pid_gone(pid), WAIT, what="the child to end")
        assert "returning" not in events(tmp_path)  # the runaway never went on
        slot = runaway.dispatcher_uuid
        assert slot in slot_uuids(base, 2)

        def replaced() -> bool:
            record = db.store.get_dispatcher(slot)  # type: ignore[arg-type]
            return record is not None and record.activated is not None and record.pid != pid

        wait_until(replaced, WAIT, what="the slot's replacement to activate")
        assert "its attempt was taken away" in _timeout_message(runaway.refresh())
        assert runaway.attempt == 1  # a timeout, not an interruption retried
        assert "interruptions" not in runaway.retry_data
        nexts = db.queue().put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(6)])
        assert [job.wait(timeout=WAIT) for job in nexts] == [i + 1 for i in range(6)]
        assert "replacing it" in log.read_text(errors="replace")
    finally:
        (tmp_path / "release").touch()
        code = _stop(proc)
    assert code == 0, log.read_text(errors="replace")


def test_the_supervisor_replaces_a_runaway_exit_at_once() -> None:
    """Exit code 75 (RUNAWAY_EXIT) is a replacement, not a crash: restarted at once however
    soon it came, without the backoff of quick deaths."""
    command = [sys.executable, "-c", f"import sys; sys.exit({RUNAWAY_EXIT})"]
    sup = Supervisor([(str(uuid.uuid4()), command)], min_uptime=3600)
    slot = sup.slots[0]
    sup._start(slot)
    try:
        first = slot.process
        assert first is not None
        first.wait(WAIT)
        sup._watch()
        assert slot.process is not None and slot.process is not first  # started again
        assert (slot.restarts, slot.quick_deaths) == (1, 0)
    finally:
        if slot.process is not None:
            slot.process.wait(WAIT)
