"""The storage contract: the domain operations every engine implements, and their records.

Implementations: `jobq.store.sqlite.SqliteStore` (embedded default) and
`jobq.store.postgres.PostgresStore` (many machines). Nothing above this package writes SQL
or knows which engine it runs on. Each operation is one transaction, unless it is given
`conn=`: then it runs inside that connection's open transaction (the caller's own, or a job
attempt's) and commits nothing.

Writes for a job attempt are fenced on (job id, attempt, dispatcher): if the claim was lost,
`store_result`, `reschedule` and `wait_on` raise `ReassignedError` and change nothing, and
`start` answers False (the runner then says whether the job was completed or reassigned).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class NewJob:
    """A job to insert (not frozen: a bulk put builds thousands, and a frozen dataclass's
    constructor costs several times as much; docs/benchmarks.md)."""

    queue: str
    call: bytes
    call_repr: str
    begin_after: dt.datetime
    begin_by: float | None = None
    job_class: str | None = None
    retry_policy: str | None = None
    failure_log_level: int | None = None
    quota_names: tuple[str, ...] = ()
    put_by: str | None = None
    parent_id: int | None = None
    retry_data: dict[str, Any] | None = None  # its retry policy's settings (put(retries=N))
    rate_limits: tuple[str, ...] = ()  # names of its queue's rate limits
    unique_key: str | None = None  # put(unique_key=): see Queue.put
    unique_while: str | None = None  # "pending" or "pending,active", or None (no held key)
    unique_for: float | None = None  # seconds: no second job with the key put within them
    replace: bool = False  # on_conflict="replace": a pending holder takes this row's call
    priority: int = 0  # -10..10 (jobq.model.job.PRIORITIES): higher first among due jobs
    keep_result: float | None = None  # put(keep_result=): seconds kept once completed


@dataclass(slots=True)
class JobRecord:
    """One row of the jobs table, without the (possibly large) result payload. Read it as a
    value; it is not frozen because a worker builds one for every job it claims, and a frozen
    dataclass of these 28 fields costs several times as much to build (docs/benchmarks.md)."""

    id: int
    queue: str
    status: str
    lane: int
    begin_after: dt.datetime
    begin_by: float | None
    job_class: str | None
    call: bytes
    call_repr: str
    retry_policy: str | None
    retry_data: dict[str, Any]
    failure_log_level: int | None
    quota_names: tuple[str, ...]
    annotations: dict[str, Any]
    attempt: int
    dispatcher_uuid: str | None
    agent_name: str | None
    put_by: str | None
    parent_id: int | None
    waiting_on: int | None
    result_repr: str | None
    failed: bool
    failure: dict[str, Any] | None
    created: dt.datetime
    assigned_at: dt.datetime | None
    active_start: dt.datetime | None
    active_end: dt.datetime | None
    completed_at: dt.datetime | None
    priority: int
    unique_key: str | None = None  # put(unique_key=): the key it holds while in unique_while
    unique_while: str | None = None  # "pending" or "pending,active" (None: unique_for only)
    # The JSON columns whose stored text could not be read (read as empty instead): a worker
    # fails such a job rather than run it, and every other reader goes on.
    damaged: tuple[str, ...] = ()
    rate_limits: tuple[str, ...] = ()  # names of its queue's rate limits (counted per claim)
    # put(keep_result=): seconds the job is kept once completed (None: the workers' retention),
    # and the time that makes (completed_at + keep_result; None until it completes).
    keep_result: float | None = None
    expires_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an attempt produced: an encoded value, or a failure (as JSON-able dict)."""

    result: bytes | None
    result_repr: str
    failed: bool = False
    failure: dict[str, Any] | None = None
    retry_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DispatcherRecord:
    uuid: str
    host: str
    pid: int
    started: dt.datetime
    last_ping: dt.datetime | None
    ping_interval: float
    death_interval: float
    activated: dt.datetime | None
    deactivated: dt.datetime | None


@dataclass(frozen=True, slots=True)
class AgentRecord:
    dispatcher_uuid: str
    queue: str
    name: str
    size: int
    filter: str | None
    filter_seal: str | None = None  # the filter's signature with JOBQ_SECRET (Codec.seal)


def is_dead(record: DispatcherRecord, now: dt.datetime) -> bool:
    """The catalogue's rule: dead when the later of last ping and activation is older than the
    death interval."""
    times = [t for t in (record.last_ping, record.activated) if t is not None]
    if not times:
        return False
    return max(times) + dt.timedelta(seconds=record.death_interval) < now


# -- monitoring: read models, operator actions and retention (jobq.store._monitor) -------------
@dataclass(frozen=True, slots=True)
class JobQuery:
    """Which jobs a monitoring read selects (the catalogue's states and filters, section 8.3).

    `states` are stored statuses; `failed` restricts completed jobs to failures (True) or
    successes (False). `queue`, `agent` and `callable` are globs (`*`, `?`; case-insensitive);
    a `callable` glob without a dot matches the function's own name, with a dot its full
    dotted name. `agent` and `uuid` do not restrict pending jobs (the monitor layer judges
    those with the agents' filters). `queues` restricts to exact queue names. Each time pair
    keeps jobs whose time is after `*_since` and before `*_before`; `priority_min` and
    `priority_max` keep jobs whose priority is within them (inclusive).
    """

    states: tuple[str, ...]
    failed: bool | None = None
    queue: str | None = None
    agent: str | None = None
    uuid: str | None = None
    callable: str | None = None
    queues: tuple[str, ...] | None = None
    requested_since: dt.datetime | None = None
    requested_before: dt.datetime | None = None
    start_since: dt.datetime | None = None
    start_before: dt.datetime | None = None
    end_since: dt.datetime | None = None
    end_before: dt.datetime | None = None
    completed_since: dt.datetime | None = None
    completed_before: dt.datetime | None = None
    priority_min: int | None = None  # jobs whose priority is at least this
    priority_max: int | None = None  # jobs whose priority is at most this


@dataclass(frozen=True, slots=True)
class JobStatsRecord:
    """Counts by state ("pending", ..., "succeeded", "failed") and the jobs at the extremes
    of wait (begin_after to start) and active time (start to end), as of `now`."""

    counts: dict[str, int]
    longest_wait: JobRecord | None
    shortest_wait: JobRecord | None
    longest_active: JobRecord | None
    shortest_active: JobRecord | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    paused: bool
    pending: int
    due: int
    assigned: int
    active: int
    callbacks: int
    succeeded: int
    failed: int


@dataclass(frozen=True, slots=True)
class RateLimitRecord:
    """A rate limit of a queue as it stands at `now`: `used` claims of jobs naming it in the
    last `per` seconds (of `limit` allowed), `waiting` pending jobs naming it, and, when no
    claim is left, `frees_at`: when the oldest claim of the window leaves it."""

    queue: str
    name: str
    limit: int
    per: float  # seconds
    used: int
    waiting: int
    frees_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """An agent of a dispatcher, with the jobs it holds now."""

    dispatcher_uuid: str
    queue: str
    name: str
    size: int
    filter: str | None
    assigned: int
    active: int
    callbacks: int
    waiting: int = 0  # active jobs waiting on the job they returned: on no thread


@dataclass(frozen=True, slots=True)
class ThroughputBucket:
    """Jobs completed in [start, start + width)."""

    start: dt.datetime
    succeeded: int
    failed: int


@dataclass(frozen=True, slots=True)
class JobTotals:
    """Completed jobs of one queue and outcome over a window, for metrics (seconds)."""

    queue: str
    failed: bool
    count: int
    active_sum: float
    active_max: float
    wait_sum: float
    retries: int
    interruptions: int


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """One row of the schedules table: a cron expression, the job each tick puts (as the
    columns of a job row), and where it is: its next tick not yet enqueued (None: no more),
    its last enqueued tick and that tick's job."""

    name: str
    cron: str
    timezone: str
    queue: str
    missed: str
    catch_up: int
    job_class: str | None
    call: bytes
    call_repr: str
    retry_policy: str | None
    failure_log_level: int | None
    paused: bool
    next_tick: dt.datetime | None
    last_tick: dt.datetime | None
    last_job_id: int | None
    revision: int
    created: dt.datetime
    updated: dt.datetime
    priority: int = 0  # of the jobs its ticks put


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a retention run deleted: `jobs` older than the retention time, `dispatchers`
    records, and `expired` jobs put with keep_result whose time was up."""

    jobs: int
    dispatchers: int
    expired: int = 0


@dataclass(frozen=True, slots=True)
class ExpiredRecord:
    """A job pruned at its keep_result expiry (`jobq_expired`): what a read of its id says."""

    id: int
    queue: str
    completed_at: dt.datetime
    expires_at: dt.datetime
    keep_result: float
    pruned_at: dt.datetime


class MonitorStore(Protocol):
    """The monitoring part of the Store protocol: each read is one read transaction, each
    write one short transaction (pruning: one per batch)."""

    def list_jobs(
        self, query: JobQuery, now: dt.datetime, *, offset: int = 0, limit: int = 50
    ) -> list[JobRecord]: ...
    def count_jobs(self, query: JobQuery) -> int: ...
    def job_stats(self, query: JobQuery, now: dt.datetime) -> JobStatsRecord: ...
    def job_children(self, job_id: int) -> list[JobRecord]: ...
    def jobs_waiting_for(self, job_id: int) -> list[int]: ...
    def list_dispatchers(self) -> list[DispatcherRecord]: ...
    def agent_loads(self) -> list[AgentLoad]: ...
    def queue_stats(self, now: dt.datetime) -> list[QueueStats]: ...
    def throughput(
        self, since: dt.datetime, width: dt.timedelta, count: int
    ) -> list[ThroughputBucket]: ...
    def job_totals(self, since: dt.datetime) -> list[JobTotals]: ...
    def set_queue_paused(self, queue: str, paused: bool) -> bool: ...
    def paused_queues(self) -> set[str]: ...
    def set_agent_size(self, queue: str, name: str, size: int, uuid: str | None = None) -> int: ...
    def set_quota(self, queue: str, name: str, size: int) -> None: ...
    def quotas(self) -> list[tuple[str, str, int]]: ...
    def prune(self, before: dt.datetime, *, batch: int = 500, max_batches: int = 20) -> PruneResult:
        """Delete completed jobs finished before `before` (not those put with keep_result)
        and dispatcher records not active since then."""
        ...

    def prune_expired(
        self,
        now: dt.datetime,
        forget_before: dt.datetime,
        *,
        batch: int = 500,
        max_batches: int = 20,
    ) -> int:
        """Delete the jobs put with keep_result whose expiry is past at `now` (none that a
        callback or a waiting job still needs), recording each in the same transaction
        (`expired_job`), and forget the records written before `forget_before`. Returns the
        number of jobs deleted."""
        ...

    def expired_job(self, job_id: int) -> ExpiredRecord | None:
        """The record of a job pruned at its keep_result expiry, if retention still has it."""
        ...

    def last_job_id(self) -> int | None:
        """The highest job id issued so far (None before the first put)."""
        ...


class Waiter(Protocol):
    """Blocks until the database may hold new work (a NOTIFY, a changed SQLite file)."""

    def wait(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


class Store(MonitorStore, Protocol):
    """The operations jobq needs from a database engine (monitoring: `MonitorStore`)."""

    engine: str

    def migrate(self) -> None: ...
    def close(self) -> None: ...

    # enqueueing and the queue
    def enqueue(self, jobs: Sequence[NewJob], now: dt.datetime, *, conn: Any = None) -> list[int]:
        """Insert `jobs` as pending, all or none, and return their ids in order. `jobs` may
        encode each row as it is first read (an error raised then rolls the batch back), so
        a store reads it once, in order, inside its transaction."""
        ...

    def enqueue_unique(
        self, jobs: Sequence[NewJob], now: dt.datetime, *, conn: Any = None
    ) -> list[tuple[int, str]]:
        """`enqueue` for a batch with unique keys (`NewJob.unique_key`): (id, outcome) in
        order, outcome "created", "existing" (the job holding the key) or "replaced" (the
        pending holder took the row's call and times). Race-free across producers: each
        decision is one statement enforced by a unique index."""
        ...

    def prune_unique_keys(self, now: dt.datetime) -> int:
        """Forget the `unique_for` periods over at `now`; how many."""
        ...

    def requeue(
        self,
        job_id: int,
        queue: str,
        begin_after: dt.datetime,
        begin_by: float | None,
        put_by: str | None,
        now: dt.datetime,
        *,
        conn: Any = None,
        quota_names: Sequence[str] | None = None,
        rate_limits: Sequence[str] | None = None,
        priority: int = 0,
    ) -> bool: ...
    def get(self, job_id: int) -> JobRecord | None: ...
    def get_result(self, job_id: int) -> bytes | None: ...
    def pending(self, queue: str, offset: int, limit: int) -> list[JobRecord]: ...
    def count_pending(self, queue: str) -> int: ...
    def pull(self, queue: str, index: int) -> JobRecord | None: ...
    def remove(self, queue: str, job_id: int) -> bool: ...
    def put_back(self, queue: str, job_id: int, now: dt.datetime) -> bool: ...

    # a job's life
    def claim(
        self,
        queue: str,
        dispatcher: str,
        agent: str,
        limit: int,
        now: dt.datetime,
        accept: Callable[[JobRecord], bool] | None = None,
        *,
        active_only: bool = False,
        start: bool | int = False,
        database_time: bool = False,
    ) -> list[JobRecord]:
        """Claim up to `limit` due jobs of `queue` for an agent (see `jobq.store._claim`);
        with `database_time`, rate limit windows are measured in the database's time (one
        clock for every machine) rather than at `now`."""
        ...

    def rate_limit_wake(self, queue: str) -> dt.datetime | None:
        """When a rate limit of `queue` that the last claim found with no claim left frees
        one (its window's oldest claim leaves it), or None; read once (a claimer's hint to
        claim again then rather than at its next poll)."""
        ...

    def claim_callbacks(
        self, queue: str, dispatcher: str, agent: str, limit: int, now: dt.datetime
    ) -> list[JobRecord]:
        """Claim and start up to `limit` callbacks due at the front of `queue` (lane 0), for
        the callback slot of an agent whose threads are all busy with long jobs."""
        ...

    def start(self, job_id: int, attempt: int, dispatcher: str, now: dt.datetime) -> bool: ...
    def owns(self, job_id: int, attempt: int, dispatcher: str) -> bool: ...
    def store_result(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        outcome: Outcome,
        now: dt.datetime,
        *,
        conn: Any = None,
    ) -> None: ...
    def store_result_later(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        outcome: Outcome,
        now: dt.datetime,
        then: Callable[[BaseException | None], None],
    ) -> None:
        """`store_result` without the job's own writes, committed with other threads'
        completions; returns at once. `then(None)` is called once it is committed, or
        `then(error)` if it failed (ReassignedError if the claim was lost, nothing written),
        from whichever thread ended the commit."""
        ...

    def reschedule(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        when: dt.datetime | None,
        retry_data: dict[str, Any],
        now: dt.datetime,
    ) -> None: ...
    def wait_on(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        inner_id: int,
        retry_data: dict[str, Any],
        now: dt.datetime,
        *,
        conn: Any = None,
    ) -> None: ...
    def fail_unstarted(self, job_id: int, outcome: Outcome, now: dt.datetime) -> bool: ...
    def add_callback(
        self, parent_id: int, callback: NewJob, now: dt.datetime, *, conn: Any = None
    ) -> int: ...
    def retry_failed(self, job_id: int, now: dt.datetime) -> int | None:
        """In one transaction: put a copy of a completed, failed job as a new job due `now`
        (in its queue, or as a new callback of its parent, as `add_callback` does), annotate
        the old job `retried_as` and the copy `retry_of`, and return the copy's id; None, and
        nothing written, if the job is not completed and failed."""
        ...

    def set_annotation(self, job_id: int, name: str, value: Any, *, conn: Any = None) -> None: ...

    # composition: parked jobs and a composite's state (kept in its annotations)
    def lock_annotations(self, job_id: int, *, conn: Any = None) -> dict[str, Any]: ...
    def park(self, jobs: Sequence[NewJob], now: dt.datetime, *, conn: Any = None) -> list[int]: ...
    def statuses(self, job_ids: Sequence[int], *, conn: Any = None) -> dict[int, str]: ...

    # queues, dispatchers and agents
    def ensure_queue(self, queue: str, now: dt.datetime) -> None: ...
    # Liveness: `now=None` means the database's time (`liveness_now`), which workers on
    # machines with different clocks share; a test or an injected clock passes its own.
    def activate_dispatcher(
        self,
        uuid: str,
        host: str,
        pid: int,
        ping_interval: float,
        death_interval: float,
        now: dt.datetime | None,
    ) -> tuple[bool, DispatcherRecord | None]: ...
    def get_dispatcher(self, uuid: str) -> DispatcherRecord | None: ...
    def ping(self, uuid: str, now: dt.datetime | None) -> bool: ...
    def reactivate_dispatcher(self, uuid: str, now: dt.datetime | None) -> None: ...
    def deactivate_dispatcher(self, uuid: str, now: dt.datetime | None) -> None: ...
    def deactivate_dead(
        self, now: dt.datetime | None, in_reach_for: float | None = None
    ) -> list[str]: ...
    def liveness_now(self) -> dt.datetime:
        """The database's time, which liveness asked with `now=None` is judged in: the
        server's clock where it has one (PostgreSQL), else this machine's."""
        ...

    def set_dispatcher_intervals(
        self, uuid: str, ping_interval: float, death_interval: float
    ) -> bool: ...

    # recovery: jobs held by dispatchers that are gone
    def orphans(self, limit: int = 100) -> list[JobRecord]: ...
    def dispatcher_jobs(self, uuid: str) -> list[JobRecord]: ...
    def release(self, job_id: int, attempt: int, dispatcher: str) -> bool: ...
    def set_agent(
        self,
        uuid: str,
        queue: str,
        name: str,
        size: int,
        filter: str | None,
        filter_seal: str | None = None,
    ) -> None: ...
    def remove_agent(self, uuid: str, queue: str, name: str) -> bool: ...
    def clear_agents(self, uuid: str) -> None: ...
    def agents(self, uuid: str) -> list[AgentRecord]: ...

    # quotas: at most `size` jobs naming a quota are claimed or running at once (claim enforces)
    def queue_quotas(self, queue: str) -> list[tuple[str, int]]: ...
    def create_quota(self, queue: str, name: str, size: int) -> bool: ...
    def resize_quota(self, queue: str, name: str, size: int) -> bool: ...
    def remove_quota(self, queue: str, name: str) -> bool: ...
    def quota_holders(self, queue: str, name: str) -> list[JobRecord]: ...

    # rate limits: at most `limit` claims of jobs naming one in any `per` seconds (claim enforces)
    def queue_rate_limits(self, queue: str) -> list[tuple[str, int, float]]: ...
    def create_rate_limit(self, queue: str, name: str, limit: int, per: float) -> bool: ...
    def change_rate_limit(self, queue: str, name: str, limit: int, per: float) -> bool: ...
    def remove_rate_limit(self, queue: str, name: str, *, force: bool = False) -> int | None: ...
    def rate_limits(self, queue: str | None, now: dt.datetime) -> list[RateLimitRecord]: ...

    # -- schedules (store/_schedules.py) ---------------------------------------------------------
    def save_schedule(self, schedule: ScheduleRecord) -> None: ...
    def get_schedule(self, name: str) -> ScheduleRecord | None: ...
    def schedules(self) -> list[ScheduleRecord]: ...
    def remove_schedule(self, name: str) -> bool: ...
    def set_schedule_paused(
        self, name: str, paused: bool, next_tick: dt.datetime | None, now: dt.datetime
    ) -> bool: ...
    def due_schedules(self, now: dt.datetime, limit: int = 50) -> list[ScheduleRecord]: ...
    def earliest_schedule_tick(self) -> dt.datetime | None: ...
    def fire_schedule(
        self,
        schedule: ScheduleRecord,
        ticks: Sequence[dt.datetime],
        next_tick: dt.datetime | None,
        now: dt.datetime,
        put_by: str | None = None,
    ) -> list[tuple[dt.datetime, int]] | None: ...
    def schedule_ticks(self, name: str) -> list[tuple[dt.datetime, int | None]]: ...
    def prune_schedule_ticks(self, before: dt.datetime) -> int: ...

    def reserve_connections(self, count: int) -> None:
        """Make room for `count` concurrent connections (a worker's threads), if pooled."""
        ...

    # waking up and the job's own transaction
    def waiter(self, queues: Collection[str] | None = None) -> Waiter:
        """A waiter woken by new work in `queues` (any queue, if None), where the engine can
        tell queues apart (PostgreSQL's NOTIFY payload); otherwise by any."""
        ...

    def attempt_connection(self) -> AttemptConnection: ...


class AttemptConnection(Protocol):
    """A connection whose transaction a job may write in (`jobq.local.connection()`);
    `store_result(conn=...)` then commits the job's writes and its result together."""

    @property
    def raw(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None:
        """From another thread than the job's (its attempt was taken away after its time
        limit): stop the statement it runs, roll its transaction back (releasing its locks)
        and close the connection, so that whatever it sends later fails."""
        ...
