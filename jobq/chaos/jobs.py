"""Job functions of the crash harness (imported by its worker processes).

Each logs its start (pid, job id, attempt, wall time) to a per-process file *outside* any
transaction, then writes its row through `jobq.local.connection()`, which commits with its
result: the log shows every run, the table only the runs that counted.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from typing import Any

import jobq


def _log_start() -> None:
    folder = os.environ.get("JOBQ_CHAOS_LOG")
    if not folder:
        return
    job = jobq.local.job()
    line = f"{os.getpid()} {job.id} {job.attempt} {time.time():.6f}\n"
    with open(os.path.join(folder, f"starts-{os.getpid()}.log"), "a") as log:
        log.write(line)


def _write(kind: str, key: int) -> None:
    conn = jobq.local.connection()
    marker = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    conn.execute(f"INSERT INTO chaos_runs (kind, job_key) VALUES ({marker}, {marker})", (kind, key))


def work(n: int, pause: float) -> int:
    """A plain job: some work, one transactional row."""
    _log_start()
    time.sleep(random.uniform(0, pause))
    _write("work", jobq.local.job().id or 0)
    return n


def quick(n: int, pause: float) -> int:
    """A job without writes of its own: its outcome commits after its thread moves on."""
    _log_start()
    time.sleep(random.uniform(0, pause))
    return n


def fail_work(n: int, pause: float) -> None:
    """A job that fails: its row is rolled back with it."""
    _log_start()
    time.sleep(random.uniform(0, pause))
    _write("work", jobq.local.job().id or 0)
    raise ValueError(f"chaos job {n} fails, as planned")


def note(result: Any) -> str:
    """A callback: one transactional row per parent completion."""
    _log_start()
    job = jobq.local.job()
    _write("callback", job.parent_id or 0)
    return f"noted {result!r}"


def returns_job(n: int, pause: float) -> jobq.Job:
    """A job whose result is the result of the job it returns."""
    _log_start()
    _write("outer", jobq.local.job().id or 0)
    return jobq.Job(work, n * 10, pause)
