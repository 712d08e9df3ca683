"""Every exception jobq raises, in one tree.

    JobqError
    +-- ConfigError (also ValueError)        bad URL, bad option, unknown engine
    |   +-- MissingExtra                      a feature whose optional dependencies are absent
    +-- BadStatusError                        an operation the job's status forbids
    +-- JobNotFound (also LookupError)        no job with that id
    |   +-- JobExpired                        pruned when its keep_result ran out
    +-- EncodingError (also TypeError)        a callable or argument that cannot be stored
    +-- SignatureError                        a stored payload whose HMAC does not match
    +-- ReassignedError                       a write for an attempt that lost its claim
    +-- WaitTimeout (also TimeoutError)       Job.wait gave up
    +-- JobFailed                             Job.wait on a job that completed with a Failure
    +-- StoreError                            the database said no
        +-- StoreUnavailable                  lost or refused connection (ClientDisconnected)
        |   +-- StoreFull                     no room: nothing was written
        |   +-- OutcomeUnknown                lost while a commit was in flight: stored or not
        |       +-- PutOutcomeUnknown         ... the commit of a put (retry with its unique_key)
        +-- ConflictError                     serialization failure, deadlock, `database is locked`
        +-- SchemaMismatch                    the database schema is newer than this jobq

Failures stored as job results use four more, which are raised *inside* jobs only:
`TimeoutError` (a `begin_by` deadline passed before the job started; it shadows the builtin
only inside this module's namespace, as `jobq.TimeoutError`), its subclass `JobTimeout` (the
job ran past its time limit, `put(timeout=...)`), `AbortedError` (an
interrupted job its retry policy would not retry) and `CancelledError` (a pending job
cancelled with `job.cancel()`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any


class JobqError(Exception):
    """Root of every jobq error."""


class ConfigError(JobqError, ValueError):
    """A configuration value (URL, option, environment variable) is invalid."""


class MissingExtra(ConfigError):
    """A feature needs an optional dependency that is not installed: the message names the
    extra to install (`pip install 'jobq[postgres]'`)."""

    def __init__(self, feature: str, extra: str, error: ImportError) -> None:
        super().__init__(
            f"{feature} needs the {error.name or 'missing'} package, which is not installed: "
            f"pip install 'jobq[{extra}]'"
        )
        self.extra = extra


class BadStatusError(JobqError):
    """The job's status does not allow this operation."""


class JobNotFound(JobqError, LookupError):
    """No job with this id exists (it may have been pruned)."""


class JobExpired(JobNotFound):
    """The job was put with `keep_result` and pruned once that ran out: `.job_id`,
    `.expires_at` (completion + keep_result), `.pruned_at`, `.keep_result` (timedelta) and
    `.reason` (a sentence) say when and why."""

    def __init__(
        self,
        job_id: int,
        *,
        completed_at: dt.datetime,
        expires_at: dt.datetime,
        pruned_at: dt.datetime,
        keep_result: dt.timedelta,
    ) -> None:
        self.job_id = job_id
        self.completed_at = completed_at
        self.expires_at = expires_at
        self.pruned_at = pruned_at
        self.keep_result = keep_result
        self.reason = (
            f"it was put with keep_result={keep_result} and completed at "
            f"{_when(completed_at)}, so retention pruned it (at {_when(pruned_at)}) with its "
            f"result"
        )
        super().__init__(f"job {job_id} expired at {_when(expires_at)}: {self.reason}")


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class QueueNotFound(JobqError, LookupError):
    """No queue of this name exists: no job was ever put in it and it was never created."""


class EncodingError(JobqError, TypeError):
    """A callable, argument or result cannot be stored: it must be importable or picklable."""


class SignatureError(JobqError):
    """A stored payload's HMAC signature does not match JOBQ_SECRET; it was not unpickled."""


class ReassignedError(JobqError):
    """This attempt lost its claim on the job (another worker owns it now); nothing was written."""


class WaitTimeout(JobqError, TimeoutError):
    """Job.wait() gave up before the job completed."""


class JobFailed(JobqError):
    """Job.wait() found the job completed with a Failure; the Failure is `.failure`."""

    def __init__(self, failure: Any) -> None:
        super().__init__(f"job failed: {failure.type_name}: {failure.message}")
        self.failure = failure


class StoreError(JobqError):
    """The database refused an operation."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (lost connection, server down)."""


class StoreFull(StoreUnavailable):
    """The database cannot grow: its disk (or quota) is full. Nothing was written; writes go
    through again once there is room."""


class OutcomeUnknown(StoreUnavailable):
    """The connection was lost while a commit was in flight: the server may have committed it
    or not, and nobody here can tell which. A StoreUnavailable, so existing handlers catch
    it; a plain StoreUnavailable means the commit was never sent (nothing was written)."""


class PutOutcomeUnknown(OutcomeUnknown):
    """A put's commit was in flight when the connection was lost: its jobs may or may not be
    stored. Retrying a put without a unique key may make duplicates; put with `unique_key=`
    and retry the same put: the database makes at most one job for the key."""


class ConflictError(StoreError):
    """A transient write conflict: serialization failure, deadlock or a locked SQLite database."""


class SchemaMismatch(StoreError):
    """The database schema version is not one this jobq understands; upgrade jobq."""


class TimeoutError(JobqError):
    """The job's begin_by deadline passed before it started."""


class JobTimeout(TimeoutError):
    """The job ran past its time limit (`put(..., timeout=...)`, or its worker's
    `job_timeout`): its stop was requested, and it did not finish in time or stopped then.
    Its retry policy decides as for any other error: the default policies and `NeverRetry`
    give up, `put(retries=N)` retries it up to N times."""


class AbortedError(JobqError):
    """The job was interrupted (its worker died or stopped) and its retry policy gave up."""


class CancelledError(JobqError):
    """The job was cancelled (`job.cancel()`) before it started; its callbacks get this."""


_CONFLICT_SQLSTATES = {"40001", "40P01", "55P03"}


def is_conflict(exc: BaseException) -> bool:
    """True for transient write conflicts that a retry can fix (the original's ConflictError)."""
    if isinstance(exc, ConflictError):
        return True
    if getattr(exc, "sqlstate", None) in _CONFLICT_SQLSTATES:
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text
    return False


def is_disconnect(exc: BaseException) -> bool:
    """True for a lost database connection (the original's ClientDisconnected)."""
    if isinstance(exc, StoreUnavailable):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate).startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}
    # psycopg.OperationalError without a sqlstate: the connection itself broke; and its
    # subclasses, psycopg_pool's PoolTimeout (no connection came within the pool's timeout:
    # a hung or lost link) and TooManyRequests. Not PoolClosed: that is jobq's own store
    # closed, which no retry can fix.
    if type(exc).__name__ == "PoolClosed":
        return False
    return any(
        cls.__name__ == "OperationalError" and cls.__module__.startswith("psycopg")
        for cls in type(exc).__mro__
    )
