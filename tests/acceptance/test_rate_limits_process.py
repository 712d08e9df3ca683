"""Rate limits end to end on both engines (issue 18.5): three `jobq worker` processes drain
jobs naming a limit of 5 claims per 2 s, and the start times the database holds show no 2 s
interval with more than 5 of them; `jobq rate-limits` (a real CLI process) shows the window's
use and the jobs waiting, and `jobq rate-limit-set` changes the limit while a worker runs."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jobfuncs
import pytest
from worker_helpers import app_rows, create_app_table, execute, subprocess_env, wait_until

import jobq

pytestmark = pytest.mark.slow

WAIT = 120.0
WORKER = [sys.executable, "-m", "jobq", "worker"]


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Callable[[int], None]]:
    """Start `n` `jobq worker` processes on the test database (agent main:3, polling every
    0.2 s); each is stopped (SIGTERM) after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> None:
        for _ in range(n):
            ident = str(uuid.uuid4())
            with (tmp_path / f"worker{len(procs)}.log").open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [*WORKER, "--db", db_url, "--uuid", ident, "--poll-interval", "0.2"],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=subprocess_env(),
                    )
                )

    try:
        yield start
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def jobq_cli(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "jobq", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    return done


def cli_limits(db_url: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = json.loads(
        jobq_cli("rate-limits", "--db", db_url, "--json").stdout
    )
    return result


def start_times(db_url: str, limited: bool) -> list[dt.datetime]:
    """Every start time the database holds of the jobs naming a rate limit (or not)."""
    sql = "SELECT active_start FROM jobq_jobs WHERE rate_limits " + ("<>" if limited else "=")
    rows = execute(db_url, sql + " '[]' AND active_start IS NOT NULL")
    times = []
    for (value,) in rows:
        if isinstance(value, int):  # SQLite: microseconds since the epoch, UTC
            value = dt.datetime.fromtimestamp(value / 1e6, dt.UTC)
        times.append(value)
    return sorted(times)


def test_three_workers_never_start_more_than_the_limit_in_any_window(
    db: jobq.Database, db_url: str, workers: Callable[[int], None]
) -> None:
    q = db.queue()
    q.rate_limits.create("smtp", limit=5, per=dt.timedelta(seconds=2))
    limited = q.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(45)], rate_limits=["smtp"])
    free = q.put_many([jobq.Job(jobfuncs.add, i, 2) for i in range(15)])
    workers(3)

    # The monitor, through the CLI: the window fills, and the rest of the jobs wait.
    seen = wait_until(
        lambda: [v for v in cli_limits(db_url) if v["used"] == 5], WAIT, "a full window"
    )
    assert seen[0]["name"] == "smtp" and seen[0]["limit"] == 5 and seen[0]["waiting"] > 0

    def all_done() -> bool:
        return all(j.refresh().status == jobq.Status.COMPLETED for j in limited + free)

    wait_until(all_done, WAIT, "every job to complete")
    assert [j.result for j in limited] == [i + 1 for i in range(45)]

    starts = start_times(db_url, limited=True)
    assert len(starts) == 45
    for first, sixth in zip(starts, starts[5:], strict=False):
        # Claims at `first` and `sixth` share a window of 2 s unless 2 s apart.
        assert sixth - first >= dt.timedelta(seconds=2), (first, sixth)
    assert len(start_times(db_url, limited=False)) == 15
    (now,) = cli_limits(db_url)
    assert now["waiting"] == 0 and now["used"] <= 5


def test_a_limit_changed_while_a_worker_runs_applies_at_its_next_claim(
    db: jobq.Database, db_url: str, workers: Callable[[int], None]
) -> None:
    q = db.queue()
    q.rate_limits.create("api", limit=1, per=dt.timedelta(hours=1))
    jobs = q.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(6)], rate_limits=["api"])
    workers(1)
    wait_until(
        lambda: [v for v in cli_limits(db_url) if (v["used"], v["waiting"]) == (1, 5)],
        WAIT,
        "one claim in the window and five jobs waiting",
    )
    refused = jobq_cli("rate-limit-remove", "", "api", "--db", db_url, code=2)
    assert "named by 5 pending job(s)" in refused.stderr and "anyway with --force" in refused.stderr
    assert "api" in q.rate_limits

    # Only the change lets the other five go within the hour.
    done = jobq_cli("rate-limit-set", "", "api", "10", "1H", "--db", db_url)
    assert "rate limit 'api' of queue '' set: 10 per 1H" in done.stdout
    wait_until(
        lambda: all(j.refresh().status == jobq.Status.COMPLETED for j in jobs),
        WAIT,
        "the jobs held back by the old limit",
    )
    (now,) = cli_limits(db_url)
    assert (now["limit"], now["used"], now["waiting"]) == (10, 6, 0)
    jobq_cli("rate-limit-remove", "", "api", "--db", db_url)
    assert "api" not in q.rate_limits


def test_a_claim_by_a_worker_killed_mid_job_still_counts(
    db: jobq.Database, db_url: str, tmp_path: Path, workers: Callable[[int], None]
) -> None:
    """SIGKILL a worker running a job naming a limit of 2 per hour: a sibling hands the job
    on and claims it again (the second claim), it completes once, and a third job naming the
    limit waits: both claims count, the crashed one included."""
    create_app_table(db_url)
    flag = tmp_path / "go"
    q = db.queue()
    q.rate_limits.create("api", limit=2, per=dt.timedelta(hours=1))
    job = q.put(
        jobq.Job(jobfuncs.insert_when_file_exists, str(flag), "written"), rate_limits=["api"]
    )
    fast = ["--poll-interval", "0.1", "--ping-interval", "0.2", "--death-interval", "1"]
    victim = subprocess.Popen(
        [*WORKER, "--db", db_url, "--uuid", str(uuid.uuid4()), *fast],
        env=subprocess_env(),
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: job.refresh().status == "active", WAIT, "the job to start")
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
    flag.touch()
    workers(1)  # the sibling: finds the victim dead, hands the job on, claims it again
    assert wait_until(lambda: job.refresh().status == jobq.Status.COMPLETED, WAIT, "completion")
    assert app_rows(db_url) == ["written"]  # its writes made once
    late = q.put(jobq.Job(jobfuncs.add, 1, 1), rate_limits=["api"])
    (now,) = cli_limits(db_url)
    assert (now["used"], now["waiting"]) == (2, 1)
    assert late.refresh().status == jobq.Status.PENDING
