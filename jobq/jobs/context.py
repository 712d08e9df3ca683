"""Which job's attempt runs in this thread or task: set by the worker's runner around each
call, read by `jobq.local` and by what a running job does to jobs (puts, callbacks,
annotations, composite parts), so that those join the attempt's transaction.

Until the job opens its attempt connection, those writes wait in its `AttemptWrites`: they
are written, in order, in the transaction that stores the job's outcome (or when the job opens
the connection), so they commit with it or not at all, and the job holds no lock (on SQLite,
no write lock on the whole database) while it runs."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobq.errors import ReassignedError

if TYPE_CHECKING:
    from jobq.model.job import Job


def _never_opened() -> bool:
    return False


Write = Callable[[Any], None]
"""One write of a running job, given the attempt's connection (in its open transaction)."""


class AttemptWrites:
    """What a running job did to jobs and has not written yet, in order, and the handles of
    the jobs it made (they get their ids when written)."""

    def __init__(self) -> None:
        self._writes: list[Write] = []
        self._made: dict[int, Job] = {}  # id(handle) -> handle: kept alive, so ids stay unique
        # The attempt's transaction has ended (committed or rolled back): what runs after it
        # (a teardown) writes in transactions of its own.
        self.closed = False

    def __bool__(self) -> bool:
        return bool(self._writes)

    def add(self, write: Write, *made: Job) -> None:
        """Keep `write` for the attempt's transaction; `made`: the jobs it creates."""
        self._writes.append(write)
        for job in made:
            self._made[id(job)] = job

    def holds(self, job: Job) -> bool:
        """True for a job made by this attempt and not written yet (it has no id so far)."""
        return self._made.get(id(job)) is job

    def write(self, conn: Any) -> None:
        """Write everything kept, in order, in `conn`'s open transaction."""
        writes, self._writes = self._writes, []
        try:
            for write in writes:
                write(conn)
        finally:
            self._made.clear()

    def close(self) -> None:
        """The attempt's transaction has ended: forget anything still kept (the attempt
        failed), and keep nothing from now on."""
        self._writes.clear()
        self._made.clear()
        self.closed = True


class Guard:
    """A running job's time limit as its worker enforces it (`jobq.worker.timeouts`): `stop`
    is True once the limit passed (`jobq.local.stop_requested()` answers True), `taken` holds
    the reason once the attempt was taken away: then whatever the job still does to jobs
    through `jobq.local` raises `ReassignedError`. Plain attributes (set by one thread, read
    by another): one is made for every run under a limit."""

    __slots__ = ("stop", "taken")

    def __init__(self) -> None:
        self.stop = False
        self.taken: str | None = None

    def check(self) -> None:
        """Raise `ReassignedError` if the attempt was taken away."""
        if self.taken is not None:
            raise ReassignedError(self.taken)


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
    # Whether the job has opened its attempt connection yet: then what it does to jobs is
    # written into it at once (on SQLite, a second writer would wait for the lock it holds);
    # until then it is kept in `writes`.
    connection_open: Callable[[], bool] = _never_opened
    # What the job did to jobs before opening its connection (see the module docstring).
    writes: AttemptWrites = field(default_factory=AttemptWrites)
    # Its time limit, if it runs under one (see `Guard`).
    guard: Guard | None = None


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "jobq_job", default=None
)
CURRENT = _current
"""The variable holding the running job's context (read from a task's `contextvars.Context`
to find the tasks of one job: `jobq.worker.aio.AsyncRuntime.cancel_where`)."""


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


def running_in(backend: object) -> JobContext | None:
    """The running job's context if that job is one of `backend`'s (its `JobRows`): what is
    done to jobs of its own database joins its attempt. None outside a job, in a job of
    another database, or once the attempt's transaction has ended (its teardown).
    `ReassignedError` if the attempt was taken away after its time limit."""
    ctx = _current.get()
    if ctx is None or ctx.job._backend is not backend:
        return None
    if ctx.guard is not None:
        ctx.guard.check()
    if ctx.writes.closed:
        return None
    return ctx
