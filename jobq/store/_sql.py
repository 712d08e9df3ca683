"""`SqlStore`: the `store.base.Store` protocol, written once over an engine's `Driver`.

Each method is the operation of the same name in a topic module: `_queue` (putting and the
queue), `_claim` (claims and starts), `_outcomes` (results and what follows), `_dispatchers`
(dispatchers, agents, quotas, recovery), `_rate_limits` (rate limits), `_schedules` (cron
schedules), `_monitor` (monitoring) and `_schema` (migrations).
The engines (`sqlite.py`, `postgres.py`) only supply the driver.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Collection, Sequence
from typing import Any

from jobq.store import (
    _claim,
    _dispatchers,
    _monitor,
    _outcomes,
    _queue,
    _rate_limits,
    _schedules,
    _schema,
)
from jobq.store._schema import SCHEMA_VERSION, load_migrations, load_schema
from jobq.store.base import (
    AgentLoad,
    AgentRecord,
    AttemptConnection,
    DispatcherRecord,
    ExpiredRecord,
    JobQuery,
    JobRecord,
    JobStatsRecord,
    JobTotals,
    NewJob,
    Outcome,
    PruneResult,
    QueueStats,
    RateLimitRecord,
    ScheduleRecord,
    ThroughputBucket,
    Waiter,
)
from jobq.store.driver import MAX_ID, Driver, Executor

# The schema's names are re-exported: tests/migrations imports them from here.
__all__ = ["SCHEMA_VERSION", "SqlStore", "load_migrations", "load_schema"]


class SqlStore:
    """The Store protocol over `driver` (one per engine)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.engine = driver.engine
        self._claims = _claim.ClaimMemory()

    def _transaction(self, conn: object = None) -> contextlib.AbstractContextManager[Executor]:
        """A write transaction of the driver (for tests and tools that run their own SQL)."""
        return self.driver.transaction(conn)

    # -- the engine's own ----------------------------------------------------------------------
    def migrate(self) -> None:
        _schema.migrate(self.driver)

    def close(self) -> None:
        self.driver.close()

    def reserve_connections(self, count: int) -> None:
        self.driver.reserve_connections(count)

    def waiter(self, queues: Collection[str] | None = None) -> Waiter:
        return self.driver.waiter(queues)

    def attempt_connection(self) -> AttemptConnection:
        return self.driver.attempt_connection()

    # -- enqueueing and the queue --------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], now: dt.datetime, *, conn: Any = None) -> list[int]:
        return _queue.enqueue(self.driver, jobs, now, conn)

    def enqueue_unique(
        self, jobs: Sequence[NewJob], now: dt.datetime, *, conn: Any = None
    ) -> list[tuple[int, str]]:
        return _queue.enqueue_unique(self.driver, jobs, now, conn)

    def prune_unique_keys(self, now: dt.datetime) -> int:
        return _queue.prune_unique_keys(self.driver, now)

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
    ) -> bool:
        return _queue.requeue(
            self.driver,
            job_id,
            queue,
            begin_after,
            begin_by,
            put_by,
            now,
            conn,
            quota_names,
            rate_limits,
            priority,
        )

    def get(self, job_id: int) -> JobRecord | None:
        if not 0 < job_id <= MAX_ID:  # no such id can be stored: none to find
            return None
        return _queue.get(self.driver, job_id)

    def get_result(self, job_id: int) -> bytes | None:
        return _queue.get_result(self.driver, job_id)

    def pending(self, queue: str, offset: int, limit: int) -> list[JobRecord]:
        return _queue.pending(self.driver, queue, offset, limit)

    def count_pending(self, queue: str) -> int:
        return _queue.count_pending(self.driver, queue)

    def pull(self, queue: str, index: int) -> JobRecord | None:
        return _queue.pull(self.driver, queue, index)

    def remove(self, queue: str, job_id: int) -> bool:
        return _queue.remove(self.driver, queue, job_id)

    def put_back(self, queue: str, job_id: int, now: dt.datetime) -> bool:
        return _queue.put_back(self.driver, queue, job_id, now)

    def ensure_queue(self, queue: str, now: dt.datetime) -> None:
        _queue.ensure_queue(self.driver, queue, now)

    def set_annotation(self, job_id: int, name: str, value: Any, *, conn: Any = None) -> None:
        _queue.set_annotation(self.driver, job_id, name, value, conn)

    def lock_annotations(self, job_id: int, *, conn: Any = None) -> dict[str, Any]:
        return _queue.lock_annotations(self.driver, job_id, conn)

    def park(self, jobs: Sequence[NewJob], now: dt.datetime, *, conn: Any = None) -> list[int]:
        return _queue.park(self.driver, jobs, now, conn)

    def statuses(self, job_ids: Sequence[int], *, conn: Any = None) -> dict[int, str]:
        return _queue.statuses(self.driver, job_ids, conn)

    # -- a job's life --------------------------------------------------------------------------
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
        return _claim.claim(
            self.driver,
            self._claims,
            queue,
            dispatcher,
            agent,
            limit,
            now,
            accept,
            active_only,
            start,
            database_time,
        )

    def rate_limit_wake(self, queue: str) -> dt.datetime | None:
        return self._claims.rate_wakes.pop(queue, None)

    def claim_callbacks(
        self, queue: str, dispatcher: str, agent: str, limit: int, now: dt.datetime
    ) -> list[JobRecord]:
        return _claim.claim_callbacks(self.driver, queue, dispatcher, agent, limit, now)

    def start(self, job_id: int, attempt: int, dispatcher: str, now: dt.datetime) -> bool:
        return _claim.start(self.driver, job_id, attempt, dispatcher, now)

    def owns(self, job_id: int, attempt: int, dispatcher: str) -> bool:
        return _claim.owns(self.driver, job_id, attempt, dispatcher)

    def store_result(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        outcome: Outcome,
        now: dt.datetime,
        *,
        conn: Any = None,
    ) -> None:
        _outcomes.store_result(self.driver, job_id, attempt, dispatcher, outcome, now, conn)

    def store_result_later(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        outcome: Outcome,
        now: dt.datetime,
        then: Callable[[BaseException | None], None],
    ) -> None:
        _outcomes.store_result_later(self.driver, job_id, attempt, dispatcher, outcome, now, then)

    def reschedule(
        self,
        job_id: int,
        attempt: int,
        dispatcher: str,
        when: dt.datetime | None,
        retry_data: dict[str, Any],
        now: dt.datetime,
    ) -> None:
        _outcomes.reschedule(self.driver, job_id, attempt, dispatcher, when, retry_data, now)

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
    ) -> None:
        _outcomes.wait_on(self.driver, job_id, attempt, dispatcher, inner_id, retry_data, now, conn)

    def fail_unstarted(self, job_id: int, outcome: Outcome, now: dt.datetime) -> bool:
        return _outcomes.fail_unstarted(self.driver, job_id, outcome, now)

    def add_callback(
        self, parent_id: int, callback: NewJob, now: dt.datetime, *, conn: Any = None
    ) -> int:
        return _outcomes.add_callback(self.driver, parent_id, callback, now, conn)

    def retry_failed(self, job_id: int, now: dt.datetime) -> int | None:
        return _outcomes.retry_failed(self.driver, job_id, now)

    # -- dispatchers, agents and quotas --------------------------------------------------------
    def activate_dispatcher(
        self,
        uuid: str,
        host: str,
        pid: int,
        ping_interval: float,
        death_interval: float,
        now: dt.datetime | None,
    ) -> tuple[bool, DispatcherRecord | None]:
        return _dispatchers.activate_dispatcher(
            self.driver, uuid, host, pid, ping_interval, death_interval, now
        )

    def get_dispatcher(self, uuid: str) -> DispatcherRecord | None:
        return _dispatchers.get_dispatcher(self.driver, uuid)

    def ping(self, uuid: str, now: dt.datetime | None) -> bool:
        return _dispatchers.ping(self.driver, uuid, now)

    def reactivate_dispatcher(self, uuid: str, now: dt.datetime | None) -> None:
        _dispatchers.reactivate_dispatcher(self.driver, uuid, now)

    def deactivate_dispatcher(self, uuid: str, now: dt.datetime | None) -> None:
        _dispatchers.deactivate_dispatcher(self.driver, uuid, now)

    def deactivate_dead(
        self, now: dt.datetime | None, in_reach_for: float | None = None
    ) -> list[str]:
        return _dispatchers.deactivate_dead(self.driver, now, in_reach_for)

    def liveness_now(self) -> dt.datetime:
        return _dispatchers.liveness_now(self.driver)

    def set_dispatcher_intervals(
        self, uuid: str, ping_interval: float, death_interval: float
    ) -> bool:
        return _dispatchers.set_dispatcher_intervals(
            self.driver, uuid, ping_interval, death_interval
        )

    def orphans(self, limit: int = 100) -> list[JobRecord]:
        return _dispatchers.orphans(self.driver, limit)

    def dispatcher_jobs(self, uuid: str) -> list[JobRecord]:
        return _dispatchers.dispatcher_jobs(self.driver, uuid)

    def release(self, job_id: int, attempt: int, dispatcher: str) -> bool:
        return _dispatchers.release(self.driver, job_id, attempt, dispatcher)

    def set_agent(
        self,
        uuid: str,
        queue: str,
        name: str,
        size: int,
        filter: str | None,
        filter_seal: str | None = None,
    ) -> None:
        _dispatchers.set_agent(self.driver, uuid, queue, name, size, filter, filter_seal)

    def remove_agent(self, uuid: str, queue: str, name: str) -> bool:
        return _dispatchers.remove_agent(self.driver, uuid, queue, name)

    def clear_agents(self, uuid: str) -> None:
        _dispatchers.clear_agents(self.driver, uuid)

    def agents(self, uuid: str) -> list[AgentRecord]:
        return _dispatchers.agents(self.driver, uuid)

    def queue_quotas(self, queue: str) -> list[tuple[str, int]]:
        return _dispatchers.queue_quotas(self.driver, queue)

    def create_quota(self, queue: str, name: str, size: int) -> bool:
        return _dispatchers.create_quota(self.driver, queue, name, size)

    def resize_quota(self, queue: str, name: str, size: int) -> bool:
        return _dispatchers.resize_quota(self.driver, queue, name, size)

    def remove_quota(self, queue: str, name: str) -> bool:
        return _dispatchers.remove_quota(self.driver, queue, name)

    def quota_holders(self, queue: str, name: str) -> list[JobRecord]:
        return _dispatchers.quota_holders(self.driver, queue, name)

    def queue_rate_limits(self, queue: str) -> list[tuple[str, int, float]]:
        return _rate_limits.queue_rate_limits(self.driver, queue)

    def create_rate_limit(self, queue: str, name: str, limit: int, per: float) -> bool:
        return _rate_limits.create_rate_limit(self.driver, queue, name, limit, per)

    def change_rate_limit(self, queue: str, name: str, limit: int, per: float) -> bool:
        return _rate_limits.change_rate_limit(self.driver, queue, name, limit, per)

    def remove_rate_limit(self, queue: str, name: str, *, force: bool = False) -> int | None:
        return _rate_limits.remove_rate_limit(self.driver, queue, name, force)

    def rate_limits(self, queue: str | None, now: dt.datetime) -> list[RateLimitRecord]:
        return _rate_limits.rate_limits(self.driver, queue, now)

    # -- schedules -----------------------------------------------------------------------------
    def save_schedule(self, schedule: ScheduleRecord) -> None:
        _schedules.save_schedule(self.driver, schedule)

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        return _schedules.get_schedule(self.driver, name)

    def schedules(self) -> list[ScheduleRecord]:
        return _schedules.schedules(self.driver)

    def remove_schedule(self, name: str) -> bool:
        return _schedules.remove_schedule(self.driver, name)

    def set_schedule_paused(
        self, name: str, paused: bool, next_tick: dt.datetime | None, now: dt.datetime
    ) -> bool:
        return _schedules.set_schedule_paused(self.driver, name, paused, next_tick, now)

    def due_schedules(self, now: dt.datetime, limit: int = 50) -> list[ScheduleRecord]:
        return _schedules.due_schedules(self.driver, now, limit)

    def earliest_schedule_tick(self) -> dt.datetime | None:
        return _schedules.earliest_schedule_tick(self.driver)

    def fire_schedule(
        self,
        schedule: ScheduleRecord,
        ticks: Sequence[dt.datetime],
        next_tick: dt.datetime | None,
        now: dt.datetime,
        put_by: str | None = None,
    ) -> list[tuple[dt.datetime, int]] | None:
        return _schedules.fire_schedule(self.driver, schedule, ticks, next_tick, now, put_by)

    def schedule_ticks(self, name: str) -> list[tuple[dt.datetime, int | None]]:
        return _schedules.schedule_ticks(self.driver, name)

    def prune_schedule_ticks(self, before: dt.datetime) -> int:
        return _schedules.prune_schedule_ticks(self.driver, before)

    # -- monitoring ----------------------------------------------------------------------------
    def list_jobs(
        self, query: JobQuery, now: dt.datetime, *, offset: int = 0, limit: int = 50
    ) -> list[JobRecord]:
        return _monitor.list_jobs(self.driver, query, now, offset, limit)

    def count_jobs(self, query: JobQuery) -> int:
        return _monitor.count_jobs(self.driver, query)

    def job_stats(self, query: JobQuery, now: dt.datetime) -> JobStatsRecord:
        return _monitor.job_stats(self.driver, query, now)

    def job_children(self, job_id: int) -> list[JobRecord]:
        return _monitor.job_children(self.driver, job_id)

    def jobs_waiting_for(self, job_id: int) -> list[int]:
        return _monitor.jobs_waiting_for(self.driver, job_id)

    def list_dispatchers(self) -> list[DispatcherRecord]:
        return _monitor.list_dispatchers(self.driver)

    def agent_loads(self) -> list[AgentLoad]:
        return _monitor.agent_loads(self.driver)

    def queue_stats(self, now: dt.datetime) -> list[QueueStats]:
        return _monitor.queue_stats(self.driver, now)

    def throughput(
        self, since: dt.datetime, width: dt.timedelta, count: int
    ) -> list[ThroughputBucket]:
        return _monitor.throughput(self.driver, since, width, count)

    def job_totals(self, since: dt.datetime) -> list[JobTotals]:
        return _monitor.job_totals(self.driver, since)

    def set_queue_paused(self, queue: str, paused: bool) -> bool:
        return _monitor.set_queue_paused(self.driver, queue, paused)

    def paused_queues(self) -> set[str]:
        return _monitor.paused_queues(self.driver)

    def set_agent_size(self, queue: str, name: str, size: int, uuid: str | None = None) -> int:
        return _monitor.set_agent_size(self.driver, queue, name, size, uuid)

    def set_quota(self, queue: str, name: str, size: int) -> None:
        _monitor.set_quota(self.driver, queue, name, size)

    def quotas(self) -> list[tuple[str, str, int]]:
        return _monitor.quotas(self.driver)

    def prune(self, before: dt.datetime, *, batch: int = 500, max_batches: int = 20) -> PruneResult:
        return _monitor.prune(self.driver, before, batch, max_batches)

    def prune_expired(
        self,
        now: dt.datetime,
        forget_before: dt.datetime,
        *,
        batch: int = 500,
        max_batches: int = 20,
    ) -> int:
        return _monitor.prune_expired(self.driver, now, forget_before, batch, max_batches)

    def expired_job(self, job_id: int) -> ExpiredRecord | None:
        if not 0 < job_id <= MAX_ID:
            return None
        return _monitor.expired_job(self.driver, job_id)

    def last_job_id(self) -> int | None:
        return _monitor.last_job_id(self.driver)
