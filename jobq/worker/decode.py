"""The decode step: how a claimed row becomes a call a thread can run, or the reason it cannot.

A row's call, its job class and its retry policy are imported here, in the worker. What this
worker cannot import (the callable, a class of its arguments or of a callback's parent result,
the job class, the policy) is not the job's fault: it is put back, due after a short growing
delay, for a worker that can (`PutBack`), and failed with that reason only after
`import_retries` put-backs. Anything else (a tampered or damaged payload, a policy that cannot
be built) fails it at once (`Undecodable`). The runner makes the one store call each answer
needs.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pkgutil import resolve_name
from typing import Any

from jobq.errors import AbortedError, EncodingError
from jobq.jobs.rows import JobRows
from jobq.model.bound import Bound
from jobq.model.failure import Failure
from jobq.model.job import Job
from jobq.model.retry import RetryCommonForever, RetryCommonFourTimes, RetryPolicy
from jobq.store.base import JobRecord
from jobq.worker.aio import is_async_job

events_log = logging.getLogger("jobq.events")

IMPORT_RETRIES = 10
"""How many times a job is put back because the worker that claimed it could not import what
it names, before a worker fails it with that reason (`jobq worker --import-retries`)."""
IMPORT_ERRORS = "import_errors"
"""The key of a job's retry data counting those put-backs (`LAST_IMPORT_ERROR`: the last)."""
LAST_IMPORT_ERROR = "last_import_error"


def import_retry_delay(count: int) -> float:
    """Seconds until a job put back for the `count`-th import failure is due again: 2, 4,
    8 ... 60, so that other workers (which may import it) get the chance to claim it."""
    return float(min(60, 2**count))


def check_job_class(path: str | None) -> None:
    """Import a job's stored class (`module:qualname`) as a worker must: ImportError or
    AttributeError if it cannot be imported here, EncodingError if it names no Job class."""
    if not path:
        return
    try:
        found = resolve_name(path)
    except ValueError as error:
        raise EncodingError(f"job class path {path!r} is not a module:qualname") from error
    if not (isinstance(found, type) and issubclass(found, Job)):
        raise EncodingError(f"job class {path!r} is {found!r}, not a jobq.Job subclass")


def load_policy_class(path: str | None, is_callback: bool) -> type[RetryPolicy]:
    """The policy class stored for a job (`module:qualname`), or the default for jobs /
    callbacks."""
    if not path:
        return RetryCommonForever if is_callback else RetryCommonFourTimes
    return resolve_name(path)


@dataclass(slots=True)
class Call:
    """A decoded job, ready to call: its callable and arguments (a callback's end with its
    parent's result) and its retry policy."""

    job: Job
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    policy: RetryPolicy


@dataclass(frozen=True, slots=True)
class Undecodable:
    """The job cannot run anywhere: it fails with `failure`, its retry data `retry_data`."""

    failure: Failure
    retry_data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PutBack:
    """This worker cannot import what the job names: it goes back to its queue, due at `due`,
    with its count of such put-backs in `retry_data`."""

    due: dt.datetime
    retry_data: dict[str, Any]


Decoded = Call | Undecodable | PutBack


class Decoder:
    """Decodes the rows one runner claims. A row decoded at claim time (to tell an async job
    from a threaded one) is kept for its run, so that it is decoded once."""

    def __init__(
        self,
        rows: JobRows,
        *,
        import_retries: int = IMPORT_RETRIES,
        sleep: Callable[[float], None],
    ) -> None:
        self.rows = rows
        self.import_retries = import_retries
        self._sleep = sleep  # given to the retry policies it builds
        self._decoded: dict[tuple[int, int], Job] = {}  # by (id, attempt)

    def is_async(self, record: JobRecord) -> bool:
        """True for an `async def` job (False for one that cannot be decoded: a thread's
        runner then stores the reason)."""
        try:
            job = self.rows.job(record)
            is_async = is_async_job(job)  # decodes the call: keep it for the run
        except Exception:
            return False
        if len(self._decoded) > 10_000:  # claimed but never run (a stop): don't accumulate
            self._decoded.clear()
        self._decoded[(record.id, record.attempt)] = job
        return is_async

    def decode(self, record: JobRecord, label: str, now: dt.datetime) -> Decoded:
        """The job's call and retry policy, or why it cannot run (here, or anywhere)."""
        is_callback = record.parent_id is not None
        if record.damaged:
            damaged = EncodingError(
                f"{label}: its row's {', '.join(record.damaged)} column(s) hold text that is "
                f"not the JSON jobq stores there (damaged or written by hand); failed rather "
                f"than run without them"
            )
            events_log.error("%s", damaged)
            return Undecodable(Failure.from_exception(damaged), {})
        try:
            check_job_class(record.job_class)
            decoded = self._decoded.pop((record.id, record.attempt), None)
            if decoded is None:
                decoded = self.rows.job(record)
            func, args, kwargs = decoded.callable, decoded.args, decoded.kwargs
            if isinstance(func, Bound):  # Job.bind: the job itself comes first
                func, args = func.func, (decoded, *args)
            if record.parent_id is not None:
                args = (*args, self._parent_result(record.parent_id))
            policy_cls = load_policy_class(record.retry_policy, is_callback)
        except (ImportError, AttributeError) as error:
            return self._cannot_import(record, label, error, now)
        except Exception as error:
            failure = Failure.from_exception(error)
            events_log.error("%s cannot be decoded: %s", label, failure)
            return Undecodable(failure, record.retry_data)
        try:
            policy = policy_cls(record.retry_data, job_label=label, sleep=self._sleep)
        except Exception as error:
            reason = EncodingError(
                f"{label}: its retry policy {record.retry_policy} cannot be built "
                f"({type(error).__name__}: {error}); a RetryPolicy's __init__ must accept "
                f"(data, *, job_label, sleep) and pass them to RetryPolicy.__init__"
            )
            events_log.error("%s", reason)
            return Undecodable(Failure.from_exception(reason), record.retry_data)
        return Call(decoded, func, args, kwargs, policy)

    def _parent_result(self, parent_id: int) -> Any:
        parent = self.rows.store.get(parent_id)
        if parent is None:
            raise AbortedError(f"callback's parent job {parent_id} no longer exists")
        return self.rows.load(parent)

    def _cannot_import(
        self, record: JobRecord, label: str, error: BaseException, now: dt.datetime
    ) -> Decoded:
        """Put the job back for a worker that can import it, counting it in its retry data;
        after `import_retries` such put-backs, fail it with the reason."""
        module = (error.name or "") if isinstance(error, ImportError) else ""
        what = f"module {module!r}" if module else "what it names"
        counted = record.retry_data.get(IMPORT_ERRORS, 0)
        count = (counted if isinstance(counted, int) else 0) + 1
        data = {**record.retry_data, IMPORT_ERRORS: count}
        data[LAST_IMPORT_ERROR] = f"{type(error).__name__}: {error}"
        if count > self.import_retries:
            reason = ImportError(
                f"{label}: {what} could not be imported by the workers that claimed it, "
                f"{count} times ({type(error).__name__}: {error}); last worker's sys.path: "
                f"{sys.path}",
                name=module or None,
            )
            events_log.error("%s; failing it", reason)
            return Undecodable(Failure.from_exception(reason), data)
        delay = import_retry_delay(count)
        events_log.error(
            "%s: this worker cannot import %s (%s: %s); putting it back for a worker that "
            "can, due in %.0f s (%d of %d). Start the worker in the application's folder, or "
            "give --path DIR (or JOBQ_PATH). This worker's sys.path: %s",
            label,
            what,
            type(error).__name__,
            error,
            delay,
            count,
            self.import_retries,
            sys.path,
        )
        return PutBack(now + dt.timedelta(seconds=delay), data)
