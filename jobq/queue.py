"""`Queue`: where jobs wait for a worker, in order.

Order: jobs put back (retried "now", or recovered) first, then higher priorities first
(`put(..., priority=N)`, -10..10, default 0), then by the time the jobs were put or became
due, whichever is later. `len(queue)`, iteration and `queue[i]` show the
pending jobs in that order.

Quotas (`queue.quotas`) limit how many jobs naming them (`put(..., quota_names=...)`) are
claimed or running at once, across every worker; the claim enforces them. Rate limits
(`queue.rate_limits`) limit how many jobs naming them (`put(..., rate_limits=...)`) are
claimed in any interval of a given length, across every worker; the claim enforces them too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from jobq._clock import ensure_aware
from jobq.errors import BadStatusError
from jobq.model.job import Job, Status, check_priority
from jobq.model.limits import TIMEOUT, check_limit
from jobq.model.retry import RetryPolicy, ready_policy
from jobq.model.unique import KeySource, Unique, unique_options
from jobq.types import AppConnection

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
        retries: int | None = None,
        timeout: dt.timedelta | float | None = None,
        failure_log_level: int | None = None,
        quota_names: Iterable[str] | None = None,
        rate_limits: Iterable[str] | None = None,
        priority: int | None = None,
        keep_result: dt.timedelta | None = None,
        conn: AppConnection | None = None,
        unique_key: str | None = None,
        unique_while: Iterable[str] | None = None,
        unique_for: dt.timedelta | None = None,
        on_conflict: str | None = None,
    ) -> Job:
        """Store `item` (a callable or a `Job`) as a pending job and return the job.

        `begin_after` (aware datetime): not before then. `begin_by` (timedelta >= 0): if not
        started by `begin_after + begin_by`, the job fails with `jobq.TimeoutError`.
        `retries` (int >= 0): on an ordinary exception, retry the job up to this many more
        times with exponential backoff and jitter, then fail with the last error
        (`jobq.RetryWithBackoff`; `job.retried`, `job.next_run` show where it is).
        `timeout` (timedelta, or seconds > 0): the job's time limit. Once it has run that
        long, its stop is requested (`jobq.local.stop_requested()`); if it has not ended
        after its worker's grace period, the attempt is taken away (whatever it writes later
        is refused) and it fails with `jobq.JobTimeout` through its retry policy.
        `quota_names`: names of this queue's quotas the job counts against while claimed or
        running (each must exist: `ValueError(('unknown quota name', name))`).
        `rate_limits`: names of this queue's rate limits each claim of the job counts against
        (each must exist, else a ValueError naming it).
        `priority` (int, -10..10, default the job's own `priority`, 0): among this queue's
        due jobs, higher priorities are claimed first, then by time; jobs put back at the
        front (retried "now", callbacks) still come first. Outside the range: ValueError.
        `keep_result` (timedelta, 1 second to 3650 days): keep the completed job (and its
        result) this long, instead of the workers' retention (7 days by default), shorter or
        longer; then retention prunes it, and reading it raises `jobq.JobExpired` saying
        when and why. Callbacks added to the job do not inherit it.
        `conn`: an application connection (sqlite3, psycopg, SQLAlchemy connection or session)
        whose open transaction the job joins: it exists only if that transaction commits.
        Inside a running job of this database (without `conn`), the put joins that job's
        attempt transaction: the new job exists only if the running job commits, and its id
        is None until then (see `jobq.local`).

        `unique_key` (1 to 512 characters): at most one job of this queue holds the key, while
        it is in one of its `unique_while` states: ("pending", "active") by default (active
        counts a claimed job too), or ("pending",) (a key held until a worker claims the
        job). A put whose key is held makes no second job: it returns the holder's handle,
        unchanged (`on_conflict="keep"`, the default), or, if the holder is pending, with
        this put's call and times (`"replace"`; a running holder is kept as it is).
        `unique_for` (a positive timedelta): no second job with the key is put within that
        period after the put that made one, whatever became of that job. `job.put_outcome`
        says what the put did: "created", "existing" or "replaced". The database enforces
        it (a unique index), so retrying a put whose outcome is unknown
        (`jobq.PutOutcomeUnknown`) with the same key makes no duplicate.
        """
        return self.put_many(
            [item],
            begin_after=begin_after,
            begin_by=begin_by,
            retry_policy=retry_policy,
            retries=retries,
            timeout=timeout,
            failure_log_level=failure_log_level,
            quota_names=quota_names,
            rate_limits=rate_limits,
            priority=priority,
            keep_result=keep_result,
            conn=conn,
            unique_key=unique_key,
            unique_while=unique_while,
            unique_for=unique_for,
            on_conflict=on_conflict,
        )[0]

    def put_many(
        self,
        items: Iterable[Job | Callable[..., Any]],
        *,
        begin_after: dt.datetime | None = None,
        begin_by: dt.timedelta | None = None,
        retry_policy: type[RetryPolicy] | None = None,
        retries: int | None = None,
        timeout: dt.timedelta | float | None = None,
        failure_log_level: int | None = None,
        quota_names: Iterable[str] | None = None,
        rate_limits: Iterable[str] | None = None,
        priority: int | None = None,
        keep_result: dt.timedelta | None = None,
        conn: AppConnection | None = None,
        unique_key: KeySource | None = None,
        unique_while: Iterable[str] | None = None,
        unique_for: dt.timedelta | None = None,
        on_conflict: str | None = None,
    ) -> list[Job]:
        """Store several jobs in one transaction (all or none), with the same options.

        Unique keys are honoured row by row: `unique_key` is one key, or a function of each
        Job giving its key (or None); a Job may also carry its own (`job.unique_key = ...`
        before the put). A row whose key is held (by a stored job or an earlier row of the
        batch) returns the holder's handle, as `put` does.
        """
        unique = unique_options(unique_key, unique_while, unique_for, on_conflict)
        if priority is not None:
            check_priority(priority)
        if keep_result is not None:
            check_keep_result(keep_result)
        retry_data: dict[str, Any] | None = None
        if retries is not None:
            retry_policy = ready_policy(retries, retry_policy)
            retry_data = {"retries": retries}
        if timeout is not None:
            retry_data = {**(retry_data or {}), TIMEOUT: check_limit(timeout, None)}
        names = None if quota_names is None else self._check_quota_names(quota_names)
        rates = None if rate_limits is None else self._check_rate_limits(rate_limits)
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
            if job.id is not None:  # pulled from a queue (status "new"), put again
                _check_put_again(job, unique is not None, retry_data, retries, keep_result)
            elif unique is None and job.unique_key is not None:
                unique = Unique(None, "pending,active", None, False)  # the job's own key
            if job.begin_after is not None:
                ensure_aware(job.begin_after, "begin_after")
            if job.begin_by is not None:
                _check_begin_by(job.begin_by)
            if priority is None and job.priority != 0:
                check_priority(job.priority, "job.priority")
            deadline_by = begin_by if begin_by is not None else job.begin_by
            if deadline_by is not None:
                _check_deadline(begin_after or job.begin_after or self.db.clock.now(), deadline_by)
            if id(job) in seen:
                raise ValueError(f"{job!r} appears twice in one put_many")
            seen.add(id(job))
        return self.db.rows.put(
            self.name,
            jobs,
            begin_after=begin_after,
            begin_by=begin_by,
            retry_policy=retry_policy,
            failure_log_level=failure_log_level,
            conn=conn,
            quota_names=names,
            retry_data=retry_data,
            rate_limits=rates,
            unique=unique,
            priority=priority,
            keep_result=keep_result,
        )

    def _check_quota_names(self, quota_names: Iterable[str]) -> tuple[str, ...]:
        if isinstance(quota_names, str | bytes):
            raise TypeError(f"provide an iterable of names, not the string {quota_names!r}")
        names = tuple(dict.fromkeys(quota_names))  # in order, each once
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"quota names must be strings, got {name!r}")
        if names:
            known = {name for name, _ in self.db.store.queue_quotas(self.name)}
            for name in names:
                if name not in known:
                    raise ValueError(("unknown quota name", name))
        return names

    def _check_rate_limits(self, rate_limits: Iterable[str]) -> tuple[str, ...]:
        if isinstance(rate_limits, str | bytes):
            raise TypeError(
                f"rate_limits takes an iterable of names, not the string {rate_limits!r}: "
                f"write rate_limits=[{rate_limits!r}]"
            )
        names = tuple(dict.fromkeys(rate_limits))  # in order, each once
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"rate limit names must be strings, got {name!r}")
        if names:
            known = self.rate_limits.limits()
            for name in names:
                if name not in known:
                    have = ", ".join(repr(n) for n in known) or "none"
                    raise ValueError(
                        f"queue {self.name!r} has no rate limit {name!r} (it has: {have}); "
                        f"create it first: queue.rate_limits.create({name!r}, limit=N, "
                        f"per=timedelta(...))"
                    )
        return names

    @property
    def rate_limits(self) -> RateLimits:
        """This queue's rate limits: `create(name, limit, per)`, `[name]`, `change`, `remove`."""
        return RateLimits(self)

    @property
    def quotas(self) -> Quotas:
        """This queue's quotas: `create(name, size=1)`, `[name]`, `resize`, `remove`, names."""
        return Quotas(self)

    # -- taking out ----------------------------------------------------------------------------
    def pull(self, index: int = 0) -> Job:
        """Remove and return the pending job at `index` (negative counts from the end); it is
        "new" again and may be put again. IndexError if there is no such job."""
        record = self.db.store.pull(self.name, index)
        if record is None:
            raise IndexError(f"queue {self.name!r} has no pending job at index {index}")
        return self.db.rows.job(record)

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
                yield self.db.rows.job(record)
            if len(records) < _PAGE:
                return
            offset += _PAGE

    def __getitem__(self, index: int) -> Job:
        if index < 0:
            index += len(self)
        records = self.db.store.pending(self.name, index, 1) if index >= 0 else []
        if not records:
            raise IndexError(f"queue {self.name!r} has no pending job at index {index}")
        return self.db.rows.job(records[0])


MAX_KEEP_RESULT = dt.timedelta(days=3650)
"""The longest `keep_result`: about ten years (to keep jobs longer, put them without one and
turn the workers' retention off)."""


def check_keep_result(keep_result: object) -> None:
    """Refuse a `keep_result` that is not a timedelta from 1 second to `MAX_KEEP_RESULT`."""
    if not isinstance(keep_result, dt.timedelta):
        raise TypeError(
            f"keep_result must be a datetime.timedelta (how long to keep the completed job), "
            f"got {type(keep_result).__name__} {keep_result!r}"
        )
    if keep_result < dt.timedelta(seconds=1):
        raise ValueError(
            f"keep_result={keep_result!r} is too short: it must be at least 1 second (a job "
            f"is kept from its completion until then); omit it to keep the job for the "
            f"workers' retention"
        )
    if keep_result > MAX_KEEP_RESULT:
        raise ValueError(
            f"keep_result={keep_result!r} is too long: it must be at most {MAX_KEEP_RESULT.days} "
            f"days; to keep jobs longer, put them without keep_result and set the workers' "
            f"retention (jobq worker --retention, or off)"
        )


def _check_put_again(
    job: Job,
    keyed: bool,
    retry_data: dict[str, Any] | None,
    retries: int | None,
    keep_result: dt.timedelta | None,
) -> None:
    """Refuse to put a stored job again unless it is new (pulled), or with options that
    apply to new jobs only (`keyed`: the put, or an earlier job of it, has a unique key)."""
    if job.status != Status.NEW:
        job.refresh()  # a handle may be older than its row (pulled by another handle)
    if job.status != Status.NEW:
        raise ValueError(
            f"cannot add already-assigned job {job.id} (status {job.status}); "
            f"pull it from its queue first, or put a new Job"
        )
    if keyed:
        raise ValueError(
            f"unique_key applies to new jobs; {job!r} was pulled from a queue "
            f"(put a new Job with the key)"
        )
    if retry_data is not None:
        given = "retries=" if retries is not None else "timeout="
        raise ValueError(
            f"{given} applies to new jobs; {job!r} was pulled from a queue and keeps "
            f"the settings it was put with (put a new Job to change them)"
        )
    if keep_result is not None:
        raise ValueError(
            f"keep_result= applies to new jobs; {job!r} was pulled from a queue and "
            f"keeps the keep_result it was put with (put a new Job to change it)"
        )


def _check_begin_by(begin_by: object) -> None:
    if not isinstance(begin_by, dt.timedelta):
        raise TypeError(f"begin_by must be a timedelta, got {begin_by!r}")
    if begin_by < dt.timedelta(0):
        raise ValueError(f"begin_by must not be negative, got {begin_by}")


def _check_deadline(begin_after: dt.datetime, begin_by: dt.timedelta | None) -> None:
    """Refuse a `begin_by` whose deadline (`begin_after + begin_by`) no datetime can hold:
    stored, it would break every worker's deadline check (and PostgreSQL's claim)."""
    if begin_by is None:
        return
    try:
        begin_after + begin_by
    except OverflowError:
        raise ValueError(
            f"begin_by={begin_by!r} is out of range: its deadline, begin_after "
            f"({begin_after.isoformat()}) + begin_by, is past the year 9999; give a shorter "
            f"begin_by, or none for no deadline"
        ) from None


class Quota:
    """Quota `name` of a queue: at most `size` jobs naming it are claimed or running at once,
    across every worker. `len(quota)` and iteration show the jobs holding its slots now.

    >>> queue.quotas.create("db", size=2)
    >>> queue.put(export_orders, quota_names=["db"])
    """

    def __init__(self, queue: Queue, name: str) -> None:
        self.queue = queue
        self.name = name

    def __repr__(self) -> str:
        return f"<jobq.Quota {self.name!r} of queue {self.queue.name!r}>"

    @property
    def size(self) -> int:
        """The current size (read from the database); setting it resizes the quota."""
        for name, size in self.queue.db.store.queue_quotas(self.queue.name):
            if name == self.name:
                return size
        raise KeyError(f"queue {self.queue.name!r} has no quota {self.name!r} (removed?)")

    @size.setter
    def size(self, size: int) -> None:
        self.queue.quotas.resize(self.name, size)

    def _holders(self) -> Sequence[Job]:
        db = self.queue.db
        return [db.rows.job(r) for r in db.store.quota_holders(self.queue.name, self.name)]

    def __len__(self) -> int:
        return len(self.queue.db.store.quota_holders(self.queue.name, self.name))

    def __iter__(self) -> Iterator[Job]:
        return iter(self._holders())

    def __contains__(self, job: object) -> bool:
        return isinstance(job, Job) and any(j.id == job.id for j in self._holders())

    @property
    def filled(self) -> bool:
        """True when as many jobs hold its slots as its size (or more, after a shrink)."""
        return len(self) >= self.size


class Quotas:
    """The quotas of a queue (`queue.quotas`), kept in the database: every worker applies a
    change at its next claim. Iterating yields the names."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def __repr__(self) -> str:
        return f"<jobq.Quotas of queue {self.queue.name!r}: {self.sizes()}>"

    def sizes(self) -> dict[str, int]:
        """{name: size} of every quota of the queue."""
        return dict(self.queue.db.store.queue_quotas(self.queue.name))

    def create(self, name: str, size: int = 1) -> Quota:
        """Create quota `name` (a limit, not a preference: size 1 runs its jobs one at a
        time). ValueError if the queue has one of that name already."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a quota name must be a non-empty string, got {name!r}")
        _check_size(size)
        if not self.queue.db.store.create_quota(self.queue.name, name, size):
            raise ValueError(("quota already exists", name))
        return Quota(self.queue, name)

    def resize(self, name: str, size: int) -> None:
        """Change a quota's size. Shrinking a full quota leaves running jobs alone: new
        claims wait until fewer than `size` jobs hold it. KeyError if there is no such
        quota."""
        _check_size(size)
        if not self.queue.db.store.resize_quota(self.queue.name, name, size):
            raise KeyError(f"queue {self.queue.name!r} has no quota {name!r}")

    def remove(self, name: str) -> None:
        """Remove a quota. Jobs naming it may be pending: the name is then ignored. KeyError
        if there is no such quota."""
        if not self.queue.db.store.remove_quota(self.queue.name, name):
            raise KeyError(f"queue {self.queue.name!r} has no quota {name!r}")

    def __getitem__(self, name: str) -> Quota:
        if name not in self:
            raise KeyError(f"queue {self.queue.name!r} has no quota {name!r}")
        return Quota(self.queue, name)

    def get(self, name: str, default: Quota | None = None) -> Quota | None:
        return Quota(self.queue, name) if name in self else default

    def __contains__(self, name: object) -> bool:
        return name in self.sizes()

    def __iter__(self) -> Iterator[str]:
        return iter(self.sizes())

    def __len__(self) -> int:
        return len(self.sizes())


def _check_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"a quota's size must be an integer, got {size!r}")
    if size < 1:
        raise ValueError(f"a quota's size must be >= 1, got {size}")


# A rate limit's name: the claim and the monitor find it in a job's JSON list as text.
_RATE_LIMIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,99}")
MAX_RATE_LIMIT = 1_000_000  # claims per period: a claim counts up to this many rows
MAX_RATE_PERIOD = dt.timedelta(days=366)


class RateLimit:
    """Rate limit `name` of a queue: at most `limit` claims of jobs naming it in any interval
    of `per`, across every worker and machine. A job naming it starts in its claim (never
    claimed ahead), so its claims are its starts.

    >>> queue.rate_limits.create("smtp", limit=100, per=timedelta(minutes=1))
    >>> queue.put(send_mail, rate_limits=["smtp"])
    """

    def __init__(self, queue: Queue, name: str) -> None:
        self.queue = queue
        self.name = name

    def __repr__(self) -> str:
        return f"<jobq.RateLimit {self.name!r} of queue {self.queue.name!r}>"

    def _read(self) -> tuple[int, dt.timedelta]:
        found = self.queue.rate_limits.limits().get(self.name)
        if found is None:
            raise KeyError(f"queue {self.queue.name!r} has no rate limit {self.name!r} (removed?)")
        return found

    @property
    def limit(self) -> int:
        """Claims allowed per period (read from the database); setting it changes the limit."""
        return self._read()[0]

    @limit.setter
    def limit(self, limit: int) -> None:
        self.queue.rate_limits.change(self.name, limit=limit)

    @property
    def per(self) -> dt.timedelta:
        """The period (read from the database); setting it changes the limit."""
        return self._read()[1]

    @per.setter
    def per(self, per: dt.timedelta) -> None:
        self.queue.rate_limits.change(self.name, per=per)

    @property
    def used(self) -> int:
        """Claims of jobs naming it in the last `per`, now."""
        return self._record().used

    @property
    def waiting(self) -> int:
        """Pending jobs naming it (due or not)."""
        return self._record().waiting

    def _record(self) -> Any:
        db = self.queue.db
        for record in db.store.rate_limits(self.queue.name, db.database_now()):
            if record.name == self.name:
                return record
        raise KeyError(f"queue {self.queue.name!r} has no rate limit {self.name!r} (removed?)")


class RateLimits:
    """The rate limits of a queue (`queue.rate_limits`), kept in the database: every worker
    applies a change at its next claim. Iterating yields the names."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def __repr__(self) -> str:
        return f"<jobq.RateLimits of queue {self.queue.name!r}: {self.limits()}>"

    def limits(self) -> dict[str, tuple[int, dt.timedelta]]:
        """{name: (limit, per)} of every rate limit of the queue."""
        return {
            name: (limit, dt.timedelta(seconds=per))
            for name, limit, per in self.queue.db.store.queue_rate_limits(self.queue.name)
        }

    def create(self, name: str, limit: int, per: dt.timedelta) -> RateLimit:
        """Create rate limit `name`: at most `limit` claims of jobs naming it in any interval
        of `per`. ValueError if the queue has one of that name already."""
        _check_rate_name(name)
        _check_rate(limit, per)
        if not self.queue.db.store.create_rate_limit(
            self.queue.name, name, limit, per.total_seconds()
        ):
            raise ValueError(
                f"queue {self.queue.name!r} has a rate limit {name!r} already; change it with "
                f"queue.rate_limits.change({name!r}, limit=..., per=...)"
            )
        return RateLimit(self.queue, name)

    def change(
        self, name: str, *, limit: int | None = None, per: dt.timedelta | None = None
    ) -> None:
        """Change a rate limit's `limit`, `per` or both; the next claim of any worker applies
        them (claims already made count in the new window). KeyError if there is none."""
        current = self.limits().get(name)
        if current is None:
            raise KeyError(f"queue {self.queue.name!r} has no rate limit {name!r}")
        limit = current[0] if limit is None else limit
        per = current[1] if per is None else per
        _check_rate(limit, per)
        if not self.queue.db.store.change_rate_limit(
            self.queue.name, name, limit, per.total_seconds()
        ):
            raise KeyError(f"queue {self.queue.name!r} has no rate limit {name!r}")

    def remove(self, name: str, *, force: bool = False) -> None:
        """Remove a rate limit. Refused (ValueError, nothing changed) while pending jobs name
        it, since they would then run unlimited; `force=True` removes it anyway and the name
        is ignored from then on. KeyError if there is no such limit."""
        waiting = self.queue.db.store.remove_rate_limit(self.queue.name, name, force=force)
        if waiting is None:
            raise KeyError(f"queue {self.queue.name!r} has no rate limit {name!r}")
        if waiting and not force:
            raise ValueError(
                f"rate limit {name!r} of queue {self.queue.name!r} is named by {waiting} "
                f"pending job(s), which would then run unlimited; nothing was removed. "
                f"Remove it anyway with remove({name!r}, force=True)"
            )

    def __getitem__(self, name: str) -> RateLimit:
        if name not in self:
            raise KeyError(f"queue {self.queue.name!r} has no rate limit {name!r}")
        return RateLimit(self.queue, name)

    def get(self, name: str, default: RateLimit | None = None) -> RateLimit | None:
        return RateLimit(self.queue, name) if name in self else default

    def __contains__(self, name: object) -> bool:
        return name in self.limits()

    def __iter__(self) -> Iterator[str]:
        return iter(self.limits())

    def __len__(self) -> int:
        return len(self.limits())


def _check_rate_name(name: object) -> None:
    if not isinstance(name, str) or not _RATE_LIMIT_NAME.fullmatch(name):
        raise ValueError(
            f"bad rate limit name {name!r}: a name is 1 to 100 characters, letters, digits "
            f"and _ . : @ / -, starting with a letter or digit"
        )


def _check_rate(limit: object, per: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"a rate limit's limit must be an integer, got {limit!r}")
    if not 1 <= limit <= MAX_RATE_LIMIT:
        raise ValueError(
            f"a rate limit's limit must be from 1 to {MAX_RATE_LIMIT:,} claims per period, "
            f"got {limit}"
        )
    if not isinstance(per, dt.timedelta):
        raise TypeError(f"a rate limit's per must be a timedelta, got {per!r}")
    if not dt.timedelta(0) < per <= MAX_RATE_PERIOD:
        raise ValueError(
            f"a rate limit's per must be a period longer than zero and at most 366 days, "
            f"got {per!r}"
        )
