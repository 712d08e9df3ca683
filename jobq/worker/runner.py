"""Performs one claimed job: the original's `job()` choreography, as small named steps.

start (fenced, by the deadline) -> decode -> [set up -> call -> decide] -> store or apply
(fenced, with the job's own writes when it used `jobq.local.connection()`) -> tear down ->
log. A failure goes to the retry policy's job_error, a failed commit to its commit_error;
`decide` (`jobq.model.outcome`) turns either answer into one value and `apply`
(`jobq.worker.outcome`) makes its one store call: store_result, reschedule or wait_on.
Decoding is `jobq.worker.decode`, a run of the call `jobq.worker.attempt`, and the time limits
`jobq.worker.timeouts`.

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
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from jobq.errors import (
    ConflictError,
    JobTimeout,
    OutcomeUnknown,
    ReassignedError,
    StoreUnavailable,
)
from jobq.errors import TimeoutError as DeadlineError
from jobq.jobs import context
from jobq.jobs.rows import JobRows
from jobq.model.failure import Failure, TracebackLocals
from jobq.model.job import Job
from jobq.model.limits import grace_for, limit_of
from jobq.model.outcome import (
    Decided,
    Fail,
    PolicyFailed,
    RetryAt,
    RetryNow,
    ask,
    deadline_of,
    decide,
)
from jobq.model.retry import Decision, RetryPolicy
from jobq.store.base import JobRecord, Outcome
from jobq.worker.aio import AsyncRuntime, Steps, is_async_job, resolved, run_to_end
from jobq.worker.aside import Aside
from jobq.worker.attempt import Attempt
from jobq.worker.decode import IMPORT_RETRIES, Call, Decoder, PutBack, load_policy_class
from jobq.worker.outcome import (
    Fenced,
    JobNotes,
    StoreResult,
    WaitOn,
    apply,
    explain,
    failed_outcome,
    log_obscured,
    log_outcome,
    value_outcome,
    write,
)
from jobq.worker.settling import Settling
from jobq.worker.timeouts import Timeouts, Watched, over_limit, revoke

events_log = logging.getLogger("jobq.events")
trace_log = logging.getLogger("jobq.trace")

# The steps of `_perform` and its parts: yield awaitables, return what the next step needs.
_Part = Generator[Awaitable[Any], Any, Any]


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
        traceback_locals: TracebackLocals | None = None,
        import_retries: int = IMPORT_RETRIES,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.rows = rows
        self.store = rows.store
        self.owner = owner  # the API's Database, for jobq.local.queue().db
        self.uuid = dispatcher_uuid
        self.agent_name = agent_name
        self.stopping = stopping or threading.Event()
        self.aio = aio  # the dispatcher's event loop; None: awaitables run in the caller
        self.traceback_locals = traceback_locals or TracebackLocals()
        self.decoder = Decoder(rows, import_retries=import_retries, sleep=self._sleep)
        self._aside_threads: Aside | None = None
        self._aside_lock = threading.Lock()
        # Called when a job claimed ahead gave its start up to a put-back job (the dispatcher
        # then gives back the others this agent holds unstarted).
        self.on_yield: Callable[[], None] = lambda: None
        # The dispatcher's time limits (None: none enforced, as in inline test mode), and
        # what to tell when a taken-away threaded job goes on running (+1) and ends (-1).
        self.timeouts = timeouts
        self.on_abandon: Callable[[int, int], None] = lambda change, job_id: None

    def _sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def now(self) -> dt.datetime:
        return self.rows.clock.now()

    def wants_loop(self, record: JobRecord) -> bool:
        """True for an `async def` job: its steps then start on the event loop's threads
        rather than in an agent thread (a job that cannot be decoded goes to a thread, whose
        runner stores the decoding failure)."""
        return self.decoder.is_async(record)

    # -- entry point -------------------------------------------------------------------------
    def run(
        self, record: JobRecord, notes: JobNotes | None = None
    ) -> concurrent.futures.Future[None] | Settling | None:
        """Perform the job, noting its outcome in `notes` (its statistics record, if any).
        Returns None once it is done; if it awaits, a future that ends when it is done (the
        job then goes on on the dispatcher's event loop); if its outcome still commits, a
        `Settling` settled after the commit."""
        job = Fenced(record, self.uuid, f"job {record.id} ({record.call_repr})", notes)
        # A job claimed and started in one statement (claimed for a free thread) is active:
        # the claim was its fenced start, before its deadline. One claimed ahead is assigned.
        if record.status != "active" and not self._start(job):
            return None
        trace_log.debug("starting in thread %s: %s", threading.current_thread().name, job.label)
        return self._drive(self._steps(job))

    def _start(self, job: Fenced) -> bool:
        """The fenced start of a job claimed ahead. False if it is not to run: it missed its
        deadline (it fails without running, and without an active_start), a job put back at
        the front of its queue is due first (it is given back as it was, unstarted), or it was
        taken from this worker."""
        record = job.record
        deadline = deadline_of(record.begin_after, record.begin_by)
        if deadline is not None and self.now() > deadline:
            error = DeadlineError(
                f"{job.label} did not start by its deadline {deadline.isoformat()}"
            )
            outcome = failed_outcome(Failure.from_exception(error), record.retry_data)
            if self.store.fail_unstarted(record.id, outcome, self.now()):
                log_outcome(job, outcome)
            else:
                self._lost_before_start(job)
            return False
        if not self.store.start(record.id, record.attempt, self.uuid, self.now()):
            if self.store.release(record.id, record.attempt, self.uuid):
                trace_log.info(
                    "%s given back unstarted: a job put back ahead of it is due", job.label
                )
                self.on_yield()
            else:
                self._lost_before_start(job)
            return False
        return True

    def _drive(self, steps: Steps) -> concurrent.futures.Future[None] | Settling | None:
        """Run `steps` here up to its first awaitable, then hand it to the event loop. Steps
        that end here may return the `Settling` of their outcome still committing (see
        `_store_later`)."""
        context = contextvars.copy_context()  # the job's own, for jobq.local
        try:
            awaitable = context.run(next, steps)
        except StopIteration as stop:
            return stop.value
        if self.aio is None:
            run_to_end(steps, awaitable, context)
            return None
        return self.aio.resume(steps, awaitable, context)

    def _steps(self, job: Fenced) -> Steps:
        watched = None if self.timeouts is None else self._watch(job)
        try:
            pending = yield from self._perform(job)
            if pending is not None:
                return pending  # type: ignore[return-value]
        except ReassignedError as error:
            self._reassigned(job, error)
            return
        except asyncio.CancelledError:
            if watched is not None and watched.guard.taken is not None:
                events_log.warning("%s was cancelled: %s", job.label, watched.guard.taken)
                return
            events_log.warning(
                "%s was cancelled: its worker stopped before it finished; nothing was written, "
                "and it is handed on through its retry policy",
                job.label,
            )
            return
        finally:
            if watched is not None:
                self._unwatch(watched)
        trace_log.debug("completed in thread %s: %s", threading.current_thread().name, job.label)

    # -- time limits (jobq.worker.timeouts) ------------------------------------------------------
    def _watch(self, job: Fenced) -> Watched | None:
        """Register the job's run with the dispatcher's time limits, if it has a limit."""
        assert self.timeouts is not None
        limit = limit_of(job.record.retry_data, self.timeouts.job_timeout)
        if limit is None:
            return None
        watched = Watched(
            job,
            limit,
            grace_for(limit, self.timeouts.grace),
            self.take_away,
            revoke,
        )
        job.watched = watched
        return self.timeouts.watch(watched)

    def _unwatch(self, watched: Watched) -> None:
        assert self.timeouts is not None
        self.timeouts.forget(watched)
        if watched.taken and not watched.is_async:
            self.on_abandon(-1, watched.job.record.id)
            events_log.warning(
                "%s: the run taken away after its time limit has ended (its thread is free)",
                watched.job.label,
            )

    def take_away(self, watched: Watched) -> bool:
        """On the time limits' thread, once revoked: write the timeout of a job past its limit
        and grace through its retry policy, fenced, and cancel an async job. False if the job
        had ended meanwhile."""
        job: Fenced = watched.job
        record = job.record
        revoke(watched)
        policy: RetryPolicy | None = watched.policy
        if policy is None:  # not called yet (decoding): its saved policy decides
            policy = load_policy_class(record.retry_policy, record.parent_id is not None)(
                record.retry_data, job_label=job.label, sleep=self._sleep
            )
        error = JobTimeout(
            f"{job.label} ran past its time limit of {watched.limit:g} s and did not end within "
            f"its {watched.grace:g} s grace period once its stop was requested; its attempt "
            f"was taken away"
        )
        failure = Failure.from_exception(error)
        decided = self._decide(job, ask(policy.job_error, failure, error), failure)
        now = self.now()
        try:
            if isinstance(decided, Fail):
                outcome = failed_outcome(decided.failure, policy.data)
                write(self.store, job, StoreResult(outcome), policy.data, now)
                log_outcome(job, outcome)
            else:
                apply(self.store, job, decided, policy.data, now)
        except ReassignedError:
            return False  # it ended (or was handed on) just before
        finally:
            if watched.is_async and self.aio is not None and watched.context is not None:
                running = watched.context
                self.aio.cancel_where(lambda ctx: ctx.get(context.CURRENT) is running)
        if not watched.is_async:
            self.on_abandon(1, record.id)
        events_log.error("%s: %s", job.label, watched.guard.taken)
        return True

    def _lost_before_start(self, job: Fenced) -> None:
        current = self.store.get(job.record.id)
        if current is not None and current.status in ("callbacks", "completed"):
            events_log.error("%s: job already completed? (status %s)", job.label, current.status)
        else:
            events_log.error(
                "%s was reassigned before it started (status %s); nothing was written",
                job.label,
                None if current is None else current.status,
            )

    def _reassigned(self, job: Fenced, error: ReassignedError) -> None:
        if job.notes is not None:
            job.notes.note_reassigned()
        if job.watched is not None and job.watched.guard.taken is not None:
            events_log.error(
                "%s ended after its attempt was taken away; nothing it wrote was kept (%s)",
                job.label,
                error,
            )
            return
        events_log.error(
            "%s was reassigned; likely cause: this worker could not ping in time (long "
            "commits, a paused process or clock skew). Nothing was written. (%s)",
            job.label,
            error,
        )

    # -- the steps -----------------------------------------------------------------------------
    def _perform(self, job: Fenced) -> Generator[Awaitable[Any], Any, Settling | None]:
        """decode -> [set up -> call -> decide] -> store or apply -> tear down -> log, from the
        set-up again while the policy retries in this claim. Returns the `Settling` of an
        outcome handed to the group commit."""
        call = self._decode(job)
        if call is None:
            return None
        while True:
            attempt = Attempt()
            ended = yield from self._call(job, call, attempt)
            if ended is None:  # it waits on an inner job: stored, torn down and logged
                return None
            if isinstance(ended, RetryNow):
                self._check_owner(job)
                continue
            if isinstance(ended, RetryAt):
                apply(self.store, job, ended, call.policy.data, self.now())
                return None
            outcome = (
                failed_outcome(ended.failure, call.policy.data)
                if isinstance(ended, Fail)
                else ended
            )
            if attempt.conn is None and self._may_store_later(call.job):
                return self._store_later(job, call, outcome)
            again = yield from self._store(job, call, attempt, outcome)
            if not again:
                return None

    def _decode(self, job: Fenced) -> Call | None:
        """The job's call and retry policy (`jobq.worker.decode`); None if it cannot run here,
        once it is put back for a worker that can or failed with the reason."""
        decoded = self.decoder.decode(job.record, job.label, self.now())
        if isinstance(decoded, Call):
            return decoded
        if isinstance(decoded, PutBack):
            now = self.now()
            apply(self.store, job, RetryAt(decoded.due), decoded.retry_data, now)
        else:
            self._finish(job, failed_outcome(decoded.failure, decoded.retry_data))
        return None

    def _call(self, job: Fenced, call: Call, attempt: Attempt) -> _Part:
        """Set up and call the job in its context (`jobq.local`). Returns the outcome to
        store; or, if it raised (rolled back and torn down), what its policy's job_error
        decided; or None for a returned Job, once it is waited on."""
        watched: Watched | None = job.watched
        if watched is not None:
            watched.guard.check()  # taken away before its call (or between two runs)
            if watched.attempt is not None:  # the policy retries it now: a new run, timed anew
                watched.restart()
            attempt.guard = watched.guard
            attempt.lock = threading.Lock()
            watched.attempt = attempt
            watched.policy = call.policy
            watched.is_async = self.aio is not None and is_async_job(call.job)
        token = context.enter(self._context(job, call, attempt))
        try:
            try:
                attempt.setup_info = yield from resolved(call.job.setup())
                value = yield from resolved(call.func(*call.args, **call.kwargs))
                attempt.write_kept(self.store)  # its puts, callbacks...: they fail it if refused
            except (SystemExit, KeyboardInterrupt, ReassignedError, asyncio.CancelledError):
                attempt.rollback()
                yield from self._teardown(job, call, attempt)
                raise
            except Exception as error:
                attempt.rollback()
                yield from self._teardown(job, call, attempt)
                over = over_limit(job.watched, job.label)
                if over is not None:
                    over.__cause__ = error
                    error = over
                failure = self.traceback_locals.capture(error)
                return self._decide(job, ask(call.policy.job_error, failure, error), failure)
            if watched is not None:
                over = over_limit(job.watched, job.label)
                if over is not None:  # it ended when asked to stop: its timeout, not its value
                    attempt.rollback()
                    yield from self._teardown(job, call, attempt)
                    failure = Failure.from_exception(over)
                    return self._decide(job, ask(call.policy.job_error, failure, over), failure)
            if isinstance(value, Job):
                self._wait_for_inner(job, call, attempt, value)
                yield from self._teardown(job, call, attempt)
                return None
            return value_outcome(self.rows.codec, value, call.policy.data)
        finally:
            # ValueError only when a suspended generator is closed from another context
            # (collected after its dispatcher stopped): nothing is left to reset then.
            with contextlib.suppress(ValueError):
                context.leave(token)

    def _context(self, job: Fenced, call: Call, attempt: Attempt) -> context.JobContext:
        ctx = context.JobContext(
            job=call.job,
            queue_name=job.record.queue,
            owner=self.owner,
            dispatcher_uuid=self.uuid,
            agent_name=self.agent_name,
            connection=lambda: attempt.connection(self.store),
            connection_open=lambda: attempt.conn is not None,
            writes=attempt.writes,
            guard=attempt.guard,
        )
        if job.watched is not None:
            job.watched.context = ctx
        return ctx

    def _store(self, job: Fenced, call: Call, attempt: Attempt, outcome: Outcome) -> _Part:
        """Store the outcome with the job's own writes, if it made any, then tear down and
        log. Returns True if the commit failed and the policy retries in this claim."""
        try:
            write(
                self.store,
                job,
                StoreResult(outcome),
                outcome.retry_data,
                self.now(),
                conn=attempt.conn,
            )
            attempt.rollback()  # committed: closes it
        except ReassignedError:
            attempt.rollback()
            yield from self._teardown(job, call, attempt)
            raise
        except Exception as error:
            attempt.rollback()
            yield from self._teardown(job, call, attempt)
            return self._commit_failed(job, call, outcome, error, in_claim=True)
        yield from self._teardown(job, call, attempt)
        log_outcome(job, outcome)
        return False

    def _commit_failed(
        self, job: Fenced, call: Call, outcome: Outcome, error: BaseException, *, in_claim: bool
    ) -> bool:
        """Storing `outcome` raised `error`: apply what the policy's commit_error decides.
        Returns True to run the job again in this claim (`in_claim`; otherwise a retry puts
        it back in its queue). Given up, the commit's failure is stored in its place.
        A commit whose reply was lost (`OutcomeUnknown`) is first looked up: if it went
        through, the job is done, and nothing claims otherwise."""
        if isinstance(error, OutcomeUnknown) and self._committed_after_all(job, outcome):
            return False
        failure = Failure.from_exception(error)
        decided = self._decide(job, ask(call.policy.commit_error, failure, error), failure)
        if isinstance(decided, RetryNow) and in_claim:
            self._check_owner(job)
            return True
        if isinstance(decided, Fail):
            log_obscured(job, outcome)
            self._finish(job, failed_outcome(decided.failure, call.policy.data))
        else:
            apply(self.store, job, decided, call.policy.data, self.now())
        return False

    def _committed_after_all(self, job: Fenced, outcome: Outcome) -> bool:
        """True if the job's row shows this attempt's outcome stored (its commit went
        through, only the reply was lost); False if not, or if that cannot be read now."""
        try:
            current = self.store.get(job.record.id)
        except StoreUnavailable:
            return False
        if (
            current is None
            or current.attempt != job.record.attempt
            or current.dispatcher_uuid != job.dispatcher
            or current.status not in ("callbacks", "completed")
        ):
            return False
        events_log.warning(
            "%s: the reply to its commit was lost, but the commit went through", job.label
        )
        log_outcome(job, outcome)
        return True

    def _decide(self, job: Fenced, answer: Decision | PolicyFailed, failure: Failure) -> Decided:
        """What `answer` (to the job's failure) means now, and the log line of any rule that
        changed it."""
        record = job.record
        decided = decide(
            answer,
            failure,
            now=self.now(),
            deadline=deadline_of(record.begin_after, record.begin_by),
            is_callback=record.parent_id is not None,
        )
        explain(job, decided)
        return decided

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

    def _store_later(self, job: Fenced, call: Call, outcome: Outcome) -> Settling:
        """Hand the outcome to the store's group commit and return at once: the thread takes
        its next job while the completion commits. The job stays held (and counted against
        its agent's size) until the returned `Settling` is settled, after the commit. A failed
        commit goes to the retry policy's `commit_error` as in the thread, with the same
        counts (saved with the job) and backoff, on a thread set aside (`jobq.worker.aside`):
        retried (the job is put back to run again, now or later), or its failure becomes the
        outcome."""
        thread = threading.current_thread().name
        done = Settling()

        def settle(error: BaseException | None) -> None:
            if error is not None and not isinstance(error, ReassignedError):
                # Told on the group commit's thread: the policy may back off before it
                # answers, which must not hold the other jobs' outcomes (`jobq.worker.aside`).
                self._aside().submit(finish, error)
            else:
                finish(error)

        def finish(error: BaseException | None) -> None:
            try:
                if error is None:
                    log_outcome(job, outcome)
                    trace_log.debug("completed in thread %s: %s", thread, job.label)
                elif isinstance(error, ReassignedError):
                    self._reassigned(job, error)
                else:
                    self._commit_failed(job, call, outcome, error, in_claim=False)
            except ReassignedError as lost:
                self._reassigned(job, lost)
            except Exception as unexpected:  # the job is left to be handed on as interrupted
                events_log.critical(
                    "%s: its outcome could not be stored: %r", job.label, unexpected, exc_info=True
                )
            finally:
                done.settled()

        record = job.record
        self.store.store_result_later(
            record.id, record.attempt, self.uuid, outcome, self.now(), settle
        )
        return done

    def _aside(self) -> Aside:
        """The threads where failed group commits go to their retry policy (started on the
        first)."""
        with self._aside_lock:
            if self._aside_threads is None:
                self._aside_threads = Aside(f"jobq-commit-retry-{self.agent_name}")
            return self._aside_threads

    def _check_owner(self, job: Fenced) -> None:
        record = job.record
        if not self.store.owns(record.id, record.attempt, self.uuid):
            raise ReassignedError(f"job {record.id} attempt {record.attempt} was reassigned")

    def _wait_for_inner(self, job: Fenced, call: Call, attempt: Attempt, inner: Job) -> None:
        # One transaction: the job's own writes, the inner job (if this job made it) and the
        # wait. A crash before it commits leaves nothing, so a re-run cannot duplicate them.
        conn = attempt.connection(self.store)
        try:
            if not inner.stored:
                self.rows.put(job.record.queue, [inner], conn=conn)
            assert inner.id is not None
            apply(
                self.store, job, WaitOn(inner.id), call.policy.data, self.now(), conn=attempt.conn
            )
        finally:
            attempt.rollback()

    def _finish(self, job: Fenced, outcome: Outcome) -> None:
        """Store an outcome that must be stored: retried with backoff until it is (or the job
        is reassigned), as "a failure to commit a failure must commit"."""
        delay = 0.0
        unexpected = 0
        while True:
            try:
                write(self.store, job, StoreResult(outcome), outcome.retry_data, self.now())
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
                            job.label,
                            error,
                        )
                        raise
                events_log.error("%s: storing its outcome failed (%r); retrying", job.label, error)
                delay = min(60.0, delay + 1.0)
                self._sleep(delay)
        log_outcome(job, outcome)

    # -- outcomes --------------------------------------------------------------------------------
    def _teardown(self, job: Fenced, call: Call, attempt: Attempt) -> _Part:
        """The job's teardown, once per run of its call; its failure is logged, not raised."""
        if attempt.torn_down:
            return
        attempt.torn_down = True
        try:
            teardown: Any = call.job.teardown  # may be an `async def`
            yield from resolved(teardown(attempt.setup_info))
        except Exception as error:
            events_log.critical("%s: teardown failed: %r", job.label, error)
