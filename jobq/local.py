"""What a running job can ask about itself: `jobq.local.job()`, `queue()`, `connection()`.

Each job (callbacks included) runs with a context set by the worker; outside a job these
raise `ValueError('not initialized')`, as the original did.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobq.model.job import Job
    from jobq.queue import Queue


@dataclass(slots=True)
class JobContext:
    """The running job and what it may use; set by the worker's runner."""

    job: Job
    queue: Queue
    dispatcher_uuid: str | None
    agent_name: str | None
    connection: Callable[[], Any]


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "jobq_job", default=None
)


def _context() -> JobContext:
    ctx = _current.get()
    if ctx is None:
        raise ValueError("not initialized: jobq.local is only available inside a running job")
    return ctx


def job() -> Job:
    """The job being run."""
    return _context().job


def queue() -> Queue:
    """The queue of the job being run; put follow-up jobs here."""
    return _context().queue


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


def set_context(ctx: JobContext | None) -> contextvars.Token[JobContext | None]:
    """Set the running job (the worker's runner and inline callers use this)."""
    return _current.set(ctx)


def reset_context(token: contextvars.Token[JobContext | None]) -> None:
    _current.reset(token)


def current_dispatcher_uuid() -> str | None:
    """The running job's dispatcher UUID, or None outside a job (no error)."""
    ctx = _current.get()
    return None if ctx is None else ctx.dispatcher_uuid
