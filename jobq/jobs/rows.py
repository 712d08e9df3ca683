"""`JobRows`: turns `Job`s into rows and rows into `Job` handles.

It encodes a job's call (signed by the codec), puts jobs in a queue (or in a caller's open
transaction), rebuilds a handle from a row, and serves every stored handle: refresh, result,
failing before start, callbacks and annotations. `jobq.Database`, `Queue` and the worker all
put and load jobs through it, so a job's row is written and read in this one place.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pkgutil import resolve_name
from typing import TYPE_CHECKING, Any, overload

from jobq.errors import (
    BadStatusError,
    CancelledError,
    EncodingError,
    JobExpired,
    JobNotFound,
    OutcomeUnknown,
    PutOutcomeUnknown,
)
from jobq.errors import TimeoutError as JobTimeout
from jobq.jobs.context import JobContext, current_dispatcher_uuid, running_in
from jobq.model.codec import Codec, call_context, call_repr, encode_call
from jobq.model.compose import PART_OF_KEY
from jobq.model.failure import Failure, failure_dict
from jobq.model.job import CompositeBackend, Job, Status
from jobq.model.retry import RetryPolicy, policy_path
from jobq.model.unique import Unique
from jobq.store.base import JobRecord, NewJob, Outcome, Store

if TYPE_CHECKING:
    from jobq._clock import Clock

events_log = logging.getLogger("jobq.events")

AfterPut = Callable[[str, list[Job], bool], None]
"""Called as (queue name, jobs, committed) after each put and each callback added."""


class JobRows:
    """The jobs of one database as `Job` handles, over its store, codec and clock."""

    def __init__(self, store: Store, codec: Codec, clock: Clock) -> None:
        self.store = store
        self.codec = codec
        self.clock = clock
        # jobq.testing's inline mode runs what each put made due; None (the default) costs
        # nothing.
        self.after_put: AfterPut | None = None
        self._composition: CompositeBackend | None = None

    @property
    def composition(self) -> CompositeBackend:
        """The composite operations of these jobs (`jobq.jobs.compose.Composition`)."""
        if self._composition is None:
            raise RuntimeError("JobRows has no composition: build it with jobq.connect()")
        return self._composition

    @composition.setter
    def composition(self, composition: CompositeBackend) -> None:
        self._composition = composition

    # -- rows to handles -------------------------------------------------------------------------
    def job(self, record: JobRecord) -> Job:
        """A handle on the job of `record`; its call is decoded on first use."""
        cls: type[Job] = Job
        if record.job_class:
            try:
                found = resolve_name(record.job_class)
                if isinstance(found, type) and issubclass(found, Job):
                    cls = found
            except (ImportError, AttributeError, ValueError):
                events_log.warning(
                    "job %s: cannot import its class %s", record.id, record.job_class
                )
        job = cls.__new__(cls)
        Job.__init__(job, _placeholder)
        job._call = None
        job._payload = record.call
        job._decode = self._call_decoder(record)
        job._take_row(record, self)
        return job

    def _call_decoder(self, record: JobRecord) -> Callable[[bytes], Any]:
        """Decodes the call of `record`'s row, verified with the columns it was put with."""
        return functools.partial(
            self.codec.loads, context=call_context(record.job_class, record.retry_policy)
        )

    def get_job(self, job_id: int) -> Job:
        """The job with this id; JobNotFound if there is none."""
        record = self.store.get(int(job_id))
        if record is None:
            raise missing_job(self.store, int(job_id))
        return self.job(record)

    def load(self, record: JobRecord) -> Any:
        """The decoded result of a completed job's row (its Failure if it failed)."""
        if record.failed:
            return self.job(record).failure
        payload = self.store.get_result(record.id)
        return None if payload is None else self.codec.loads(payload)

    # -- handles to rows -------------------------------------------------------------------------
    def encode(
        self,
        queue: str,
        job: Job,
        begin_after: dt.datetime,
        begin_by: dt.timedelta | None,
        policy: str | None,
        failure_log_level: int | None,
        put_by: str | None,
        parent_id: int | None = None,
        retry_data: dict[str, Any] | None = None,
        priority: int = 0,
        keep_result: float | None = None,
    ) -> NewJob:
        """The row of a new job, given what a batch works out once for all of its jobs: the
        retry policy's import path (and its settings, `retry_data`), the putting dispatcher
        and `keep_result` (seconds)."""
        func, args, kwargs = job._get_call()
        job_class = None
        if type(job) is not Job:
            cls = type(job)
            if "<locals>" in cls.__qualname__:
                raise EncodingError(
                    f"Job subclass {cls.__qualname__} must be defined at module level"
                )
            job_class = f"{cls.__module__}:{cls.__qualname__}"
        return NewJob(
            queue=queue,
            call=encode_call(self.codec, func, args, kwargs, call_context(job_class, policy)),
            call_repr=call_repr(func, args, kwargs),
            begin_after=begin_after,
            begin_by=None if begin_by is None else begin_by.total_seconds(),
            job_class=job_class,
            retry_policy=policy,
            failure_log_level=failure_log_level,
            put_by=put_by,
            parent_id=parent_id,
            retry_data=retry_data,
            priority=priority,
            keep_result=keep_result,
        )

    def encode_new(
        self,
        queue: str,
        job: Job,
        begin_after: dt.datetime,
        *,
        retry_policy: type[RetryPolicy] | None = None,
        failure_log_level: int | None = None,
        parent_id: int | None = None,
        priority: int = 0,
    ) -> NewJob:
        """The row of one new job put from here (inside a job: by its dispatcher)."""
        return self.encode(
            queue,
            job,
            begin_after,
            None,
            None if retry_policy is None else policy_path(retry_policy),
            failure_log_level,
            current_dispatcher_uuid(),
            parent_id,
            priority=priority,
        )

    def put(
        self,
        queue: str,
        jobs: list[Job],
        *,
        begin_after: dt.datetime | None = None,
        begin_by: dt.timedelta | None = None,
        retry_policy: type[RetryPolicy] | None = None,
        failure_log_level: int | None = None,
        conn: Any = None,
        quota_names: tuple[str, ...] | None = None,
        retry_data: dict[str, Any] | None = None,
        rate_limits: tuple[str, ...] | None = None,
        unique: Unique | None = None,
        priority: int | None = None,
        keep_result: dt.timedelta | None = None,
    ) -> list[Job]:
        """Store `jobs` (checked by `Queue.put_many`) as pending jobs of `queue`, all or none:
        new ones are inserted, pulled ("new") ones put again. With `conn`, inside that open
        transaction; without, inside a running job of this database, in its attempt's (see
        `_joining`). `retry_data`: the retry policy's settings, saved with each new job.
        `priority` (checked): every job's, else each job's own `priority`."""
        now = self.clock.now()
        ctx = running_in(self) if conn is None else None
        fresh: list[Job] = []
        stored: list[Job] = []
        for job in jobs:
            if ctx is not None and ctx.writes.holds(job):
                raise ValueError(f"{job!r} was put already by this job")
            (fresh if job.id is None else stored).append(job)
        policy = None if retry_policy is None else policy_path(retry_policy)
        put_by = current_dispatcher_uuid()
        keyed = unique is not None
        rows = self._encoded(
            queue,
            fresh,
            now,
            begin_after,
            begin_by,
            policy,
            failure_log_level,
            put_by,
            quota_names,
            retry_data,
            rate_limits,
            unique,
            priority,
            None if keep_result is None else keep_result.total_seconds(),
        )

        def write_rows(conn: Any) -> list[tuple[int, str]]:
            return self._write_put(
                queue, rows, stored, begin_after, begin_by, now, conn, quota_names, put_by,
                rate_limits, keyed, priority,
            )  # fmt: skip

        if ctx is not None and not ctx.connection_open():
            rows = list(rows)  # encoded now: a job that cannot be stored fails at its put

            def write(conn: Any) -> None:
                ids = write_rows(conn)
                for job, job_id in zip(fresh, ids, strict=True):
                    job.id, job.put_outcome = job_id

            ctx.writes.add(write, *fresh)
            for job, row in zip(fresh, rows, strict=True):
                self._show_put(job, None, row, queue, now, begin_by, policy, failure_log_level)
            if self.after_put is not None:
                self.after_put(queue, jobs, False)
            return jobs
        if ctx is not None:
            conn = ctx.connection()
        try:
            if stored and conn is None:
                # Requeueing may find a job already taken: insert and requeue in one
                # transaction, so that put_many stores all of its jobs or none.
                own = self.store.attempt_connection()
                try:
                    ids = write_rows(own.raw)
                    own.commit()
                finally:
                    own.close()
            else:
                ids = write_rows(conn)
        except OutcomeUnknown as error:
            raise PutOutcomeUnknown(
                f"the commit of a put of {len(jobs)} job(s) in queue {queue!r} was in flight "
                f"when the connection was lost: they may or may not be stored. "
                + (
                    "Retrying the same put (same unique_key) makes no second job. "
                    if keyed
                    else "Retrying may make duplicates; a put with unique_key= is safe to retry. "
                )
                + f"({error})"
            ) from error
        for job, row, (job_id, outcome) in zip(fresh, rows, ids, strict=True):
            self._show_put(job, job_id, row, queue, now, begin_by, policy, failure_log_level)
            if retry_data:
                job.retry_data = dict(retry_data)
            if outcome != "created":  # the handle is the key's holder's, as it is now
                self._show_holder(job, job_id, outcome, conn)
        if conn is None:
            for job in stored:
                job.refresh()
            events_log.debug("put %d job(s) in queue %r", len(jobs), queue)
        if self.after_put is not None:
            self.after_put(queue, jobs, conn is None)
        return jobs

    def _encoded(
        self,
        queue: str,
        fresh: list[Job],
        now: dt.datetime,
        begin_after: dt.datetime | None,
        begin_by: dt.timedelta | None,
        policy: str | None,
        failure_log_level: int | None,
        put_by: str | None,
        quota_names: tuple[str, ...] | None,
        retry_data: dict[str, Any] | None = None,
        rate_limits: tuple[str, ...] | None = None,
        unique: Unique | None = None,
        priority: int | None = None,
        keep_result: float | None = None,
    ) -> Sequence[NewJob]:
        """The rows of the new jobs of a put: a single row encoded at once, a batch lazily
        (see _EncodedRows)."""

        def row_of(job: Job) -> NewJob:
            try:
                row = self.encode(
                    queue,
                    job,
                    begin_after or job.begin_after or now,
                    begin_by if begin_by is not None else job.begin_by,
                    policy,
                    failure_log_level,
                    put_by,
                    retry_data=retry_data,
                    priority=job.priority if priority is None else priority,
                    keep_result=keep_result,
                )
                if quota_names:  # checked by Queue.put_many against the queue's quotas
                    row.quota_names = quota_names
                if rate_limits:  # checked by Queue.put_many against the queue's rate limits
                    row.rate_limits = rate_limits
                if unique is not None and (key := unique.key_of(job)) is not None:
                    row.unique_key = key
                    row.unique_while = unique.while_
                    row.unique_for = unique.for_seconds
                    row.replace = unique.replace
                return row
            except StopIteration as error:  # as a generator would: `map` would end quietly
                raise RuntimeError(f"StopIteration raised while encoding {job!r}") from error

        rows = map(row_of, fresh)
        return list(rows) if len(fresh) < 2 else _EncodedRows(len(fresh), rows)

    def _show_put(
        self,
        job: Job,
        job_id: int | None,
        row: NewJob,
        queue: str,
        now: dt.datetime,
        begin_by: dt.timedelta | None,
        policy: str | None,
        failure_log_level: int | None,
    ) -> None:
        """Make a new job's handle show the row just put, without reading it back (its id is
        None while the put waits for the running job's transaction)."""
        job.id = job_id
        job.queue_name = queue
        job.status = Status.PENDING
        job.begin_after = row.begin_after
        if begin_by is not None:
            job.begin_by = begin_by
        job.created = now
        job.call_repr = row.call_repr
        job.failure_log_level = failure_log_level
        job.retry_policy = policy
        job.unique_key = row.unique_key
        job.put_outcome = "created"
        job.priority = row.priority
        job.keep_result = None if row.keep_result is None else dt.timedelta(seconds=row.keep_result)
        job._backend = self

    def _show_holder(self, job: Job, job_id: int, outcome: str, conn: Any) -> None:
        """Make the handle of a put that found its key held show the holder's row (read
        after the put; in a caller's transaction, where it may not be visible yet, the
        handle keeps the put's own fields with the holder's id)."""
        record = self.store.get(job_id) if conn is None else None
        if record is not None:
            job._call, job._payload, job._decode = None, record.call, self._call_decoder(record)
            job._take_row(record, self)
        job.put_outcome = outcome

    def _write_put(
        self,
        queue: str,
        rows: Sequence[NewJob],
        stored: list[Job],
        begin_after: dt.datetime | None,
        begin_by: dt.timedelta | None,
        now: dt.datetime,
        conn: Any,
        quota_names: tuple[str, ...] | None,
        put_by: str | None,
        rate_limits: tuple[str, ...] | None,
        keyed: bool,
        priority: int | None,
    ) -> list[tuple[int, str]]:
        """Insert `rows`, requeue `stored`: the rows' (id, outcome), in order."""
        if not rows:
            ids: list[tuple[int, str]] = []
        elif keyed:  # some rows may carry a unique key
            ids = self.store.enqueue_unique(rows, now, conn=conn)
        else:
            ids = [(i, "created") for i in self.store.enqueue(rows, now, conn=conn)]
        for job in stored:
            assert job.id is not None
            when = begin_after or job.begin_after or now
            by = begin_by if begin_by is not None else job.begin_by
            ok = self.store.requeue(
                job.id,
                queue,
                when,
                None if by is None else by.total_seconds(),
                put_by,
                now,
                conn=conn,
                quota_names=quota_names,
                rate_limits=rate_limits,
                priority=job.priority if priority is None else priority,
            )
            if not ok:
                raise ValueError(
                    f"cannot add already-assigned job {job.id}: it is no longer new "
                    f"(pull it from its queue first, or put a new Job)"
                )
        return ids

    # -- what a stored handle calls (model.job.JobBackend) --------------------------------------
    def refresh_job(self, job: Job) -> None:
        if job.id is None:
            raise BadStatusError(
                f"{job!r} is not stored yet: what a running job puts is stored when the job "
                f"commits (with its result)"
            )
        record = self.store.get(job.id)
        if record is None:
            raise missing_job(self.store, job.id)
        job._take_row(record, self)

    def load_result(self, job: Job) -> Any:
        assert job.id is not None
        try:
            payload = self.store.get_result(job.id)
        except JobNotFound:
            raise missing_job(self.store, job.id) from None
        return None if payload is None else self.codec.loads(payload)

    def fail_job(self, job: Job, exc: BaseException | None) -> None:
        assert job.id is not None
        error = exc if exc is not None else JobTimeout(f"job {job.id} was failed before it started")
        failure = Failure.from_exception(error)
        outcome = Outcome(
            result=None, result_repr=str(failure), failed=True, failure=failure_dict(failure)
        )
        if not self.store.fail_unstarted(job.id, outcome, self.clock.now()):
            job.refresh()
            raise BadStatusError(
                f"can only call fail on a job with new, pending, or assigned status; "
                f"job {job.id} is {job.status}"
            )
        if isinstance(error, CancelledError):  # deliberate: not an error of the job
            events_log.info("job %s cancelled", job.id)
        else:
            level = job.failure_log_level or logging.ERROR
            events_log.log(level, "job %s failed before it started: %s", job.id, failure)
        job.refresh()

    def add_callback(
        self,
        job: Job,
        callback: Job,
        *,
        failure_log_level: int | None,
        retry_policy: type[RetryPolicy] | None,
    ) -> Job:
        if callback.stored:
            raise ValueError(f"{callback!r} is already stored; a callback must be a new Job")
        ctx = running_in(self)
        if ctx is not None and ctx.writes.holds(callback):
            raise ValueError(f"{callback!r} was put already by this job; pass a new Job")
        now = self.clock.now()
        row = self.encode_new(
            job.queue_name or "",
            callback,
            now,
            retry_policy=retry_policy,
            failure_log_level=logging.CRITICAL if failure_log_level is None else failure_log_level,
            parent_id=job.id,
            priority=job.priority,  # callbacks inherit their job's: its result's follow-up
        )
        callback._backend = self
        if ctx is not None:  # in the running job's transaction (written with it, or now)

            def write(conn: Any) -> None:
                assert job.id is not None
                callback.id = self._insert_callback(job, row, now, conn)

            self._joining(ctx, write, callback)
            callback.queue_name = job.queue_name
            callback.parent_id = job.id
            callback.status = Status.NEW
            if self.after_put is not None:
                self.after_put(callback.queue_name or "", [callback], False)
            return callback
        assert job.id is not None
        callback.id = self._insert_callback(job, row, now, None)
        callback.refresh()
        if self.after_put is not None:
            self.after_put(callback.queue_name or "", [callback], True)
        return callback

    def _insert_callback(self, job: Job, row: NewJob, now: dt.datetime, conn: Any) -> int:
        """Store a callback of `job`; the callback of a composite's part goes through the
        composition, which then waits for it too (it may add parts)."""
        assert job.id is not None
        part_of = job.annotations.get(PART_OF_KEY)
        if part_of is not None:
            return self.composition.add_part_callback(int(part_of), job.id, row, now, conn)
        return self.store.add_callback(job.id, row, now, conn=conn)

    def _joining(self, ctx: JobContext, write: Callable[[Any], None], *made: Job) -> None:
        """Do `write` in the running job's attempt transaction: now if the job has opened it,
        else kept, to be written when it does or with the job's outcome. (Written now in a
        transaction of its own, it would be seen before the job commits, and on SQLite wait
        for the write lock the job's own transaction may hold.)"""
        if ctx.connection_open():  # opening it wrote what was kept: nothing is held now
            write(ctx.connection())
        else:
            ctx.writes.add(write, *made)

    def callbacks(self, job: Job) -> list[Job]:
        if job.id is None:
            raise BadStatusError(
                f"{job!r} is not stored yet: what a running job adds is stored when the job "
                f"commits (with its result)"
            )
        return [self.job(record) for record in self.store.job_children(job.id)]

    def wait_for_change(self, job: Job, timeout: float) -> None:
        time.sleep(max(0.0, timeout))

    def set_annotation(self, job: Job, name: str, value: Any) -> None:
        """Write one annotation (JSON already checked) in its own short transaction; inside a
        running job of this database, in the job's attempt transaction."""
        ctx = running_in(self)
        if ctx is None:
            assert job.id is not None
            self.store.set_annotation(job.id, name, value)
            return

        def write(conn: Any) -> None:
            assert job.id is not None
            self.store.set_annotation(job.id, name, value, conn=conn)

        self._joining(ctx, write)

    def set_live_annotation(self, job: Job, name: str, value: Any) -> None:
        """Write one annotation now, in its own short transaction, even inside a running job
        (`jobq.local.set_live_annotation`): others see it at once. On SQLite, once the
        running job holds its attempt transaction (and so the database's write lock), it
        joins that transaction instead: a second writer would wait for the job itself."""
        assert job.id is not None
        ctx = running_in(self)
        if ctx is not None and ctx.connection_open() and self.store.engine == "sqlite":
            self.store.set_annotation(job.id, name, value, conn=ctx.connection())
            return
        self.store.set_annotation(job.id, name, value)

    def read_annotations(self, job: Job) -> dict[str, Any]:
        """The job's annotations as stored now (the handle's snapshot is left alone)."""
        assert job.id is not None
        record = self.store.get(job.id)
        if record is None:
            raise missing_job(self.store, job.id)
        return record.annotations


def missing_job(store: Store, job_id: int) -> JobNotFound:
    """The error for a job id with no row, saying why: expired at its keep_result (while
    retention keeps the record of it), pruned or rolled back (an id issued already), or
    never issued."""
    expired = store.expired_job(job_id)
    if expired is not None:
        return JobExpired(
            job_id,
            completed_at=expired.completed_at,
            expires_at=expired.expires_at,
            pruned_at=expired.pruned_at,
            keep_result=dt.timedelta(seconds=expired.keep_result),
        )
    last = store.last_job_id()
    if last is not None and 0 < job_id <= last:
        return JobNotFound(
            f"job {job_id} no longer exists: it was pruned (completed jobs are kept for the "
            f"workers' retention, 7 days by default, or their keep_result), or its put was "
            f"rolled back"
        )
    return JobNotFound(f"no job with id {job_id}")


def _placeholder() -> None:
    """Stands in for a loaded job's callable until the row's payload is decoded."""


class _EncodedRows(Sequence[NewJob]):
    """The rows of a put, each encoded when first read: a store that sends a big batch in
    parts (PostgreSQL) encodes each part while the server inserts the one before."""

    def __init__(self, count: int, encode: Iterator[NewJob]) -> None:
        self._count = count
        self._encode = encode
        self._rows: list[NewJob] = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[NewJob]:  # Sequence's own would end on an IndexError
        if len(self._rows) == self._count:
            return iter(self._rows)  # all encoded: the usual second reading
        return self._encoding()

    def _encoding(self) -> Iterator[NewJob]:
        rows, encode = self._rows, self._encode
        for index in range(self._count):
            if index == len(rows):
                rows.append(next(encode))
            yield rows[index]

    @overload
    def __getitem__(self, index: int) -> NewJob: ...
    @overload
    def __getitem__(self, index: slice) -> list[NewJob]: ...
    def __getitem__(self, index: int | slice) -> NewJob | list[NewJob]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        while len(self._rows) <= index:
            self._rows.append(next(self._encode))
        return self._rows[index]
