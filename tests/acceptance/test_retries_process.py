"""`put(..., retries=N)` end to end on both engines: a real `jobq worker` process retries a
failing job with a growing backoff, and `jobq job` (a real CLI process) and the dashboard's
job page show its retries and next run (issue 15.5)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jobfuncs
import pytest
from starlette.testclient import TestClient
from worker_helpers import stop_workers, subprocess_env, wait_until

import jobq
from jobq.web import create_app

pytestmark = pytest.mark.slow

WAIT = 60.0


@pytest.fixture
def worker_process(db: jobq.Database, db_url: str, tmp_path: Path) -> Iterator[None]:
    """A `jobq worker` process on the test database, stopped (SIGTERM) after the test."""
    ident = str(uuid.uuid4())
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobq", "worker", "--db", db_url, "--uuid", ident],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
        )
    try:
        yield
    finally:
        stop_workers(proc)


def jobq_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "jobq", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _calls(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _pending_states(job: jobq.Job) -> list[dict[str, Any]]:
    """Watch `job` until it completes; each time it waits in its queue for a retry, what it
    shows then (its retries had, next run and the backoff its policy chose)."""
    seen: list[dict[str, Any]] = []

    def completed() -> bool:
        job.refresh()
        if (
            job.status == jobq.Status.PENDING
            and job.retried
            and (not seen or seen[-1]["retried"] != job.retried)
        ):
            seen.append(
                {
                    "retried": job.retried,
                    "next_run": job.next_run,
                    "backoff": job.retry_data["backoff"],
                }
            )
        return job.status == jobq.Status.COMPLETED

    wait_until(completed, timeout=WAIT, what=f"job {job.id} to complete")
    return seen


def test_retries_with_a_growing_backoff_then_success_or_the_last_error(
    db: jobq.Database, db_url: str, tmp_path: Path, worker_process: None
) -> None:
    queue = db.queue()
    three = tmp_path / "three.calls"
    one = tmp_path / "one.calls"
    # Fails three times: retries=3 lets its fourth call succeed, retries=1 fails on the second;
    # failing twice, retries=3 has one to spare.
    saved = queue.put(
        jobq.Job(jobfuncs.flaky, str(three), 3, "done"),
        retries=3,
        retry_policy=jobfuncs.QuickBackoff,
    )
    lost = queue.put(
        jobq.Job(jobfuncs.flaky, str(one), 3, "never"),
        retries=1,
        retry_policy=jobfuncs.QuickBackoff,
    )
    twice = tmp_path / "twice.calls"
    spare = queue.put(
        jobq.Job(jobfuncs.flaky, str(twice), 2, "spared"),
        retries=3,
        retry_policy=jobfuncs.QuickBackoff,
    )
    assert (saved.retries, saved.retried) == (3, 0)
    states = _pending_states(saved)
    assert saved.wait(timeout=WAIT) == "done"
    assert _calls(three) == 4
    assert (saved.retries, saved.retried, saved.next_run) == (3, 3, None)
    # Each retry waited in its queue until a next run later than the last by at least its
    # backoff, and the backoffs grew: 0.25-0.5 s, 0.5-1 s, 1-2 s (equal jitter).
    assert [s["retried"] for s in states] == [1, 2, 3], states
    backoffs = [s["backoff"] for s in states]
    assert 0.25 <= backoffs[0] <= 0.5 <= backoffs[1] <= 1.0 <= backoffs[2] <= 2.0, backoffs
    for before, after in itertools.pairwise(states):
        gap = (after["next_run"] - before["next_run"]).total_seconds()
        assert gap >= after["backoff"] - 0.01, states

    assert spare.wait(timeout=WAIT) == "spared"  # failed twice, one retry to spare
    assert (spare.retried, _calls(twice)) == (2, 3)

    with pytest.raises(jobq.JobFailed) as info:
        lost.wait(timeout=WAIT)
    assert info.value.failure.check(ValueError)
    assert info.value.failure.message == "flaky call 2 of 3 failing"  # the last error
    assert _calls(one) == 2
    assert (lost.retries, lost.retried) == (1, 1)
    assert lost.retry_data["error"] == 2

    # `jobq job` shows where a finished job's retries ended.
    table = jobq_cli("job", str(saved.id), "--db", db_url)
    assert _line(table, "retried") == "3 of 3"
    assert _line(table, "next run") == "-"


def test_jobq_put_retries(
    db: jobq.Database, db_url: str, tmp_path: Path, worker_process: None
) -> None:
    calls = tmp_path / "put.calls"
    args = ("jobfuncs:flaky", str(calls), "1", '"ok"')
    put = jobq_cli("put", *args, "--retries", "2", "--db", db_url)
    job = db.get_job(int(put))
    assert job.wait(timeout=WAIT) == "ok"
    assert (job.retries, job.retried) == (2, 1)
    assert job.retry_policy == "jobq.model.retry:RetryWithBackoff"
    refused = subprocess.run(
        [sys.executable, "-m", "jobq", "put", *args, "--retries", "-1", "--db", db_url],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert refused.returncode == 2 and "--retries" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_job_waiting_for_its_retry_shows_its_next_run(
    db: jobq.Database, db_url: str, tmp_path: Path, worker_process: None
) -> None:
    calls = tmp_path / "waiting.calls"
    job = db.queue().put(
        jobq.Job(jobfuncs.flaky, str(calls), 5, "later"),
        retries=2,
        retry_policy=jobfuncs.SlowBackoff,
    )
    wait_until(lambda: job.refresh().retried == 1, timeout=WAIT, what="the first retry")
    assert job.status == jobq.Status.PENDING
    assert job.next_run is not None
    backoff = job.retry_data["backoff"]
    assert 30.0 <= backoff <= 60.0
    assert job.next_run > db.clock.now() + dt.timedelta(seconds=20)

    # The CLI, as a table and as JSON.
    table = jobq_cli("job", str(job.id), "--db", db_url)
    assert _line(table, "retried") == "1 of 2"
    assert _line(table, "retries") == "2"
    assert _line(table, "next run") == job.next_run.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    shown = json.loads(jobq_cli("job", str(job.id), "--db", db_url, "--json"))
    assert (shown["retries"], shown["retried"]) == (2, 1)
    assert dt.datetime.fromisoformat(shown["next_run"]) == job.next_run

    # The dashboard's job page.
    with TestClient(create_app(db)) as client:
        page = client.get(f"/jobs/{job.id}")
    assert page.status_code == 200
    assert "<td>retried</td><td>1 of 2</td>" in page.text
    assert "<td>next run</td><td>" in page.text
    assert job.next_run.strftime("%Y-%m-%d %H:%M:%S") in page.text
    assert _calls(calls) == 1


def _line(table: str, key: str) -> str:
    """The value of `key` in `jobq job`'s key / value table."""
    for line in table.splitlines():
        if line.strip().startswith(key + " "):
            return line.strip()[len(key) :].strip()
    raise AssertionError(f"no {key!r} line in:\n{table}")
