"""`Job`: a callable with its arguments, and, once stored, a handle on its row.

A new `Job(func, *args, **kwargs)` is a partial application with status "new". `Queue.put`
stores it; from then on the same object is a handle: `status`, `result` and the times are a
snapshot of the row, brought up to date by `refresh()` (or `wait()`). Subclasses may define
`setup()` / `teardown(setup_info)`, run around each call in the worker (the original's
setUp/tearDown), for context that must be re-established in the worker.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from jobq.errors import BadStatusError, CancelledError, EncodingError, JobFailed, WaitTimeout
from jobq.model.bound import Bound
from jobq.model.codec import call_repr
from jobq.model.failure import Failure, failure_from_dict
from jobq.model.limits import time_limit_of
from jobq.model.retry import retries_of

if TYPE_CHECKING:
    from jobq.model.retry import RetryPolicy


class Status(enum.StrEnum):
    """The six statuses of the catalogue."""

    NEW = "new"
    PENDING = "pending"
    ASSIGNED = "assigned"
    ACTIVE = "active"
    CALLBACKS = "callbacks"
    COMPLETED = "completed"


class CompositeBackend(Protocol):
    """The operations of `jobq.parallel` / `jobq.serial` on stored jobs (implemented by
    `jobq.jobs.compose.Composition`)."""

    def start(self, composite: Job, parts: Sequence[Job], postprocess: Job) -> Job: ...
    def step(self, composite_id: int) -> None: ...
    def add_part(self, composite: Job, part: Job) -> Job: ...
    def add_part_callback(
        self, composite_id: int, part_id: int, callback_row: Any, now: dt.datetime, conn: Any
    ) -> int: ...
    def parts(self, composite_id: int) -> list[Job]: ...


class JobBackend(Protocol):
    """What a stored job handle needs from below (implemented by `jobq.jobs.rows.JobRows`)."""

    @property
    def composition(self) -> CompositeBackend: ...
    def get_job(self, job_id: int) -> Job: ...
    def refresh_job(self, job: Job) -> None: ...
    def load_result(self, job: Job) -> Any: ...
    def fail_job(self, job: Job, exc: BaseException | None) -> None: ...
    def add_callback(
        self,
        job: Job,
        callback: Job,
        *,
        failure_log_level: int | None,
        retry_policy: type[RetryPolicy] | None,
    ) -> Job: ...
    def callbacks(self, job: Job) -> list[Job]: ...
    def wait_for_change(self, job: Job, timeout: float) -> None: ...
    def set_annotation(self, job: Job, name: str, value: Any) -> None: ...
    def set_live_annotation(self, job: Job, name: str, value: Any) -> None: ...
    def read_annotations(self, job: Job) -> dict[str, Any]: ...


class StoredRow(Protocol):
    """The columns of a job's row that its handle shows (`jobq.store.base.JobRecord` has
    them all)."""

    id: int
    queue: str
    status: str
    begin_after: dt.datetime
    begin_by: float | None
    created: dt.datetime
    active_start: dt.datetime | None
    active_end: dt.datetime | None
    completed_at: dt.datetime | None
    annotations: dict[str, Any]
    failed: bool
    failure: dict[str, Any] | None
    call_repr: str
    parent_id: int | None
    waiting_on: int | None
    attempt: int
    dispatcher_uuid: str | None
    agent_name: str | None
    retry_data: dict[str, Any]
    retry_policy: str | None
    failure_log_level: int | None
    unique_key: str | None
    priority: int
    keep_result: float | None
    expires_at: dt.datetime | None


_UNSET: Any = object()

PROGRESS_KEY = "progress"
"""Annotation of `jobq.local.progress`: {"done": ..., "total": ..., "message": ...}."""
PRIORITIES = range(-10, 11)
"""The priorities a job may have (`put(..., priority=N)`), 0 by default: among the due jobs
of a queue, higher ones are claimed first (jobs put back at the front still come first)."""

STOP_KEY = "stop_requested"
"""Annotation set by `Job.request_stop()`, read by `jobq.local.stop_requested()`."""


def check_priority(priority: object, name: str = "priority") -> int:
    """`priority` if it is an int of PRIORITIES, else a TypeError or ValueError naming the
    value and the rule (said by `name`, the parameter that received it)."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(
            f"{name} must be an int from {PRIORITIES[0]} to {PRIORITIES[-1]} (higher runs "
            f"first, default 0), got {type(priority).__name__} {priority!r}"
        )
    if priority not in PRIORITIES:
        raise ValueError(
            f"{name}={priority} is out of range: priorities are ints from {PRIORITIES[0]} "
            f"to {PRIORITIES[-1]} (higher runs first, default 0)"
        )
    return priority


def check_annotation(name: str, value: Any) -> None:
    """A clear TypeError unless `name` is a string and `value` can be stored as JSON."""
    if not isinstance(name, str):
        raise TypeError(f"an annotation name must be a string, got {name!r}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"annotation {name!r}: {value!r} is not JSON-serialisable ({error}); annotations "
            f"hold JSON values (str, int, float, bool, None, lists and dicts of them)"
        ) from None


class Job:
    """A partial call of `func(*args, **kwargs)`; a handle on its row once stored.

    >>> job = queue.put(jobq.Job(make_pdf, 42, size="A4"))
    >>> job.wait(timeout=30)
    """

    def __init__(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        if isinstance(func, Job):
            # Job(Job(f, 1), 2) is f(1, 2): appended args, overriding kwargs (the original).
            args = (*func.args, *args)
            kwargs = {**func.kwargs, **kwargs}
            func = func.callable
        if not callable(func):
            raise EncodingError(f"Job needs a callable, got {func!r}")
        self._call: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = (
            func,
            args if type(args) is tuple else tuple(args),
            dict(kwargs),
        )
        # The other attributes start at the class's defaults below (a bulk put makes
        # thousands of jobs); only the mutable ones need a value of each job's own.
        self.annotations: dict[str, Any] = {}
        self.retry_data: dict[str, Any] = {}

    @classmethod
    def bind(cls, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        """A job whose callable receives the job itself as its first argument, then `args`
        (the original's `Job.bind`): for a job that annotates or inspects itself."""
        if not callable(func) or isinstance(func, Job):
            raise EncodingError(f"Job.bind needs a function to call with the job, got {func!r}")
        return cls(Bound(func), *args, **kwargs)

    # Defaults of a new job's attributes (immutable values, shared until set).
    _payload: bytes | None = None
    _decode: Callable[[bytes], Any] | None = None
    id: int | None = None
    queue_name: str | None = None
    status: Status = Status.NEW
    begin_after: dt.datetime | None = None
    begin_by: dt.timedelta | None = None
    created: dt.datetime | None = None
    active_start: dt.datetime | None = None
    active_end: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    failed: bool = False
    failure: Failure | None = None
    call_repr: str = ""
    parent_id: int | None = None
    waiting_on: int | None = None
    attempt: int = 0
    dispatcher_uuid: str | None = None
    agent_name: str | None = None
    retry_policy: str | None = None
    failure_log_level: int | None = None
    unique_key: str | None = None
    # What the put that returned this handle did, given a unique key (`Queue.put`): "created"
    # (a new job), "existing" (the job holding the key, unchanged) or "replaced" (the pending
    # holder took the put's call and times). None for a handle no put returned.
    put_outcome: str | None = None
    priority: int = 0  # PRIORITIES; put(..., priority=N) sets it, else this one is stored
    # put(keep_result=): how long the job is kept once completed (None: the workers'
    # retention), and when it expires (completed_at + keep_result, once completed).
    keep_result: dt.timedelta | None = None
    expires_at: dt.datetime | None = None
    _result: Any = _UNSET
    _backend: JobBackend | None = None

    # -- the row behind a stored handle ------------------------------------------------------
    def _take_row(self, row: StoredRow, backend: JobBackend) -> None:
        """Show `row` (as read now) through this handle, served by `backend` from now on; a
        result already loaded is forgotten."""
        self.id = row.id
        self.queue_name = row.queue
        self.status = Status(row.status)
        self.begin_after = row.begin_after
        self.begin_by = None if row.begin_by is None else dt.timedelta(seconds=row.begin_by)
        self.created = row.created
        self.active_start = row.active_start
        self.active_end = row.active_end
        self.completed_at = row.completed_at
        self.annotations = row.annotations
        self.failed = row.failed
        self.failure = None if row.failure is None else failure_from_dict(row.failure)
        self.call_repr = row.call_repr
        self.parent_id = row.parent_id
        self.waiting_on = row.waiting_on
        self.attempt = row.attempt
        self.dispatcher_uuid = row.dispatcher_uuid
        self.agent_name = row.agent_name
        self.retry_data = row.retry_data
        self.retry_policy = row.retry_policy
        self.failure_log_level = row.failure_log_level
        self.unique_key = row.unique_key
        self.priority = row.priority
        keep = row.keep_result
        self.keep_result = None if keep is None else dt.timedelta(seconds=keep)
        self.expires_at = row.expires_at
        self._result = _UNSET
        self._backend = backend

    # -- hooks for subclasses --------------------------------------------------------------
    def setup(self) -> Any:
        """Run in the worker before each call; its return value goes to `teardown`."""
        return None

    def teardown(self, setup_info: Any) -> None:
        """Run in the worker after each call (after the commit, or after a failure)."""

    # -- the call --------------------------------------------------------------------------
    def _get_call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        if self._call is None:
            assert self._payload is not None and self._decode is not None
            func, args, kwargs = self._decode(self._payload)
            self._call = (func, tuple(args), dict(kwargs))
        return self._call

    def _set_call(self, index: int, value: Any) -> None:
        if self.stored:
            raise BadStatusError(
                f"cannot change the call of stored job {self.id}; only a new job can be changed"
            )
        func, args, kwargs = self._get_call()
        if index == 0:
            func = value
        elif index == 1:
            args = tuple(value)
        else:
            kwargs = dict(value)
        self._call = (func, args, kwargs)

    @property
    def callable(self) -> Callable[..., Any]:
        """The function (decoded from the row on first use for a loaded job)."""
        return self._get_call()[0]

    @callable.setter
    def callable(self, func: Callable[..., Any]) -> None:
        self._set_call(0, func)

    @property
    def args(self) -> tuple[Any, ...]:
        return self._get_call()[1]

    @args.setter
    def args(self, args: tuple[Any, ...]) -> None:
        self._set_call(1, args)

    @property
    def kwargs(self) -> dict[str, Any]:
        return self._get_call()[2]

    @kwargs.setter
    def kwargs(self, kwargs: dict[str, Any]) -> None:
        self._set_call(2, kwargs)

    # -- state -----------------------------------------------------------------------------
    @property
    def stored(self) -> bool:
        return self.id is not None

    @property
    def retries(self) -> int | None:
        """How many times an ordinary error is retried (`put(..., retries=N)`), or None if
        the job was put without `retries` (as of the last refresh)."""
        return retries_of(self.retry_data)[0]

    @property
    def retried(self) -> int:
        """How many of those retries the job has had so far: the errors its policy counted,
        at most `retries` (0 for a job put without `retries`)."""
        return retries_of(self.retry_data)[1]

    @property
    def time_limit(self) -> dt.timedelta | None:
        """The job's own time limit (`put(..., timeout=...)`), or None if it was put without
        one (its worker's `job_timeout`, if any, applies then)."""
        return time_limit_of(self.retry_data)

    @property
    def next_run(self) -> dt.datetime | None:
        """When a pending job is due to run (a retry's backoff moves it later), or None for a
        job that is not waiting in its queue."""
        return self.begin_after if self.status == Status.PENDING else None

    @property
    def result(self) -> Any:
        """The return value, a `Failure` if the job failed, or None if it has no result yet."""
        if self.status not in (Status.CALLBACKS, Status.COMPLETED):
            return None
        if self.failed:
            return self.failure
        if self._result is _UNSET:
            self._result = self._require_backend().load_result(self)
        return self._result

    def _require_backend(self) -> JobBackend:
        if self._backend is None:
            raise BadStatusError(f"{self!r} is not stored yet; put it in a queue first")
        return self._backend

    def refresh(self) -> Job:
        """Reload status, result and times from the database; returns self."""
        self._require_backend().refresh_job(self)
        return self

    def wait(self, timeout: float | None = None, *, poll: float = 0.05) -> Any:
        """Block until the job completes and return its result.

        Raises `jobq.JobFailed` (with `.failure`) if the job failed, `jobq.WaitTimeout` if it
        did not complete within `timeout` seconds.
        """
        backend = self._require_backend()
        deadline = None if timeout is None else time.monotonic() + timeout
        self.refresh()
        while self.status not in (Status.CALLBACKS, Status.COMPLETED):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(
                    f"job {self.id} did not complete within {timeout} s (status {self.status})"
                )
            backend.wait_for_change(self, poll if remaining is None else min(poll, remaining))
            self.refresh()
        if self.failed:
            raise JobFailed(self.failure)
        return self.result

    # -- operations ------------------------------------------------------------------------
    def fail(self, exc: BaseException | None = None) -> None:
        """Complete a job that has not started with a Failure (default `jobq.TimeoutError`);
        its callbacks get it. A job that is active or completed is a BadStatusError."""
        self._require_backend().fail_job(self, exc)

    def add_callback(
        self,
        callback: Job | Callable[..., Any],
        *,
        failure_log_level: int | None = None,
        retry_policy: type[RetryPolicy] | None = None,
    ) -> Job:
        """Run `callback(result)` once this job has a result (value or Failure).

        The callback is a stored job, run by any worker; it is returned. On a job that has
        already completed it runs at once.
        """
        cb = _as_job(callback)
        return self._require_backend().add_callback(
            self, cb, failure_log_level=failure_log_level, retry_policy=retry_policy
        )

    def add_callbacks(
        self,
        success: Callable[..., Any] | None = None,
        failure: Callable[..., Any] | None = None,
        *,
        failure_log_level: int | None = None,
        retry_policy: type[RetryPolicy] | None = None,
    ) -> Job:
        """Run `success(result)` or `failure(Failure)`, whichever matches the outcome.

        Returns one callback job whose result is the chosen callback's result; a missing slot
        passes the parent's result through unchanged, so chains keep working.
        """
        if success is None and failure is None:
            raise TypeError("add_callbacks needs success, failure or both")
        chooser = Job(
            choose_callback,
            None if success is None else _as_job(success),
            None if failure is None else _as_job(failure),
        )
        return self.add_callback(
            chooser, failure_log_level=failure_log_level, retry_policy=retry_policy
        )

    @property
    def callbacks(self) -> list[Job]:
        """The callback jobs added to this job (`add_callback`, `add_callbacks`), oldest first,
        as stored now: read from the database at each access."""
        return self._require_backend().callbacks(self)

    @property
    def on_success(self) -> Job | None:
        """For a job made by `add_callbacks`: its success slot (a job description, never a
        row of its own), or None when the slot was left empty or this is no such job."""
        return self._callback_slot(0)

    @property
    def on_failure(self) -> Job | None:
        """For a job made by `add_callbacks`: its failure slot, as `on_success`. (Not named
        `failure`: that is every job's own Failure.)"""
        return self._callback_slot(1)

    def _callback_slot(self, index: int) -> Job | None:
        if self.callable is not choose_callback:
            return None
        slot = self.args[index]
        return slot if isinstance(slot, Job) else None

    # -- annotations, progress, stopping ----------------------------------------------------
    def set_annotation(self, name: str, value: Any) -> None:
        """Store annotation `name` = `value` (JSON) on this job, from any process, in its own
        short transaction (inside a running job: in the job's, so it is stored only if the job
        commits); `annotations` of other handles shows it after `refresh()`."""
        check_annotation(name, value)
        self._require_backend().set_annotation(self, name, value)
        self.annotations = {**self.annotations, name: value}

    @property
    def progress(self) -> dict[str, Any] | None:
        """The job's last `jobq.local.progress(...)` ({"done", "total", "message"}), or None
        (as of the last refresh)."""
        value = self.annotations.get(PROGRESS_KEY)
        return value if isinstance(value, dict) else None

    def request_stop(self) -> None:
        """Ask the running job to stop: `jobq.local.stop_requested()` answers True inside it
        from now on. Cooperative: the job decides when (and whether) to return."""
        self.set_annotation(STOP_KEY, True)

    def cancel(self) -> None:
        """Cancel a job that has not started (new, pending or claimed): it leaves its queue
        and completes with a `jobq.CancelledError` failure, which its callbacks receive. A
        running or completed job is a BadStatusError (ask a running one to stop with
        `request_stop()`)."""
        backend = self._require_backend()
        try:
            backend.fail_job(self, CancelledError(f"job {self.id} was cancelled"))
        except BadStatusError:
            raise BadStatusError(
                f"can only cancel a job that has not started; job {self.id} is {self.status}"
                + (" (use request_stop() to ask it to stop)" if self.status == "active" else "")
            ) from None

    # -- pickling and display --------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_call"] = self._get_call()
        state["_payload"] = None
        state["_decode"] = None
        state["_backend"] = None
        state["_result"] = _UNSET
        return state

    def __repr__(self) -> str:
        ident = "?" if self.id is None else str(self.id)
        call = self.call_repr
        if not call and self._call is not None:
            call = call_repr(*self._call)
        if self.id is None:
            return f"<{type(self).__name__} {call}>"
        return f"<{type(self).__name__} {ident} {self.status} {call}>"


def _as_job(func: Job | Callable[..., Any]) -> Job:
    return func if isinstance(func, Job) else Job(func)


def choose_callback(success: Job | None, failure: Job | None, result: Any) -> Any:
    """The body of an `add_callbacks` job: call the slot matching `result`, or pass it on."""
    chosen = failure if isinstance(result, Failure) else success
    if chosen is None:
        return result
    return chosen.callable(*chosen.args, result, **chosen.kwargs)
