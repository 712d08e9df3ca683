"""`parallel` and `serial`, and the operations that run them on stored jobs.

The constructors build a `jobq.model.compose.Composite`, whose call is `run_parallel` or
`run_serial`: the callables below are what workers import and run for a composite, its
parts' `part_done` callbacks and its postprocess (the state they read and write is
`jobq.model.compose.CompositeState`).

`Composition` holds the operations. Each is one transaction that locks the composite's row
(and, once it exists, its postprocess's row first, the order in which a finishing postprocess
hands its result to the composite), reads the composite's state from its annotation, creates
or puts jobs, and writes the state back. Inside a running job the transaction is the job's
attempt (`jobq.local.connection()`): the composite's scheduling commits just before it starts
waiting, a `part_done` callback's puts commit with its own result, exactly once, and a part
added by a running job is written with that job's result (`add_part`). A callback added to a
part is waited for too (`add_part_callback`), until the postprocess is put.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from jobq.errors import BadStatusError, JobNotFound
from jobq.jobs import context
from jobq.jobs.rows import JobRows
from jobq.model.compose import (
    PART_OF_KEY,
    STATE_KEY,
    Composite,
    CompositeState,
    as_part,
    results,
)
from jobq.model.job import CompositeBackend, Job, Status
from jobq.store.base import NewJob

events_log = logging.getLogger("jobq.events")


# -- the constructors ----------------------------------------------------------------------------
def _composite(
    entry: Callable[..., Any], items: Sequence[Job | Callable[..., Any]], postprocess: Any
) -> Composite:
    parts = [as_part(item) for item in items]
    post = Job(results) if postprocess is None else as_part(postprocess)
    return Composite(entry, *parts, postprocess=post)


def parallel(
    *items: Job | Callable[..., Any], postprocess: Job | Callable[..., Any] | None = None
) -> Composite:
    """One job that runs every part at once (on any workers), then
    `postprocess(*part_jobs)`; its result is the postprocess's result. A failing part does
    not stop the others: the postprocess sees its `.result` as a `Failure`. The default
    postprocess returns the tuple of the parts' results."""
    return _composite(run_parallel, items, postprocess)


def serial(
    *items: Job | Callable[..., Any], postprocess: Job | Callable[..., Any] | None = None
) -> Composite:
    """Like `parallel`, but each part is put only once the one before has a result (value
    or Failure), and the postprocess only after the last."""
    return _composite(run_serial, items, postprocess)


# -- what workers run (importable by them: the callables of the stored jobs) ---------------------
def _running() -> Job:
    ctx = context.current()
    if ctx is None:
        raise ValueError("not initialized: a composite's steps run only inside a running job")
    return ctx.job


def _composition() -> CompositeBackend:
    return _running()._require_backend().composition


def _start(parts: tuple[Any, ...], postprocess: Job | None) -> Job:
    me = _running()
    if not isinstance(me, Composite):
        raise BadStatusError(f"{me!r} is not a composite job (use jobq.parallel / jobq.serial)")
    return _composition().start(me, list(parts), postprocess or Job(results))


def run_parallel(*parts: Job, postprocess: Job | None = None) -> Job:
    """The body of a `parallel` job: schedule (or resume) the parts; wait on the
    postprocess."""
    return _start(parts, postprocess)


def run_serial(*parts: Job, postprocess: Job | None = None) -> Job:
    """The body of a `serial` job (see `run_parallel`)."""
    return _start(parts, postprocess)


def part_done(composite_id: int, result: Any) -> None:
    """Callback of each part (and of the callbacks it had when put): put what became due."""
    _composition().step(composite_id)


def run_postprocess(composite_id: int, postprocess: Job) -> Any:
    """The postprocess job: call the user's postprocess with the part jobs."""
    jobs = _composition().parts(composite_id)
    return postprocess.callable(*postprocess.args, *jobs, **postprocess.kwargs)


# -- the operations ------------------------------------------------------------------------------
class Composition:
    """The composite operations of one database's jobs (`JobRows.composition`)."""

    def __init__(self, rows: JobRows) -> None:
        self.rows = rows
        self.store = rows.store

    @contextlib.contextmanager
    def _transaction(self, conn: Any = None) -> Iterator[Any]:
        """A connection in an open transaction: `conn` if given; inside a job of this
        database, its attempt connection; else our own short transaction."""
        if conn is not None:
            yield conn
            return
        ctx = context.running_in(self.rows)
        if ctx is not None:
            yield ctx.connection()
            return
        own = self.store.attempt_connection()
        try:
            yield own.raw
            own.commit()
        finally:
            own.close()

    def _lock_state(self, composite_id: int, conn: Any) -> tuple[CompositeState | None, str]:
        """Lock the composite (its postprocess first, if any) and read its state and queue."""
        record = self.store.get(composite_id)
        if record is None:
            raise JobNotFound(f"no job with id {composite_id}")
        before = CompositeState.from_annotations(record.annotations)
        if before is not None and before.postprocess is not None:
            self.store.lock_annotations(before.postprocess, conn=conn)
        state = CompositeState.from_annotations(
            self.store.lock_annotations(composite_id, conn=conn)
        )
        locked_first = before is not None and before.postprocess is not None
        if state is not None and state.postprocess is not None and not locked_first:
            # Created meanwhile (a concurrent first run): lock it too, after the composite.
            self.store.lock_annotations(state.postprocess, conn=conn)
        return state, record.queue

    def _handle(self, job: Job, job_id: int, queue: str) -> Job:
        job.id = job_id
        job.queue_name = queue
        job.status = Status.NEW
        job._backend = self.rows
        return job

    def start(self, composite: Job, parts: Sequence[Job], postprocess: Job) -> Job:
        """The composite runs: create its parts and postprocess (or find them: a re-run),
        put what is due, and return the postprocess job to wait on."""
        assert composite.id is not None and isinstance(composite, Composite)
        cid = composite.id
        post = Job(run_postprocess, cid, postprocess)
        with self._transaction() as conn:
            state, queue = self._lock_state(cid, conn)
            if state is None or state.postprocess is None:
                now = self.rows.clock.now()
                extra = [] if state is None else state.parts
                rows = [self.rows.encode_new(queue, j, now) for j in parts]
                rows.append(self.rows.encode_new(queue, post, now))
                ids = self.store.park(rows, now, conn=conn)
                for part_id in ids[:-1]:
                    self.store.set_annotation(part_id, PART_OF_KEY, cid, conn=conn)
                state = CompositeState(composite.kind, [*ids[:-1], *extra], ids[-1])
            self._advance(cid, queue, state, conn)
        assert state.postprocess is not None
        return self._handle(post, state.postprocess, queue)

    def step(self, composite_id: int) -> None:
        """A part (or a watched callback of one) has a result: put what became due."""
        with self._transaction() as conn:
            state, queue = self._lock_state(composite_id, conn)
            if state is not None and not state.closed:
                self._advance(composite_id, queue, state, conn)

    def add_part(self, composite: Job, part: Job) -> Job:
        """Store `part` as a part of the stored `composite` (put at once if it is due): in a
        short transaction of its own; inside a running job of this database, in the job's
        attempt transaction (so the part exists only if the job commits, and always before
        the composite can see the job done). `BadStatusError` once the postprocess is put."""
        assert composite.id is not None and isinstance(composite, Composite)
        cid, kind = composite.id, composite.kind
        record = self.store.get(cid)
        if record is None:
            raise JobNotFound(f"no job with id {cid}")
        self._check_open(cid, CompositeState.from_annotations(record.annotations), record.status)
        queue = record.queue
        row = self.rows.encode_new(queue, part, self.rows.clock.now())  # fails here if it must
        put_by = context.current_dispatcher_uuid()
        ctx = context.running_in(self.rows)
        if ctx is None:
            with self._transaction() as conn:
                self._add_part(cid, kind, part, row, put_by, conn)
            part.refresh()
            if self.rows.after_put is not None:
                self.rows.after_put(queue, [part], True)
            return part

        def write(conn: Any) -> None:
            self._add_part(cid, kind, part, row, put_by, conn)

        self.rows._joining(ctx, write, part)
        part.queue_name = queue
        part.status = Status.NEW
        part.annotations = {**part.annotations, PART_OF_KEY: cid}
        part._backend = self.rows
        if self.rows.after_put is not None:
            self.rows.after_put(queue, [part], False)
        return part

    @staticmethod
    def _check_open(cid: int, state: CompositeState | None, status: str | None) -> None:
        if state is not None and state.closed:
            raise BadStatusError(
                f"composite job {cid} has already put its postprocess: too late to add a part"
            )
        if status in ("callbacks", "completed"):
            raise BadStatusError(f"composite job {cid} is {status}: too late to add a part")

    def _add_part(
        self, cid: int, kind: str, part: Job, row: NewJob, put_by: str | None, conn: Any
    ) -> None:
        state, queue = self._lock_state(cid, conn)
        self._check_open(cid, state, self.store.statuses([cid], conn=conn).get(cid))
        now = self.rows.clock.now()
        row.queue = queue
        part_id = self.store.park([row], now, conn=conn)[0]
        self.store.set_annotation(part_id, PART_OF_KEY, cid, conn=conn)
        if state is None:  # not run yet: it will take this part after the given ones
            state = CompositeState(kind, [part_id])
            self.store.set_annotation(cid, STATE_KEY, state.to_json(), conn=conn)
        else:
            state.parts.append(part_id)
            self._advance(cid, queue, state, conn, put_by)
        self._handle(part, part_id, queue)

    def add_part_callback(
        self, composite_id: int, part_id: int, callback_row: NewJob, now: dt.datetime, conn: Any
    ) -> int:
        """Store a callback of a part (in `conn`'s transaction, or one of its own); until the
        postprocess is put, the composite waits for it too (it may add parts), as it waits
        for the callbacks a part had when it was put. Locks in the order of `step`."""
        with self._transaction(conn) as conn:
            state, queue = self._lock_state(composite_id, conn)
            callback_id = self.store.add_callback(part_id, callback_row, now, conn=conn)
            if state is not None and not state.closed and part_id in state.watch:
                state.watch[part_id].append(callback_id)
                self._watch(composite_id, queue, callback_id, now, conn)
                self.store.set_annotation(composite_id, STATE_KEY, state.to_json(), conn=conn)
        return callback_id

    def parts(self, composite_id: int) -> list[Job]:
        """The composite's part jobs, in order."""
        record = self.store.get(composite_id)
        if record is None:
            raise JobNotFound(f"no job with id {composite_id}")
        state = CompositeState.from_annotations(record.annotations)
        return [] if state is None else [self.rows.get_job(i) for i in state.parts]

    # -- the one decision ------------------------------------------------------------------------
    def _advance(
        self, cid: int, queue: str, state: CompositeState, conn: Any, put_by: str | None = None
    ) -> None:
        """Put the parts (and postprocess) that are due, conditionally on their still being
        "new"; record what each part put watches; write the state."""
        statuses = self.store.statuses(state.watched(), conn=conn)
        put, post = state.due(statuses)
        now = self.rows.clock.now()
        put_by = put_by or context.current_dispatcher_uuid()
        for part_id in put:
            if not self.store.requeue(part_id, queue, now, None, put_by, now, conn=conn):
                continue
            # Callbacks the part has now must finish before it counts as done.
            watched = [c.id for c in self.store.job_children(part_id)]
            state.watch[part_id] = watched
            for parent in (*watched, part_id):
                self._watch(cid, queue, parent, now, conn)
        if (
            post
            and state.postprocess is not None
            and self.store.requeue(state.postprocess, queue, now, None, put_by, now, conn=conn)
        ):
            state.closed = True
        self.store.set_annotation(cid, STATE_KEY, state.to_json(), conn=conn)

    def _watch(self, cid: int, queue: str, job_id: int, now: dt.datetime, conn: Any) -> None:
        """Give `job_id` (a part, or a callback of one) a `part_done` callback: the composite
        decides again once it has a result."""
        row = self.rows.encode_new(
            queue, Job(part_done, cid), now, failure_log_level=logging.CRITICAL, parent_id=job_id
        )
        self.store.add_callback(job_id, row, now, conn=conn)
