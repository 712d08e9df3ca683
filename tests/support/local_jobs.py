"""Jobs that put jobs and add callbacks through `jobq.local` (README_1's pattern,
`queue.put(j).addCallback(cb)` inside a job), for the tests of its transactional semantics
(tests/acceptance/test_local_transactions.py). Marker files tell the test where a job is."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from jobfuncs import double

import jobq


def write_result(path: str, result: Any) -> Any:
    """A callback: writes the result it got to `path` (appending, one per line)."""
    with open(path, "a") as f:
        f.write(f"{result!r}\n")
    return result


def _put_child_with_callback(x: int, out: str) -> jobq.Job:
    child = jobq.local.queue().put(jobq.Job(double, x))
    child.add_callback(jobq.Job(write_result, out))
    return child


def put_child_with_callback(x: int, out: str) -> str:
    """README_1's pattern: put `double(x)` and add a callback to it; the callback writes the
    child's result to `out`."""
    _put_child_with_callback(x, out)
    return "put"


def put_child_then_wait(x: int, out: str, marker: str, gate: str, timeout: float = 20.0) -> str:
    """Puts a child with a callback, writes `marker`, then runs until `gate` exists (the test
    creates it once a client's put has returned); fails if it never does."""
    _put_child_with_callback(x, out)
    Path(marker).write_text("put")
    deadline = time.monotonic() + timeout
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gate} never appeared: was the client's put blocked?")
        time.sleep(0.02)
    return "passed the gate"


def put_child_then_fail(x: int, out: str) -> None:
    """Puts a child with a callback, then raises: neither may be stored."""
    _put_child_with_callback(x, out)
    raise RuntimeError("failed after putting a child")


def put_child_then_fail_once(x: int, out: str, runs: str) -> str:
    """Puts a child with a callback; raises ValueError on its first run (counted in the file
    `runs`), returns on the next: one child in all."""
    _put_child_with_callback(x, out)
    with open(runs, "a") as f:
        f.write("run\n")
    if Path(runs).read_text().count("run") == 1:
        raise ValueError("first run fails after its put")
    return "second run"


def put_annotated_child(x: int) -> jobq.Job:
    """Puts `double(x)`, annotates it and itself, and returns it (so this job waits on it)."""
    child = jobq.local.queue().put(jobq.Job(double, x))
    child.set_annotation("from", "parent")
    jobq.local.job().set_annotation("child", "put")
    return child


def refresh_unwritten_child() -> str:
    """Refreshes a child it just put: it is not stored until this job commits."""
    child = jobq.local.queue().put(jobq.Job(double, 1))
    try:
        child.refresh()
    except jobq.BadStatusError as error:
        return str(error)
    return "refreshed"


def put_the_same_job_twice() -> str:
    job = jobq.Job(double, 1)
    jobq.local.queue().put(job)
    try:
        jobq.local.queue().put(job)
    except ValueError as error:
        return str(error)
    return "put twice"


def put_then_count_in_connection() -> int:
    """Puts a child, then opens its connection: the child is written there first, so the
    job's own SQL sees it (the job and its child)."""
    jobq.local.queue().put(jobq.Job(double, 1))
    row = jobq.local.connection().execute("SELECT COUNT(*) AS n FROM jobq_jobs").fetchone()
    return int(row["n"] if isinstance(row, dict) else row[0])  # psycopg's rows are dicts here


def connection_then_progress() -> str:
    """Opens its connection (on SQLite: the write lock), then reports progress."""
    jobq.local.connection()
    jobq.local.progress(1, 2, "half")
    return "done"


async def async_put_child_with_callback(x: int, out: str) -> str:
    """README_1's pattern in an `async def` job, across awaits."""
    child = jobq.local.queue().put(jobq.Job(double, x))
    await asyncio.sleep(0)
    child.add_callback(jobq.Job(write_result, out))
    await asyncio.sleep(0)
    return "put"


def fail_with(message: str, out: str) -> None:
    raise RuntimeError(message)


class PutInTeardownJob(jobq.Job):
    """Its teardown (after its transaction has ended, here a failure's rollback) puts a job
    whose callback writes its result to the job's second argument."""

    def teardown(self, setup_info: Any) -> None:
        _put_child_with_callback(21, self.args[1])
