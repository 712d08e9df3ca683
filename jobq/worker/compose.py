"""The store side of `jobq.parallel` / `jobq.serial` (see `jobq.model.compose`).

`CompositionOps` is mixed into `jobq.Database`. Each operation is one transaction that locks
the composite's row (and, once it exists, its postprocess's row first, the order in which a
finishing postprocess hands its result to the composite), reads the composite's state from
its annotation, creates or puts jobs, and writes the state back. Inside a running job the
transaction is the job's attempt (`jobq.local.connection()`): the composite's scheduling
commits just before it starts waiting, and a `part_done` callback's puts commit with its own
result, exactly once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from jobq import local
from jobq.errors import BadStatusError, JobNotFound
from jobq.model.compose import (
    PART_OF_KEY,
    STATE_KEY,
    Composite,
    CompositeState,
    part_done,
    run_postprocess,
)
from jobq.model.job import Job, Status

if TYPE_CHECKING:
    from jobq._clock import Clock
    from jobq.model.retry import RetryPolicy
    from jobq.store.base import NewJob, Store

events_log = logging.getLogger("jobq.events")


class CompositionOps:
    """Composition operations of `jobq.Database` (called through `Composite` and the jobs
    that `jobq.model.compose` defines)."""

    store: Store
    clock: Clock
    _after_put: Callable[[str, list[Job], bool], None] | None

    if TYPE_CHECKING:

        def _new_row(
            self,
            queue: str,
            job: Job,
            begin_after: dt.datetime,
            begin_by: dt.timedelta | None,
            retry_policy: type[RetryPolicy] | None,
            failure_log_level: int | None,
            parent_id: int | None = None,
        ) -> NewJob: ...

        def get_job(self, job_id: int) -> Job: ...

    # -- transactions ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _compose_transaction(self, *, join: bool = True) -> Iterator[tuple[Any, bool]]:
        """(connection, inside a job). Inside a job of this database: its attempt connection
        if `join` or if the job already opened it (a second writer would wait for the lock
        it holds, on SQLite), else our own short transaction."""
        ctx = local.current_context()
        if ctx is not None and ctx.job._backend is self and (join or ctx.connection_open()):
            yield ctx.connection(), True
            return
        own = self.store.attempt_connection()
        try:
            yield own.raw, False
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
        job._backend = self  # type: ignore[assignment]
        return job

    # -- operations ------------------------------------------------------------------------------
    def _compose_start(self, composite: Composite, parts: Sequence[Job], postprocess: Job) -> Job:
        """The composite runs: create its parts and postprocess (or find them: a re-run),
        put what is due, and return the postprocess job to wait on."""
        assert composite.id is not None
        cid = composite.id
        post = Job(run_postprocess, cid, postprocess)
        with self._compose_transaction() as (conn, _):
            state, queue = self._lock_state(cid, conn)
            if state is None or state.postprocess is None:
                now = self.clock.now()
                extra = [] if state is None else state.parts
                rows = [self._new_row(queue, j, now, None, None, None) for j in parts]
                rows.append(self._new_row(queue, post, now, None, None, None))
                ids = self.store.park(rows, now, conn=conn)
                for part_id in ids[:-1]:
                    self.store.set_annotation(part_id, PART_OF_KEY, cid, conn=conn)
                state = CompositeState(composite.kind, [*ids[:-1], *extra], ids[-1])
            self._advance(cid, queue, state, conn)
        assert state.postprocess is not None
        return self._handle(post, state.postprocess, queue)

    def _compose_step(self, composite_id: int) -> None:
        """A part (or a watched callback of one) has a result: put what became due."""
        with self._compose_transaction() as (conn, _):
            state, queue = self._lock_state(composite_id, conn)
            if state is not None and not state.closed:
                self._advance(composite_id, queue, state, conn)

    def _compose_add_part(self, composite: Composite, part: Job) -> Job:
        assert composite.id is not None
        cid = composite.id
        with self._compose_transaction(join=False) as (conn, in_job):
            state, queue = self._lock_state(cid, conn)
            if state is not None and state.closed:
                raise BadStatusError(
                    f"composite job {cid} has already put its postprocess: too late to add a part"
                )
            status = self.store.statuses([cid], conn=conn).get(cid)
            if status in ("callbacks", "completed"):
                raise BadStatusError(f"composite job {cid} is {status}: too late to add a part")
            now = self.clock.now()
            row = self._new_row(queue, part, now, None, None, None)
            part_id = self.store.park([row], now, conn=conn)[0]
            self.store.set_annotation(part_id, PART_OF_KEY, cid, conn=conn)
            if state is None:  # not run yet: it will take this part after the given ones
                state = CompositeState(composite.kind, [part_id])
                self.store.set_annotation(cid, STATE_KEY, state.to_json(), conn=conn)
            else:
                state.parts.append(part_id)
                self._advance(cid, queue, state, conn)
        self._handle(part, part_id, queue)
        if not in_job:
            part.refresh()
            if self._after_put is not None:
                self._after_put(queue, [part], True)
        return part

    def _compose_parts(self, composite_id: int) -> list[Job]:
        record = self.store.get(composite_id)
        if record is None:
            raise JobNotFound(f"no job with id {composite_id}")
        state = CompositeState.from_annotations(record.annotations)
        return [] if state is None else [self.get_job(i) for i in state.parts]

    # -- the one decision ------------------------------------------------------------------------
    def _advance(self, cid: int, queue: str, state: CompositeState, conn: Any) -> None:
        """Put the parts (and postprocess) that are due, conditionally on their still being
        "new"; record what each part put watches; write the state."""
        statuses = self.store.statuses(state.watched(), conn=conn)
        put, post = state.due(statuses)
        now = self.clock.now()
        put_by = local.current_dispatcher_uuid()
        for part_id in put:
            if not self.store.requeue(part_id, queue, now, None, put_by, now, conn=conn):
                continue
            # Callbacks the part has now must finish before it counts as done.
            watched = [c.id for c in self.store.job_children(part_id)]
            state.watch[part_id] = watched
            for parent in (*watched, part_id):
                row = self._new_row(
                    queue, Job(part_done, cid), now, None, None, logging.CRITICAL, parent_id=parent
                )
                self.store.add_callback(parent, row, now, conn=conn)
        if (
            post
            and state.postprocess is not None
            and self.store.requeue(state.postprocess, queue, now, None, put_by, now, conn=conn)
        ):
            state.closed = True
        self.store.set_annotation(cid, STATE_KEY, state.to_json(), conn=conn)
