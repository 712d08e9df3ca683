"""`Queue`: where jobs wait for a worker, in order.

Order: jobs put back (retried "now", or recovered) first, then the others by the time they
were put or became due, whichever is later. `len(queue)`, iteration and `queue[i]` show the
pending jobs in that order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from jobq._clock import ensure_aware
from jobq.errors import BadStatusError
from jobq.model.job import Job, Status
from jobq.model.retry import RetryPolicy

if TYPE_CHECKING:
    from jobq.database import Database

_PAGE = 500


class Queue:
    """A named queue of one `Database`; get one with `db.queue(name)`."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name

    def __repr__(self) -> str:
        return f"<jobq.Queue {self.name!r}>"

    # -- putting -------------------------------------------------------------------------------
    def put(
        self,
        item: Job | Callable[..., Any],
        *,
        begin_after: dt.datetime | None = None,
        begin_by: dt.timedelta | None = None,
        retry_policy: type[RetryPolicy] | None = None,
        failure_log_level: int | None = None,
        conn: Any = None,
    ) -> Job:
        """Store `item` (a callable or a `Job`) as a pending job and return the job.

        `begin_after` (aware datetime): not before then. `begin_by` (timedelta >= 0): if not
        started by `begin_after + begin_by`, the job fails with `jobq.TimeoutError`.
        `conn`: an application connection (sqlite3, psycopg, SQLAlchemy connection or session)
        whose open transaction the job joins: it exists only if that transaction commits.
        """
        return self.put_many(
            [item],
            begin_after=begin_after,
            begin_by=begin_by,
            retry_policy=retry_policy,
            failure_log_level=failure_log_level,
            conn=conn,
        )[0]

    def put_many(
        self,
        items: Iterable[Job | Callable[..., Any]],
        *,
        begin_after: dt.datetime | None = None,
        begin_by: dt.timedelta | None = None,
        retry_policy: type[RetryPolicy] | None = None,
        failure_log_level: int | None = None,
        conn: Any = None,
    ) -> list[Job]:
        """Store several jobs in one transaction (all or none), with the same options."""
        jobs = [item if isinstance(item, Job) else Job(item) for item in items]
        if begin_after is not None:
            begin_after = ensure_aware(begin_after, "begin_after")
        if begin_by is not None:
            _check_begin_by(begin_by)
        if failure_log_level is not None and not isinstance(failure_log_level, int):
            raise TypeError(
                f"failure_log_level must be a logging level (int), got {failure_log_level!r}"
            )
        seen: set[int] = set()
        for job in jobs:
            if job.stored and job.status != Status.NEW:
                raise ValueError(
                    f"cannot add already-assigned job {job.id} (status {job.status}); "
                    f"pull it from its queue first, or put a new Job"
                )
            if job.begin_after is not None:
                ensure_aware(job.begin_after, "begin_after")
            if job.begin_by is not None:
                _check_begin_by(job.begin_by)
            if id(job) in seen:
                raise ValueError(f"{job!r} appears twice in one put_many")
            seen.add(id(job))
        return self.db._put(
            self,
            jobs,
            begin_after=begin_after,
            begin_by=begin_by,
            retry_policy=retry_policy,
            failure_log_level=failure_log_level,
            conn=conn,
        )

    # -- taking out ----------------------------------------------------------------------------
    def pull(self, index: int = 0) -> Job:
        """Remove and return the pending job at `index` (negative counts from the end); it is
        "new" again and may be put again. IndexError if there is no such job."""
        record = self.db.store.pull(self.name, index)
        if record is None:
            raise IndexError(f"queue {self.name!r} has no pending job at index {index}")
        return self.db._job_from_record(record)

    def remove(self, job: Job) -> None:
        """Remove this pending job from the queue; LookupError if it is not pending here."""
        if job.id is None or not self.db.store.remove(self.name, job.id):
            raise LookupError(("item not in queue", job))
        job.refresh()

    def put_back(self, job: Job) -> None:
        """Put a pulled ("new") job back at the front of the queue."""
        if job.id is None:
            raise BadStatusError(f"{job!r} was never stored; use put()")
        job.refresh()
        if job.status != Status.NEW:
            raise BadStatusError(f"can only put back a new (pulled) job; {job!r} is {job.status}")
        if not self.db.store.put_back(self.name, job.id, self.db.clock.now()):
            raise BadStatusError(f"{job!r} could not be put back (a callback cannot be queued)")
        job.refresh()

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.db.store.count_pending(self.name)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[Job]:
        offset = 0
        while True:
            records = self.db.store.pending(self.name, offset, _PAGE)
            for record in records:
                yield self.db._job_from_record(record)
            if len(records) < _PAGE:
                return
            offset += _PAGE

    def __getitem__(self, index: int) -> Job:
        if index < 0:
            index += len(self)
        records = self.db.store.pending(self.name, index, 1) if index >= 0 else []
        if not records:
            raise IndexError(f"queue {self.name!r} has no pending job at index {index}")
        return self.db._job_from_record(records[0])


def _check_begin_by(begin_by: object) -> None:
    if not isinstance(begin_by, dt.timedelta):
        raise TypeError(f"begin_by must be a timedelta, got {begin_by!r}")
    if begin_by < dt.timedelta(0):
        raise ValueError(f"begin_by must not be negative, got {begin_by}")
