"""Handing on the jobs of a dispatcher that is gone: dead, stopped, or this one restarted.

A claimed job that never started goes back to the front of its queue (original order kept).
An active job goes through its retry policy's `interrupted()`: retry now (front of the queue),
retry at a time, or complete with an `AbortedError` failure that its callbacks receive.
Every write is fenced on the job's (attempt, dispatcher), so when two live dispatchers sweep
the same dead one, each job is handed on exactly once; the loser's write changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from jobq.errors import AbortedError, ReassignedError
from jobq.jobs.rows import JobRows
from jobq.model.failure import Failure, failure_dict
from jobq.model.retry import RetryCommonForever
from jobq.store.base import JobRecord, Outcome
from jobq.worker.runner import load_policy_class

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
    return moved


def interrupt(rows: JobRows, record: JobRecord, reason: str) -> None:
    """Ask the job's retry policy what to do with an interrupted active job, and do it."""
    label = f"job {record.id} ({record.call_repr})"
    is_callback = record.parent_id is not None
    try:
        policy_cls = load_policy_class(record.retry_policy, is_callback)
    except Exception as error:
        events_log.error("%s: cannot load its retry policy (%r); retrying it", label, error)
        policy_cls = RetryCommonForever
    policy = policy_cls(record.retry_data, job_label=label)
    before = int(policy.data.get("interruptions", 0))
    try:
        decision = policy.interrupted()
    except Exception as error:
        events_log.critical("%s: retry policy failed on interruption (%r)", label, error)
        decision = False
    if int(policy.data.get("interruptions", 0)) == before:
        policy.data["interruptions"] = before + 1  # counted apart from errors, whatever the policy
    now = rows.clock.now()
    deadline = (
        None
        if record.begin_by is None
        else record.begin_after + dt.timedelta(seconds=record.begin_by)
    )
    if decision and deadline is not None and now > deadline:
        decision = False
    if is_callback and isinstance(decision, dt.datetime | dt.timedelta):
        events_log.error("%s: cannot reschedule a callback, only retry; retrying now", label)
        decision = True
    uuid = record.dispatcher_uuid or ""
    if decision is True:
        rows.store.reschedule(record.id, record.attempt, uuid, None, policy.data, now)
        events_log.info("%s interrupted (%s): retrying now", label, reason)
    elif isinstance(decision, dt.datetime | dt.timedelta):
        at = now + decision if isinstance(decision, dt.timedelta) else decision
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        rows.store.reschedule(record.id, record.attempt, uuid, at, policy.data, now)
        events_log.info("%s interrupted (%s): retrying at %s", label, reason, at.isoformat())
    else:
        failure = Failure.from_exception(
            AbortedError(f"{label} was interrupted ({reason}) and its retry policy gave up")
        )
        outcome = Outcome(
            None, str(failure), failed=True, failure=failure_dict(failure), retry_data=policy.data
        )
        rows.store.store_result(record.id, record.attempt, uuid, outcome, now)
        level = record.failure_log_level or (logging.CRITICAL if is_callback else logging.ERROR)
        events_log.log(level, "%s interrupted (%s): aborted", label, reason)
