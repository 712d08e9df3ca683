"""Wait helpers: poll a job (or a dispatcher) in real time until it reaches a state, or fail
the test with an AssertionError saying what was awaited and what was last seen.

They measure `timeout` in real seconds (time.monotonic), never on the Database's clock: a
frozen MovableClock does not stop them from timing out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from jobq.model.job import Job, Status

if TYPE_CHECKING:
    from jobq.store.base import DispatcherRecord
    from jobq.worker.dispatcher import Dispatcher

__all__ = [
    "wait_for_annotation",
    "wait_for_deactivation",
    "wait_for_result",
    "wait_for_start",
    "wait_for_status",
]

DEFAULT_TIMEOUT = 5.0
_POLL = 0.02
_DONE = (Status.CALLBACKS, Status.COMPLETED)
_T = TypeVar("_T")


def describe_job(job: Job) -> str:
    """`job 12 (tests.jobs.slow())`: how the helpers name a job."""
    call = job.call_repr or "?"
    return f"job {job.id} ({call})"


def _seconds(timeout: float) -> str:
    return f"{timeout:g} s"


def _poll(check: Callable[[], tuple[bool, _T]], timeout: float) -> tuple[bool, _T]:
    deadline = time.monotonic() + timeout
    while True:
        done, seen = check()
        if done or time.monotonic() >= deadline:
            return done, seen
        time.sleep(_POLL)


def _stored(job: Job) -> Job:
    if not isinstance(job, Job) or job.id is None:
        raise TypeError(f"expected a stored jobq.Job (put in a queue), got {job!r}")
    return job


def _outcome(job: Job) -> str:
    if job.status not in _DONE:
        return f"status {str(job.status)!r}"
    if job.failed and job.failure is not None:
        return f"failed with {job.failure.type_name}: {job.failure.message}"
    return f"status {str(job.status)!r}"


def wait_for_status(
    job: Job, status: str | Iterable[str], *, timeout: float = DEFAULT_TIMEOUT
) -> Job:
    """Wait until `job.status` is `status` (or one of several); returns the refreshed job."""
    wanted = {Status(status)} if isinstance(status, str) else {Status(s) for s in status}
    _stored(job)

    def check() -> tuple[bool, None]:
        job.refresh()
        return job.status in wanted, None

    done, _ = _poll(check, timeout)
    if not done:
        names = " or ".join(repr(str(s)) for s in sorted(wanted))
        raise AssertionError(
            f"{describe_job(job)} never reached status {names} within {_seconds(timeout)}: "
            f"last {_outcome(job)}"
        )
    return job


def wait_for_start(job: Job, *, timeout: float = DEFAULT_TIMEOUT) -> Job:
    """Wait until the job has started (active, or already finished after starting); returns
    the refreshed job. A job that finished without ever starting (failed by its deadline or
    by `fail()`) is an AssertionError too."""
    _stored(job)

    def check() -> tuple[bool, None]:
        job.refresh()
        return job.status == Status.ACTIVE or job.status in _DONE, None

    done, _ = _poll(check, timeout)
    if not done:
        raise AssertionError(
            f"{describe_job(job)} never started within {_seconds(timeout)}: last {_outcome(job)}"
        )
    if job.active_start is None:
        raise AssertionError(f"{describe_job(job)} finished without starting: {_outcome(job)}")
    return job


def wait_for_result(job: Job, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Wait until the job has a result and return it: the value, or the `jobq.Failure` if it
    failed (use `job.wait()` to have a failure raised instead)."""
    _stored(job)

    def check() -> tuple[bool, None]:
        job.refresh()
        return job.status in _DONE, None

    done, _ = _poll(check, timeout)
    if not done:
        waiting = f" (waiting on job {job.waiting_on})" if job.waiting_on else ""
        raise AssertionError(
            f"{describe_job(job)} never completed within {_seconds(timeout)}: "
            f"last {_outcome(job)}{waiting}"
        )
    return job.result


def wait_for_annotation(
    job: Job, name: str, *, timeout: float = DEFAULT_TIMEOUT, value: Any = ...
) -> Any:
    """Wait until the job has the annotation `name` (with `value`, if given); returns it."""
    _stored(job)

    def check() -> tuple[bool, None]:
        job.refresh()
        if name not in job.annotations:
            return False, None
        return value is ... or job.annotations[name] == value, None

    done, _ = _poll(check, timeout)
    if not done:
        wanted = f"annotation {name!r}" + ("" if value is ... else f" == {value!r}")
        raise AssertionError(
            f"{describe_job(job)} never got {wanted} within {_seconds(timeout)}: "
            f"last annotations {job.annotations!r}, {_outcome(job)}"
        )
    return job.annotations[name]


def wait_for_deactivation(
    dispatcher: Dispatcher, *, timeout: float = DEFAULT_TIMEOUT
) -> DispatcherRecord:
    """Wait until the dispatcher's database record says it is deactivated (stopped, or found
    dead); returns that record."""
    store = dispatcher.store

    def check() -> tuple[bool, DispatcherRecord | None]:
        record = store.get_dispatcher(dispatcher.uuid)
        return record is not None and record.deactivated is not None, record

    done, record = _poll(check, timeout)
    if not done or record is None:
        seen = (
            "no record of it in the database"
            if record is None
            else f"activated {record.activated}, last ping {record.last_ping}"
        )
        raise AssertionError(
            f"dispatcher {dispatcher.uuid} was never deactivated within {_seconds(timeout)}: {seen}"
        )
    return record
