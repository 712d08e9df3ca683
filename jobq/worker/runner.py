"""Performs one claimed job: the original's `job()` choreography, as small named steps.

start (fenced) -> deadline check -> decode -> [setup -> call -> teardown on failure] with the
retry policy's job_error -> store the outcome (fenced, with the job's own writes when it used
`jobq.local.connection()`) with the policy's commit_error -> teardown -> log. Each outcome is
exactly one store call: store_result, reschedule or wait_on.

The steps after the start are a generator (`_steps`) that yields wherever the call, `setup` or
`teardown` gives an awaitable (an `async def` job). A threaded job never yields and runs to the
end in its agent thread. Otherwise `run` hands the rest to the dispatcher's event loop
(`jobq.worker.aio`) and returns a future that ends with the job: the same steps, fencing,
retry decisions and logs, with no thread waiting on the coroutine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pkgutil import resolve_name
from typing import Any

from jobq.errors import (
    AbortedError,
    ConflictError,
    EncodingError,
    ReassignedError,
    StoreUnavailable,
)
from jobq.errors import TimeoutError as JobTimeout
from jobq.jobs import context
from jobq.jobs.rows import JobRows
from jobq.model.failure import Failure, describe, failure_dict
from jobq.model.job import Job
from jobq.model.retry import Decision, RetryCommonForever, RetryCommonFourTimes, RetryPolicy
from jobq.store.base import AttemptConnection, JobRecord, Outcome, Store
from jobq.worker import stats as worker_stats
from jobq.worker.aio import AsyncRuntime, Steps, is_async_job, resolved, run_to_end
from jobq.worker.settling import Settling

events_log = logging.getLogger("jobq.events")
trace_log = logging.getLogger("jobq.trace")

_MAX_TEXT = 10000


def load_policy_class(path: str | None, is_callback: bool) -> type[RetryPolicy]:
    """The policy class stored for a job (`module:qualname`), or the default for jobs /
    callbacks."""
    if not path:
        return RetryCommonForever if is_callback else RetryCommonFourTimes
    return resolve_name(path)  # type: ignore[no-any-return]


@dataclass
class _Attempt:
    """One run of the callable inside a claim (a claim may run it again on retry-now)."""

    conn: AttemptConnection | None = None

    def connection(self, store: Store) -> Any:
        if self.conn is None:
            self.conn = store.attempt_connection()
        return self.conn.raw

    def rollback(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Runner:
    """Runs claimed jobs for one dispatcher and agent."""

    def __init__(
        self,
        rows: JobRows,
        dispatcher_uuid: str,
        agent_name: str,
        stopping: threading.Event | None = None,
        *,
        aio: AsyncRuntime | None = None,
        owner: Any = None,
    ) -> None:
        self.rows = rows
        self.store = rows.store
        self.owner = owner  # the API's Database, for jobq.local.queue().db
        self.uuid = dispatcher_uuid
        self.agent_name = agent_name
        self.stopping = stopping or threading.Event()
        self.aio = aio  # the dispatcher's event loop; None: awaitables run in the caller
        # Jobs decoded at claim time (to route async ones), kept for their run: (id, attempt).
        self._decoded: dict[tuple[int, int], Job] = {}

    def _sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def now(self) -> dt.datetime:
        return self.rows.clock.now()

    def wants_loop(self, record: JobRecord) -> bool:
        """True for an `async def` job: its steps then start on the event loop's threads
        rather than in an agent thread (a job that cannot be decoded goes to a thread, whose
        runner stores the decoding failure)."""
        try:
            job = self.rows.job(record)
            is_async = is_async_job(job)  # decodes the call: keep it for the run
        except Exception:
            return False
        if len(self._decoded) > 10_000:  # claimed but never run (a stop): don't accumulate
            self._decoded.clear()
        self._decoded[(record.id, record.attempt)] = job
        return is_async

    # -- entry point -------------------------------------------------------------------------
    def run(self, record: JobRecord) -> concurrent.futures.Future[None] | Settling | None:
        """Perform the job. Returns None once it is done; if it awaits, a future that ends
        when it is done (the job then goes on on the dispatcher's event loop); if its outcome
        still commits, a `Settling` settled after the commit."""
        label = f"job {record.id} ({record.call_repr})"
        thread = threading.current_thread().name
        if record.status == "active":
            # Claimed and started in one statement (the dispatcher's claims): the claim was the
            # fenced start, before the job's deadline.
            trace_log.info("starting in thread %s: %s", thread, label)
            return self._drive(self._steps(record, label))
        deadline = _deadline(record)
        if deadline is not None and self.now() > deadline:
            # Never started: it fails without running (and without an active_start).
            error = JobTimeout(f"{label} did not start by its deadline {deadline.isoformat()}")
            outcome = self._failed(Failure.from_exception(error), record.retry_data)
            if self.store.fail_unstarted(record.id, outcome, self.now()):
                self._log_outcome(record, label, outcome)
            else:
                self._lost_before_start(record, label)
            return None
        if not self.store.start(record.id, record.attempt, self.uuid, self.now()):
            self._lost_before_start(record, label)
            return None
        trace_log.info("starting in thread %s: %s", thread, label)
        return self._drive(self._steps(record, label))

    def _drive(self, steps: Steps) -> concurrent.futures.Future[None] | Settling | None:
        """Run `steps` here up to its first awaitable, then hand it to the event loop. Steps
        that end here may return the `Settling` of their outcome still committing (see
        `_store_later`)."""
        context = contextvars.copy_context()  # the job's own: jobq.local, stats' records
        try:
            awaitable = context.run(next, steps)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if self.aio is None:
            run_to_end(steps, awaitable, context)
            return None
        return self.aio.resume(steps, awaitable, context)

    def _steps(self, record: JobRecord, label: str) -> Steps:
        try:
            pending = yield from self._perform(record, label)
            if pending is not None:
                return pending  # type: ignore[no-any-return]
        except ReassignedError as error:
            worker_stats.note_reassigned()
            events_log.error(
                "%s was reassigned; likely cause: this worker could not ping in time (long "
                "commits, a paused process or clock skew). Nothing was written. (%s)",
                label,
                error,
            )
            return
        except asyncio.CancelledError:
            events_log.warning(
                "%s was cancelled: its worker stopped before it finished; nothing was written, "
                "and it is handed on through its retry policy",
                label,
            )
            return
        trace_log.info("completed in thread %s: %s", threading.current_thread().name, label)

    def _lost_before_start(self, record: JobRecord, label: str) -> None:
        current = self.store.get(record.id)
        if current is not None and current.status in ("callbacks", "completed"):
            events_log.error("%s: job already completed? (status %s)", label, current.status)
        else:
            events_log.error(
                "%s was reassigned before it started (status %s); nothing was written",
                label,
                None if current is None else current.status,
            )

    # -- the steps -----------------------------------------------------------------------------
    def _perform(self, record: JobRecord, label: str) -> Steps:
        is_callback = record.parent_id is not None
        deadline = _deadline(record)
        try:
            job = self._decoded.pop((record.id, record.attempt), None)
            if job is None:
                job = self.rows.job(record)
            func, args, kwargs = job.callable, job.args, job.kwargs
            if is_callback:
                assert record.parent_id is not None
                args = (*args, self._parent_result(record.parent_id))
            policy_cls = load_policy_class(record.retry_policy, is_callback)
        except Exception as error:  # tampered payload, missing module, bad policy path
            failure = Failure.from_exception(error)
            events_log.error("%s cannot be decoded: %s", label, failure)
            self._finish(record, label, self._failed(failure, {}), None)
            return
        policy = policy_cls(record.retry_data, job_label=label, sleep=self._sleep)
        while True:
            attempt = _Attempt()
            ctx = context.JobContext(
                job=job,
                queue_name=record.queue,
                owner=self.owner,
                dispatcher_uuid=self.uuid,
                agent_name=self.agent_name,
                connection=lambda a=attempt: a.connection(self.store),  # type: ignore[misc]
                connection_open=lambda a=attempt: a.conn is not None,  # type: ignore[misc]
            )
            token = context.enter(ctx)
            setup_info: Any = None
            value: Any = None
            torn_down = False  # teardown runs once per call: after the abort or the commit
            try:
                setup_info = yield from resolved(job.setup())
                value = yield from resolved(func(*args, **kwargs))
            except (SystemExit, KeyboardInterrupt, ReassignedError, asyncio.CancelledError):
                attempt.rollback()
                yield from self._teardown(job, setup_info, label)
                raise
            except Exception as error:
                attempt.rollback()
                yield from self._teardown(job, setup_info, label)
                torn_down = True
                failure = Failure.from_exception(error)
                decision = self._decide(policy.job_error, failure, error, deadline, is_callback)
                if decision is True:
                    self._check_owner(record)
                    continue
                if isinstance(decision, dt.datetime | dt.timedelta):
                    self._reschedule(record, label, decision, policy)
                    return
                outcome = self._failed(failure, policy.data)
            else:
                if isinstance(value, Job):
                    self._wait_for_inner(record, label, value, policy, attempt)
                    yield from self._teardown(job, setup_info, label)
                    return
                outcome = self._outcome(value, policy.data)
            finally:
                # ValueError only when a suspended generator is closed from another context
                # (collected after its dispatcher stopped): nothing is left to reset then.
                with contextlib.suppress(ValueError):
                    context.leave(token)

            if attempt.conn is None and self._may_store_later(job):
                return self._store_later(  # type: ignore[return-value]
                    record, label, outcome, policy, deadline, is_callback
                )
            # Store the outcome, with the job's own writes if it made any.
            try:
                self.store.store_result(
                    record.id,
                    record.attempt,
                    self.uuid,
                    outcome,
                    self.now(),
                    conn=None if attempt.conn is None else attempt.conn.raw,
                )
                if attempt.conn is not None:
                    attempt.conn.commit()
                    attempt.rollback()
            except ReassignedError:
                attempt.rollback()
                if not torn_down:
                    yield from self._teardown(job, setup_info, label)
                raise
            except Exception as error:
                attempt.rollback()
                if not torn_down:
                    yield from self._teardown(job, setup_info, label)
                commit_failure = Failure.from_exception(error)
                decision = self._decide(
                    policy.commit_error, commit_failure, error, deadline, is_callback
                )
                if decision is True:
                    self._check_owner(record)
                    continue
                if isinstance(decision, dt.datetime | dt.timedelta):
                    self._reschedule(record, label, decision, policy)
                    return
                self._log_obscured(record, label, outcome)
                self._finish(record, label, self._failed(commit_failure, policy.data), None)
                return
            if not torn_down:
                yield from self._teardown(job, setup_info, label)
            self._log_outcome(record, label, outcome)
            return

    def _may_store_later(self, job: Job) -> bool:
        """A job without writes of its own, whose class adds no setup or teardown (which run
        around the commit), can let its thread (or, for an async job, the event loop) go on
        while its outcome commits."""
        cls = type(job)
        return (
            self.aio is not None  # a dispatcher's runner (inline test mode finishes each job)
            and cls.setup is Job.setup
            and cls.teardown is Job.teardown
        )

    def _store_later(
        self,
        record: JobRecord,
        label: str,
        outcome: Outcome,
        policy: RetryPolicy,
        deadline: dt.datetime | None,
        is_callback: bool,
    ) -> Settling:
        """Hand the outcome to the store's group commit and return at once: the thread takes
        its next job while the completion commits. The job stays held (and counted against
        its agent's size) until the returned `Settling` is settled, after the commit. A failed
        commit goes to the retry policy's `commit_error` as in the thread: retried (the job
        is put back to run again, now or later), or its failure becomes the outcome."""
        context = contextvars.copy_context()  # stats' record of this job
        thread = threading.current_thread().name
        done = Settling()

        def settle(error: BaseException | None) -> None:
            try:
                if error is None:
                    self._log_outcome(record, label, outcome)
                    trace_log.info("completed in thread %s: %s", thread, label)
                    return
                if not isinstance(error, ReassignedError):
                    failure = Failure.from_exception(error)
                    decision = self._decide(
                        policy.commit_error, failure, error, deadline, is_callback
                    )
                    if decision is True:
                        decision = dt.timedelta(0)
                    if isinstance(decision, dt.datetime | dt.timedelta):
                        self._reschedule(record, label, decision, policy)
                    else:
                        self._log_obscured(record, label, outcome)
                        self._finish(record, label, self._failed(failure, policy.data), None)
                    return
                raise error
            except ReassignedError as lost:
                worker_stats.note_reassigned()
                events_log.error(
                    "%s was reassigned; likely cause: this worker could not ping in time (long "
                    "commits, a paused process or clock skew). Nothing was written. (%s)",
                    label,
                    lost,
                )
            except Exception as unexpected:  # the job is left to be handed on as interrupted
                events_log.critical(
                    "%s: its outcome could not be stored: %r", label, unexpected, exc_info=True
                )
            finally:
                done.settled()

        self.store.store_result_later(
            record.id,
            record.attempt,
            self.uuid,
            outcome,
            self.now(),
            lambda error: context.run(settle, error),
        )
        return done

    def _decide(
        self,
        hook: Any,
        failure: Failure,
        error: BaseException,
        deadline: dt.datetime | None,
        is_callback: bool,
    ) -> Decision:
        try:
            decision: Decision = hook(failure, error)
        except Exception as policy_error:
            events_log.critical("retry policy failed (%r); not retrying", policy_error)
            return False
        if decision and deadline is not None and self.now() > deadline:
            trace_log.warning("not retrying: the job's begin_by deadline has passed")
            return False
        if is_callback and isinstance(decision, dt.datetime | dt.timedelta):
            events_log.error("cannot reschedule a callback, only retry; retrying now")
            return True
        return decision

    def _check_owner(self, record: JobRecord) -> None:
        if not self.store.owns(record.id, record.attempt, self.uuid):
            raise ReassignedError(f"job {record.id} attempt {record.attempt} was reassigned")

    def _reschedule(
        self,
        record: JobRecord,
        label: str,
        when: dt.datetime | dt.timedelta,
        policy: RetryPolicy,
    ) -> None:
        now = self.now()
        at = now + when if isinstance(when, dt.timedelta) else when
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)  # the original treats a naive reschedule time as UTC
        self.store.reschedule(record.id, record.attempt, self.uuid, at, policy.data, now)
        trace_log.info("%s rescheduled for %s", label, at.isoformat())

    def _wait_for_inner(
        self, record: JobRecord, label: str, inner: Job, policy: RetryPolicy, attempt: _Attempt
    ) -> None:
        # One transaction: the job's own writes, the inner job (if this job made it) and the
        # wait. A crash before it commits leaves nothing, so a re-run cannot duplicate them.
        conn = attempt.connection(self.store)
        try:
            if not inner.stored:
                self.rows.put(record.queue, [inner], conn=conn)
            assert inner.id is not None
            self.store.wait_on(
                record.id, record.attempt, self.uuid, inner.id, policy.data, self.now(), conn=conn
            )
            assert attempt.conn is not None
            attempt.conn.commit()
        finally:
            attempt.rollback()
        trace_log.info("%s waits for the result of job %s", label, inner.id)

    def _finish(self, record: JobRecord, label: str, outcome: Outcome, conn: Any) -> None:
        """Store an outcome that must be stored: retried with backoff until it is (or the job
        is reassigned), as "a failure to commit a failure must commit"."""
        delay = 0.0
        unexpected = 0
        while True:
            try:
                self.store.store_result(
                    record.id, record.attempt, self.uuid, outcome, self.now(), conn=conn
                )
                break
            except ReassignedError:
                raise
            except Exception as error:
                if self.stopping.is_set() and isinstance(error, StoreUnavailable):
                    raise
                if not isinstance(error, StoreUnavailable | ConflictError):
                    unexpected += 1
                    if unexpected >= 5:  # not the database being away: a closed store, a bug
                        events_log.critical(
                            "%s: giving up storing its outcome (%r); the job stays active "
                            "until this dispatcher or a sibling hands it on",
                            label,
                            error,
                        )
                        raise
                events_log.error("%s: storing its outcome failed (%r); retrying", label, error)
                delay = min(60.0, delay + 1.0)
                self._sleep(delay)
        self._log_outcome(record, label, outcome)

    # -- outcomes and logs -----------------------------------------------------------------------
    def _parent_result(self, parent_id: int) -> Any:
        parent = self.store.get(parent_id)
        if parent is None:
            raise AbortedError(f"callback's parent job {parent_id} no longer exists")
        return self.rows.load(parent)

    def _outcome(self, value: Any, retry_data: dict[str, Any]) -> Outcome:
        if isinstance(value, Failure):
            return Outcome(
                None, str(value), failed=True, failure=failure_dict(value), retry_data=retry_data
            )
        try:
            payload = self.rows.codec.dumps(value)
        except Exception as error:
            failure = Failure.from_exception(
                EncodingError(f"result {describe(value)} cannot be stored: {error}")
            )
            return self._failed(failure, retry_data)
        return Outcome(payload, _truncate(describe(value)), retry_data=retry_data)

    def _failed(self, failure: Failure, retry_data: dict[str, Any]) -> Outcome:
        return Outcome(
            None,
            _truncate(failure.traceback or str(failure)),
            failed=True,
            failure=failure_dict(failure),
            retry_data=retry_data,
        )

    def _log_outcome(self, record: JobRecord, label: str, outcome: Outcome) -> None:
        worker_stats.note_outcome(outcome.failed, outcome.result_repr)
        if outcome.failed:
            default = logging.CRITICAL if record.parent_id is not None else logging.ERROR
            level = record.failure_log_level or default
            failure = outcome.failure or {}
            events_log.log(
                level,
                "%s failed with %s: %s\n%s\nLocals:\n%s",
                label,
                failure.get("type_name"),
                failure.get("message"),
                failure.get("traceback", ""),
                failure.get("verbose", ""),
                extra={"job_id": record.id, "queue": record.queue},
            )
        else:
            trace_log.info("%s succeeded with result: %s", label, outcome.result_repr)

    def _log_obscured(self, record: JobRecord, label: str, outcome: Outcome) -> None:
        if outcome.failed:
            level = record.failure_log_level or logging.ERROR
            events_log.log(
                level,
                "Commit failed for %s. Prior to this, job failed with traceback:\n%s",
                label,
                (outcome.failure or {}).get("traceback", ""),
            )
        else:
            events_log.info(
                "Commit failed for %s. Prior to this, job succeeded with result: %s",
                label,
                outcome.result_repr,
            )

    def _teardown(self, job: Job, setup_info: Any, label: str) -> Steps:
        try:
            teardown: Any = job.teardown  # may be an `async def`
            yield from resolved(teardown(setup_info))
        except Exception as error:
            events_log.critical("%s: teardown failed: %r", label, error)


def _deadline(record: JobRecord) -> dt.datetime | None:
    """`begin_after + begin_by`, after which the job may neither start nor be retried."""
    if record.begin_by is None:
        return None
    return record.begin_after + dt.timedelta(seconds=record.begin_by)


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "[...TRUNCATED...]"
