"""Which job's attempt runs in this thread or task: set by the worker's runner around each
call, read by `jobq.local` and by what a running job does to jobs (puts, callbacks, composite
parts), so that those join the attempt's transaction."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobq.model.job import Job


def _never_opened() -> bool:
    return False


@dataclass(slots=True)
class JobContext:
    """The running job and what it may use.

    `owner` is the API object the job's database was opened with (a `jobq.Database`), handed
    through the worker untouched so that `jobq.local.queue()` can offer `.db`."""

    job: Job
    queue_name: str
    owner: Any
    dispatcher_uuid: str | None
    agent_name: str | None
    connection: Callable[[], Any]
    # Whether the job has opened its attempt connection yet (what joins it, on SQLite, must
    # not open a second writer that would wait for the lock this one holds).
    connection_open: Callable[[], bool] = _never_opened


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "jobq_job", default=None
)


def current() -> JobContext | None:
    """The running job's context, or None outside a job."""
    return _current.get()


def enter(ctx: JobContext | None) -> contextvars.Token[JobContext | None]:
    """Make `ctx` the running job's context (the worker's runner does, around each call)."""
    return _current.set(ctx)


def leave(token: contextvars.Token[JobContext | None]) -> None:
    """Restore the context that `enter` replaced."""
    _current.reset(token)


def current_dispatcher_uuid() -> str | None:
    """The running job's dispatcher UUID, or None outside a job: recorded as a put's
    `put_by`."""
    ctx = _current.get()
    return None if ctx is None else ctx.dispatcher_uuid
