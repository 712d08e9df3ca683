"""Handing on the jobs of a dispatcher that is gone: dead, stopped, or this one restarted.

A claimed job that never started goes back to the front of its queue (original order kept).
An active job goes through its retry policy's `interrupted()`: retry now (front of the queue),
retry at a time, or complete with an `AbortedError` failure that its callbacks receive.
Every write is fenced on the job's (attempt, dispatcher), so when two live dispatchers sweep
the same dead one, each job is handed on exactly once; the loser's write changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from jobq.errors import (
    AbortedError,
    ConflictError,
    EncodingError,
    ReassignedError,
    StoreUnavailable,
)
from jobq.jobs.rows import JobRows
from jobq.model.failure import Failure, failure_dict
from jobq.model.outcome import Fail, ask, deadline_of, decide
from jobq.model.retry import RetryCommonForever
from jobq.store.base import JobRecord, Outcome
from jobq.worker.decode import load_policy_class
from jobq.worker.outcome import Fenced, StoreResult, apply, explain

events_log = logging.getLogger("jobq.events")
trace_log = logging.getLogger("jobq.trace")


def hand_on(rows: JobRows, records: Iterable[JobRecord], reason: str) -> int:
    """Hand on each job of `records` (assigned or active); returns how many this call moved."""
    moved = 0
    for record in records:
        try:
            if record.status == "assigned":
                if rows.store.release(record.id, record.attempt, record.dispatcher_uuid or ""):
                    trace_log.info("job %s (%s) put back: %s", record.id, record.call_repr, reason)
                    moved += 1
            elif record.status == "active":
                interrupt(rows, record, reason)
                moved += 1
        except ReassignedError:
            continue  # another dispatcher handed it on first
        except (StoreUnavailable, ConflictError):
            raise  # the database, not this job: the sweep backs off and tries again
        except Exception as error:  # one bad job never stops the sweep of the others
            if _fail_unhandled(rows, record, reason, error):
                moved += 1
    return moved


def _fail_unhandled(rows: JobRows, record: JobRecord, reason: str, error: Exception) -> bool:
    """A job that could not be handed on (`error`, from what it holds) fails with that
    reason, fenced on its attempt; True if this call failed it."""
    label = f"job {record.id} ({record.call_repr})"
    events_log.error("%s could not be handed on (%s): %r; failing it", label, reason, error)
    failure = Failure.from_exception(
        AbortedError(f"{label} was interrupted ({reason}) and could not be handed on: {error!r}")
    )
    outcome = Outcome(None, str(failure), failed=True, failure=failure_dict(failure))
    job = Fenced(record, record.dispatcher_uuid or "", label, interrupted=reason)
    try:
        apply(rows.store, job, StoreResult(outcome), {}, rows.clock.now())
    except ReassignedError:
        return False
    except (StoreUnavailable, ConflictError):
        raise
    except Exception as unexpected:
        events_log.critical("%s: cannot fail it either: %r", label, unexpected, exc_info=True)
        return False
    return True


def interrupt(rows: JobRows, record: JobRecord, reason: str) -> None:
    """Ask the job's retry policy what to do with an interrupted active job, and do it."""
    label = f"job {record.id} ({record.call_repr})"
    job = Fenced(record, record.dispatcher_uuid or "", label, interrupted=reason)
    is_callback = record.parent_id is not None
    try:
        policy_cls = load_policy_class(record.retry_policy, is_callback)
    except Exception as error:
        events_log.error("%s: cannot load its retry policy (%r); retrying it", label, error)
        policy_cls = RetryCommonForever
    try:
        policy = policy_cls(record.retry_data, job_label=label)
    except Exception as error:
        raise EncodingError(
            f"its retry policy {record.retry_policy} cannot be built "
            f"({type(error).__name__}: {error}); a RetryPolicy's __init__ must accept "
            f"(data, *, job_label, sleep) and pass them to RetryPolicy.__init__"
        ) from error
    before = int(policy.data.get("interruptions", 0))
    answer = ask(policy.interrupted)
    if int(policy.data.get("interruptions", 0)) == before:
        policy.data["interruptions"] = before + 1  # counted apart from errors, whatever the policy
    now = rows.clock.now()
    failure = Failure.from_exception(
        AbortedError(f"{label} was interrupted ({reason}) and its retry policy gave up")
    )
    decided = decide(
        answer,
        failure,
        now=now,
        deadline=deadline_of(record.begin_after, record.begin_by),
        is_callback=is_callback,
    )
    explain(job, decided)
    if isinstance(decided, Fail):
        outcome = Outcome(
            None, str(failure), failed=True, failure=failure_dict(failure), retry_data=policy.data
        )
        apply(rows.store, job, StoreResult(outcome), policy.data, now)
    else:
        apply(rows.store, job, decided, policy.data, now)
