"""Schedules through crashes, with real processes: three `jobq worker` processes SIGKILLed at
random and restarted through a minute of a per-second schedule, and every tick of that minute
has exactly one job (none missing with missed="all", none twice)."""

from __future__ import annotations

import datetime as dt
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from jobfuncs import add
from worker_helpers import execute, spawn_worker, wait_until

import jobq

pytestmark = pytest.mark.slow

WINDOW = 60.0  # seconds of ticks


def spawn(db_url: str, log: Path) -> subprocess.Popen[bytes]:
    return spawn_worker(
        db_url, "--poll-interval", "0.2", "--ping-interval", "0.5", "--death-interval", "2",
        "--grace", "1", "--log-level", "WARNING", log=log,
    )  # fmt: skip


@pytest.mark.timeout(200)
def test_random_kills_leave_every_tick_with_exactly_one_job(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    schedule = db.schedule(
        "every-second", "* * * * * *", jobq.Job(add, 1, 1), missed="all", catch_up=1000
    )
    first = schedule.next_run
    assert first is not None
    rng = random.Random(18)
    log = tmp_path / "workers.log"
    workers = [spawn(db_url, log) for _ in range(3)]
    kills = 0
    deadline = time.monotonic() + WINDOW
    try:
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.3, 2.0))
            index = rng.randrange(len(workers))
            workers[index].send_signal(signal.SIGKILL)
            workers[index].wait()
            kills += 1
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0.5, 3.0))  # sometimes no worker at all for a while
            workers[index] = spawn(db_url, log)
        wait_until(lambda: db.get_schedule("every-second").last_run is not None, timeout=30)
        db.pause_schedule("every-second")  # a fire in flight now is refused: the window closes
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
    last = db.get_schedule("every-second").last_run
    assert last is not None
    ticks = db.store.schedule_ticks("every-second")
    expected = [
        first + dt.timedelta(seconds=s) for s in range(int((last - first).total_seconds()) + 1)
    ]
    assert len(expected) >= WINDOW - 5, (
        f"only {len(expected)} ticks in the window: {log.read_text()}"
    )
    assert [tick for tick, _ in ticks] == expected  # none missing; the key allows no second
    job_ids = [job_id for _, job_id in ticks]
    assert None not in job_ids and len(set(job_ids)) == len(job_ids)
    # The jobs table agrees: one job per tick, none without its tick.
    rows = execute(db_url, "SELECT id FROM jobq_jobs")
    assert Counter(r[0] for r in rows) == Counter(job_ids)
    for tick, job_id in ticks[:: max(1, len(ticks) // 10)]:
        job = db.get_job(int(job_id or 0))
        # Unless a kill interrupted it (active while its outcome lingered): it was put back to
        # run again, in a later attempt, and its begin_after is the time it was put back.
        assert job.begin_after == tick or (job.attempt > 1 and job.begin_after > tick)
    assert kills >= 20
