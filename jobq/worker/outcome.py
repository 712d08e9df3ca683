"""Applying an outcome: each value is one fenced store call and the log lines it has.

The runner (a job's result, its wait on an inner job, a policy's answer to a job or commit
error) and the recovery of a gone dispatcher's jobs (an interruption) both end here:
`apply` writes `StoreResult`, `WaitOn`, `RetryNow` or `RetryAt` for one attempt, and
`explain` logs which rule of `jobq.model.outcome.decide` changed what a policy asked for.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from jobq.errors import EncodingError
from jobq.model.failure import Failure, describe, failure_dict
from jobq.model.outcome import Decided, Fail, RetryAt, RetryNow, failure_log_level
from jobq.store.base import AttemptConnection, JobRecord, Outcome, Store

events_log = logging.getLogger("jobq.events")
trace_log = logging.getLogger("jobq.trace")


class JobNotes(Protocol):
    """Where a worker's statistics keep what became of one job (`jobq.worker.stats`)."""

    def note_outcome(self, failed: bool, result: str | None) -> None: ...
    def note_reassigned(self) -> None: ...


@dataclass(slots=True)
class Fenced:
    """The attempt an outcome is written for: every store call is conditional on the
    record's (id, attempt) and `dispatcher`. `label` names the job in logs, `notes` is its
    statistics record (if any), and `interrupted` the reason when recovery hands it on.
    One per job run, so not frozen (a frozen dataclass's `__init__` costs a few times more);
    nothing changes it."""

    record: JobRecord
    dispatcher: str
    label: str
    notes: JobNotes | None = None
    interrupted: str | None = None
    watched: Any = None  # its run under a time limit (`jobq.worker.timeouts.Watched`)


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Complete the job with `outcome` (a result, or a failure given up on)."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class WaitOn:
    """Make the job adopt the result of job `inner_id` (its callable returned a Job)."""

    inner_id: int


Applied = StoreResult | WaitOn | RetryNow | RetryAt


def apply(
    store: Store,
    job: Fenced,
    value: Applied,
    retry_data: dict[str, Any],
    now: dt.datetime,
    *,
    conn: AttemptConnection | None = None,
) -> None:
    """Write `value` for `job` (see `write`), then log it."""
    write(store, job, value, retry_data, now, conn=conn)
    log_applied(job, value, now)


def write(
    store: Store,
    job: Fenced,
    value: Applied,
    retry_data: dict[str, Any],
    now: dt.datetime,
    *,
    conn: AttemptConnection | None = None,
) -> None:
    """Write `value` for `job` in one store call, committing `conn` (the job's own writes)
    with it. A lost fence raises `ReassignedError` and writes nothing. For a caller that
    logs only after its teardown; `apply` logs at once."""
    record = job.record
    raw = None if conn is None else conn.raw
    if isinstance(value, StoreResult):
        store.store_result(record.id, record.attempt, job.dispatcher, value.outcome, now, conn=raw)
    elif isinstance(value, WaitOn):
        store.wait_on(
            record.id, record.attempt, job.dispatcher, value.inner_id, retry_data, now, conn=raw
        )
    else:
        at = value.at if isinstance(value, RetryAt) else None
        store.reschedule(record.id, record.attempt, job.dispatcher, at, retry_data, now)
        return
    if conn is not None:
        conn.commit()


def log_applied(job: Fenced, value: Applied, now: dt.datetime) -> None:
    """The log lines of `value`, written at `now`."""
    if isinstance(value, StoreResult):
        log_outcome(job, value.outcome)
    elif isinstance(value, WaitOn):
        trace_log.info("%s waits for the result of job %s", job.label, value.inner_id)
    else:
        at = value.at if isinstance(value, RetryAt) else None
        if job.interrupted is None:
            trace_log.info("%s rescheduled for %s", job.label, (at or now).isoformat())
        elif at is None:
            events_log.info("%s interrupted (%s): retrying now", job.label, job.interrupted)
        else:
            events_log.info(
                "%s interrupted (%s): retrying at %s", job.label, job.interrupted, at.isoformat()
            )


def explain(job: Fenced, decided: Decided) -> None:
    """Log why `decide` did not do what the policy asked, if it did not."""
    if isinstance(decided, RetryNow):
        if decided.refused is not None:
            events_log.error(
                "%s: cannot reschedule a callback, only retry; retrying now", job.label
            )
    elif isinstance(decided, Fail):
        if decided.why == "policy failed":
            events_log.critical(
                "%s: retry policy failed (%r); not retrying", job.label, decided.policy_error
            )
        elif decided.why == "deadline":
            trace_log.warning("%s: not retrying: the job's begin_by deadline has passed", job.label)


def log_outcome(job: Fenced, outcome: Outcome) -> None:
    """Log a stored outcome (a failure at the job's failure level) and note it in the job's
    statistics record."""
    record = job.record
    if job.interrupted is not None:
        level = failure_log_level(record.failure_log_level, record.parent_id is not None)
        events_log.log(level, "%s interrupted (%s): aborted", job.label, job.interrupted)
        return
    if job.notes is not None:
        job.notes.note_outcome(outcome.failed, outcome.result_repr)
    if outcome.failed:
        failure = outcome.failure or {}
        frames = failure.get("verbose", "")  # frame locals, only if the worker records them
        events_log.log(
            failure_log_level(record.failure_log_level, record.parent_id is not None),
            "%s failed with %s: %s\n%s%s",
            job.label,
            failure.get("type_name"),
            failure.get("message"),
            failure.get("traceback", ""),
            f"\nLocals:\n{frames}" if frames else "",
            extra={"job_id": record.id, "queue": record.queue},
        )
    else:
        trace_log.info("%s succeeded with result: %s", job.label, outcome.result_repr)


def log_obscured(job: Fenced, outcome: Outcome) -> None:
    """Log the outcome a failed commit replaced, which nothing stored keeps."""
    if outcome.failed:
        level = job.record.failure_log_level or logging.ERROR
        events_log.log(
            level,
            "Commit failed for %s. Prior to this, job failed with traceback:\n%s",
            job.label,
            (outcome.failure or {}).get("traceback", ""),
        )
    else:
        events_log.info(
            "Commit failed for %s. Prior to this, job succeeded with result: %s",
            job.label,
            outcome.result_repr,
        )


_MAX_TEXT = 10000  # of the text shown for a result or a failure (the payload is whole)


def value_outcome(codec: Any, value: Any, retry_data: dict[str, Any]) -> Outcome:
    """The outcome of a call that returned `value`: a returned `Failure` fails the job, a value
    the codec cannot store fails it with the reason."""
    if isinstance(value, Failure):
        return Outcome(
            None, str(value), failed=True, failure=failure_dict(value), retry_data=retry_data
        )
    try:
        payload = codec.dumps(value)
    except Exception as error:
        failure = Failure.from_exception(
            EncodingError(f"result {describe(value)} cannot be stored: {error}")
        )
        return failed_outcome(failure, retry_data)
    return Outcome(payload, _truncate(describe(value)), retry_data=retry_data)


def failed_outcome(failure: Failure, retry_data: dict[str, Any]) -> Outcome:
    """The outcome of a job that failed with `failure`."""
    return Outcome(
        None,
        _truncate(failure.traceback or str(failure)),
        failed=True,
        failure=failure_dict(failure),
        retry_data=retry_data,
    )


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "[...TRUNCATED...]"
