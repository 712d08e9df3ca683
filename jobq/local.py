"""What a running job can ask about itself: `jobq.local.job()`, `queue()`, `connection()`.

Each job (callbacks included) runs with a context set by the worker; outside a job these
raise `ValueError('not initialized')`, as the original did.

What a running job does to jobs of its database (puts, `add_callback`, `set_annotation`,
composite parts) happens in its attempt's transaction: it commits with the job's result, or
not at all if the job fails. Live annotations (`set_live_annotation`, `get_live_annotation`),
`progress`, `stop_requested` and `composite` are read and written in their own short
transactions, so others see them at once.
"""

from __future__ import annotations

import time
from typing import Any

from jobq.jobs import context
from jobq.jobs.context import JobContext
from jobq.model.compose import PART_OF_KEY
from jobq.model.job import Job, check_annotation
from jobq.queue import Queue


def _context() -> JobContext:
    ctx = context.current()
    if ctx is None:
        raise ValueError("not initialized: jobq.local is only available inside a running job")
    return ctx


def job() -> Job:
    """The job being run."""
    return _context().job


def queue() -> Queue:
    """The queue of the job being run; put follow-up jobs here. Like everything the job does
    to jobs of its database (puts, `add_callback`, `set_annotation`, composite parts), its
    puts happen in the attempt's transaction, so a follow-up job exists only if the job's
    result commits: a job that fails or is interrupted and run again never leaves a
    follow-up behind, or a duplicate. Until the job opens `connection()` they are kept and
    written with its result (the handles' ids are None until then), so the job holds no
    lock while it runs."""
    ctx = _context()
    return Queue(ctx.owner, ctx.queue_name)


def dispatcher_uuid() -> str | None:
    """The UUID of the dispatcher running this job."""
    return _context().dispatcher_uuid


def agent_name() -> str | None:
    """The name of the agent whose thread runs this job."""
    return _context().agent_name


def connection() -> Any:
    """The database connection of this attempt (sqlite3 or psycopg), in an open transaction.

    What the job writes through it commits in the same transaction as the job's result, so it
    happens exactly once even if the worker crashes; if the job fails, it is rolled back. On
    SQLite the transaction holds the database's write lock until the job ends: keep such jobs
    short.
    """
    return _context().connection()


def set_live_annotation(name: str, value: Any, job: Job | None = None) -> None:
    """Store annotation `name` = `value` (JSON) on the running job (or on `job`, another
    stored job of its database: the catalogue's `job=`) now, in its own short transaction
    (not the running job's): other processes see it at once (`job.refresh()`,
    `job.annotations`). On SQLite, once the running job has opened `connection()`, it is
    written in that transaction instead (a second writer would wait for the job's own lock):
    others see it when the job commits."""
    target = _target(job)
    check_annotation(name, value)
    target._require_backend().set_live_annotation(target, name, value)
    target.annotations = {**target.annotations, name: value}


def get_live_annotation(
    name: str, default: Any = None, timeout: float = 0, poll: float = 0.1, job: Job | None = None
) -> Any:
    """The running job's annotation `name` (or `job`'s, another stored job: the catalogue's
    `job=`) as stored now (set by another process, for example with `job.set_annotation`);
    if absent, polls every `poll` seconds for up to `timeout` seconds, then answers
    `default`. `jobq.local.job().annotations` stays the snapshot taken when the job was
    claimed."""
    current = _target(job)
    backend = current._require_backend()
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        annotations = backend.read_annotations(current)
        if name in annotations:
            return annotations[name]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return default
        time.sleep(min(max(poll, 0.001), remaining))


def _target(other: Job | None) -> Job:
    """The running job, or `other`: a stored job (it needs an id to be read or written)."""
    running = _context().job
    if other is None:
        return running
    if not isinstance(other, Job) or other.id is None:
        raise ValueError(
            f"job= must be a stored jobq.Job (one with an id), got {other!r}; a job put by "
            f"this running job has its id only once the job commits"
        )
    return other


def progress(done: float, total: float | None = None, message: str | None = None) -> None:
    """Report the running job's progress: annotation "progress" = {"done", "total",
    "message"}, read as `job.progress` and drawn as a bar by the dashboard."""
    set_live_annotation("progress", {"done": done, "total": total, "message": message})


def stop_requested() -> bool:
    """True once someone called `request_stop()` on the running job (one database read), or
    once the job has run past its time limit (`put(..., timeout=...)`; no read then): the job
    should return soon, before its grace period ends and its attempt is taken away."""
    guard = _context().guard
    if guard is not None and guard.stop:
        return True
    return bool(get_live_annotation("stop_requested", False))


def composite() -> Job:
    """The composite (`jobq.parallel` / `jobq.serial`) the running job is a part of, or
    whose part it is a callback of; add parts with its `add_part(...)`. ValueError if none."""
    current = job()
    backend = current._require_backend()
    candidate: Job | None = current
    for _ in range(20):
        if candidate is None:
            break
        composite_id = candidate.annotations.get(PART_OF_KEY)
        if composite_id is not None:
            return backend.get_job(int(composite_id))
        if candidate.parent_id is None:
            break
        candidate = backend.get_job(candidate.parent_id)
    raise ValueError(f"{current!r} is not a part of a composite job (jobq.parallel/serial)")
