"""The monitoring part of the store (`store.base.MonitorStore`), over `sql/<engine>/monitor.sql`:
listings and counts of jobs, statistics, throughput, operator actions and retention.

Functions of `SqlStore`'s operations, each over the engine's `Driver`. Globs become LIKE
patterns here, so both engines match the same way (case-insensitively). Pruning deletes in
small batches, one short transaction each, so workers claiming at the same time never wait
long.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from typing import Any

from jobq.store._rows import dispatcher_record, job_record, job_records
from jobq.store.base import (
    AgentLoad,
    DispatcherRecord,
    ExpiredRecord,
    JobQuery,
    JobRecord,
    JobStatsRecord,
    JobTotals,
    PruneResult,
    QueueStats,
    ThroughputBucket,
)
from jobq.store.driver import Driver, Executor, Row

_HELD = ("assigned", "active", "callbacks")
# A listing of pending jobs reads each queue's pending index and merges the queues' rows; with
# more queues than this holding pending jobs, one read of every pending row costs less.
MERGED_QUEUES_MOST = 100


def glob_to_like(pattern: str) -> str:
    """A shell glob (`*`, `?`) as a LIKE pattern with backslash as the escape character."""
    out = []
    for char in pattern:
        if char in "\\%_":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)


def _time(driver: Driver, value: dt.datetime | None) -> object:
    return None if value is None else driver.to_db_time(value)


def filter_params(driver: Driver, query: JobQuery) -> Row:
    """The parameters of the monitoring queries' shared filter (`_job_filter`) for `query`."""
    name = query.callable
    dotted = name is not None and "." in name
    return dict(
        states=driver.to_db_list(list(query.states)),
        failed=query.failed,
        queue=None if query.queue is None else glob_to_like(query.queue),
        agent=None if query.agent is None else glob_to_like(query.agent),
        uuid=query.uuid,
        queues=None if query.queues is None else driver.to_db_list(list(query.queues)),
        call_name=glob_to_like(name) if name is not None and dotted else None,
        call_short=glob_to_like(name) if name is not None and not dotted else None,
        requested_since=_time(driver, query.requested_since),
        requested_before=_time(driver, query.requested_before),
        start_since=_time(driver, query.start_since),
        start_before=_time(driver, query.start_before),
        end_since=_time(driver, query.end_since),
        end_before=_time(driver, query.end_before),
        completed_since=_time(driver, query.completed_since),
        completed_before=_time(driver, query.completed_before),
        priority_min=query.priority_min,
        priority_max=query.priority_max,
    )


def _get_in(driver: Driver, ex: Executor, job_id: int | None) -> JobRecord | None:
    if job_id is None:
        return None
    row = ex.one("get_job", id=job_id)
    return None if row is None else job_record(driver, row)


# -- jobs --------------------------------------------------------------------------------------
def list_jobs(
    driver: Driver, query: JobQuery, now: dt.datetime, offset: int, limit: int
) -> list[JobRecord]:
    if not query.states:
        return []
    params = dict(offset=max(0, offset), limit=max(0, limit), **filter_params(driver, query))
    with driver.read() as ex:
        if tuple(query.states) == ("completed",):
            # Completed jobs only: along the completed index, stopping at the limit.
            rows = ex.all("monitor_completed_jobs", **params)
        elif set(query.states) <= set(_HELD):
            # Held jobs only: the dispatcher index holds them all, and they are few.
            rows = ex.all("monitor_held_jobs", **params)
        elif tuple(query.states) == ("pending",):
            rows = _pending_rows(ex, params)
        else:
            rows = ex.all("monitor_jobs", **params)
    return job_records(driver, rows)


def _pending_rows(ex: Executor, params: dict[str, Any]) -> list[Row]:
    """Pending jobs in queue order (put back first, then by when they became due), across
    queues: each queue's first `offset + limit` rows along its pending index, merged. The
    order is the general listing's, without sorting every pending row."""
    first = params["offset"] + params["limit"]
    if first == 0:
        return []
    queues = [r["queue"] for r in ex.all("monitor_pending_queues", **params)]
    if len(queues) > MERGED_QUEUES_MOST:
        return ex.all("monitor_jobs", **params)
    per_queue = [
        ex.all("monitor_pending_jobs", pending_queue=queue, first=first, **params)
        for queue in queues
    ]
    merged = heapq.merge(
        *per_queue, key=lambda r: (r["lane"], -r["priority"], r["sort_at"], r["id"])
    )
    return list(itertools.islice(merged, params["offset"], first))


def count_jobs(driver: Driver, query: JobQuery) -> int:
    if not query.states:
        return 0
    with driver.read() as ex:
        row = ex.one("monitor_count", **filter_params(driver, query))
    return int(row["n"]) if row else 0


def job_stats(driver: Driver, query: JobQuery, now: dt.datetime) -> JobStatsRecord:
    counts = dict.fromkeys(("pending", "assigned", "active", "callbacks", "succeeded", "failed"), 0)
    if not query.states:
        return JobStatsRecord(counts, None, None, None, None)
    params = filter_params(driver, query)
    at = driver.to_db_time(now)
    with driver.read() as ex:
        for row in ex.all("monitor_state_counts", **params):
            status = row["status"]
            if status == "completed":
                status = "failed" if row["failed"] else "succeeded"
            if status in counts:
                counts[status] += int(row["n"])
        wait = ex.one("monitor_wait_extremes", now=at, **params) or {}
        active = ex.one("monitor_active_extremes", now=at, **params) or {}
        return JobStatsRecord(
            counts,
            _get_in(driver, ex, wait.get("longest_id")),
            _get_in(driver, ex, wait.get("shortest_id")),
            _get_in(driver, ex, active.get("longest_id")),
            _get_in(driver, ex, active.get("shortest_id")),
        )


def job_children(driver: Driver, job_id: int) -> list[JobRecord]:
    with driver.read() as ex:
        return job_records(driver, ex.all("monitor_children", id=job_id))


def jobs_waiting_for(driver: Driver, job_id: int) -> list[int]:
    with driver.read() as ex:
        return [int(r["id"]) for r in ex.all("monitor_waiting_for", id=job_id)]


# -- dispatchers, agents, queues ---------------------------------------------------------------
def list_dispatchers(driver: Driver) -> list[DispatcherRecord]:
    with driver.read() as ex:
        rows = ex.all("monitor_dispatchers")
    return [dispatcher_record(driver, row) for row in rows]


def agent_loads(driver: Driver) -> list[AgentLoad]:
    with driver.read() as ex:
        agents = ex.all("monitor_agents")
        loads = ex.all("monitor_agent_load")
    held: dict[tuple[str, str, str], dict[str, int]] = {}
    for row in loads:
        key = (row["dispatcher_uuid"], row["queue"], row["agent_name"])
        held.setdefault(key, {})[row["state"]] = int(row["n"])
    out = []
    for a in agents:
        counts = held.get((a["dispatcher_uuid"], a["queue"], a["name"]), {})
        out.append(
            AgentLoad(
                dispatcher_uuid=a["dispatcher_uuid"],
                queue=a["queue"],
                name=a["name"],
                size=int(a["size"]),
                filter=a["filter"],
                assigned=counts.get("assigned", 0),
                active=counts.get("active", 0),
                callbacks=counts.get("callbacks", 0),
                waiting=counts.get("waiting", 0),
            )
        )
    return out


def queue_stats(driver: Driver, now: dt.datetime) -> list[QueueStats]:
    with driver.read() as ex:
        queues = {r["name"]: bool(r["paused"]) for r in ex.all("monitor_queues")}
        counts = ex.all("monitor_queue_counts")
        due_rows = ex.all("monitor_due_counts", now=driver.to_db_time(now))
    due = {r["queue"]: int(r["n"]) for r in due_rows}
    per: dict[str, dict[str, int]] = {}
    for row in counts:
        status = row["status"]
        if status == "completed":
            status = "failed" if row["failed"] else "succeeded"
        per.setdefault(row["queue"], {})
        per[row["queue"]][status] = per[row["queue"]].get(status, 0) + int(row["n"])
    names = sorted(set(queues) | set(per))
    return [
        QueueStats(
            name=name,
            paused=queues.get(name, False),
            pending=per.get(name, {}).get("pending", 0),
            due=due.get(name, 0),
            assigned=per.get(name, {}).get("assigned", 0),
            active=per.get(name, {}).get("active", 0),
            callbacks=per.get(name, {}).get("callbacks", 0),
            succeeded=per.get(name, {}).get("succeeded", 0),
            failed=per.get(name, {}).get("failed", 0),
        )
        for name in names
    ]


def throughput(
    driver: Driver, since: dt.datetime, width: dt.timedelta, count: int
) -> list[ThroughputBucket]:
    seconds = width.total_seconds()
    if seconds <= 0 or count <= 0:
        raise ValueError("throughput needs a positive bucket width and count")
    with driver.read() as ex:
        rows = ex.all("monitor_buckets", since=driver.to_db_time(since), width=seconds)
    buckets = [ThroughputBucket(since + i * width, 0, 0) for i in range(count)]
    for row in rows:
        i = int(row["bucket"])
        if 0 <= i < count:
            b = buckets[i]
            n = int(row["n"])
            buckets[i] = ThroughputBucket(
                b.start,
                b.succeeded + (0 if row["failed"] else n),
                b.failed + (n if row["failed"] else 0),
            )
    return buckets


def job_totals(driver: Driver, since: dt.datetime) -> list[JobTotals]:
    with driver.read() as ex:
        rows = ex.all("monitor_totals", since=driver.to_db_time(since))
    return [
        JobTotals(
            queue=r["queue"],
            failed=bool(r["failed"]),
            count=int(r["n"]),
            active_sum=float(r["active_sum"]),
            active_max=float(r["active_max"]),
            wait_sum=float(r["wait_sum"]),
            retries=int(r["retries"]),
            interruptions=int(r["interruptions"]),
        )
        for r in rows
    ]


# -- operator actions --------------------------------------------------------------------------
def set_queue_paused(driver: Driver, queue: str, paused: bool) -> bool:
    """Pause or resume `queue`; False if there is no such queue (nothing is created)."""
    with driver.transaction() as ex:
        return ex.run("monitor_set_paused", queue=queue, paused=paused) > 0


def paused_queues(driver: Driver) -> set[str]:
    with driver.read() as ex:
        return {r["name"] for r in ex.all("monitor_paused_queues")}


def set_agent_size(driver: Driver, queue: str, name: str, size: int, uuid: str | None) -> int:
    if size < 0:
        raise ValueError(f"an agent's size must be >= 0, got {size}")
    with driver.transaction() as ex:
        return ex.run("monitor_set_agent_size", queue=queue, name=name, size=size, uuid=uuid)


def set_quota(driver: Driver, queue: str, name: str, size: int) -> None:
    if size < 1:
        raise ValueError(f"a quota's size must be >= 1, got {size}")
    with driver.transaction() as ex:
        ex.one("lock_queue_quotas", queue=queue)  # it may create one: as create_quota
        ex.run("monitor_set_quota", queue=queue, name=name, size=size)
        driver.notify(ex, queue)  # a larger quota may let waiting jobs go


def quotas(driver: Driver) -> list[tuple[str, str, int]]:
    with driver.read() as ex:
        return [(r["queue"], r["name"], int(r["size"])) for r in ex.all("monitor_quotas")]


# -- retention ---------------------------------------------------------------------------------
def prune(driver: Driver, before: dt.datetime, batch: int, max_batches: int) -> PruneResult:
    """Delete completed jobs finished before `before` (and dispatcher records not active
    since then), `batch` rows per short transaction, at most `max_batches` batches."""
    at = driver.to_db_time(before)
    jobs = 0
    for _ in range(max_batches):
        with driver.transaction() as ex:
            n = ex.run("monitor_prune_jobs", before=at, limit=batch)
        jobs += max(0, n)
        if n < batch:
            break
    dispatchers = 0
    with driver.read() as ex:
        rows = ex.all("monitor_prunable_dispatchers", before=at, limit=batch)
    for uuid in [r["uuid"] for r in rows]:
        with driver.transaction() as ex:
            if ex.run("monitor_delete_dispatcher", uuid=uuid):
                ex.run("monitor_delete_agents", uuid=uuid)
                dispatchers += 1
    return PruneResult(jobs, dispatchers)


def prune_expired(
    driver: Driver, now: dt.datetime, forget_before: dt.datetime, batch: int, max_batches: int
) -> int:
    """Delete jobs whose keep_result expiry is past, `batch` per short transaction (at most
    `max_batches`), each recorded in `jobq_expired` in the transaction that deletes it; then
    forget the records written before `forget_before`, in batches the same way."""
    at = driver.to_db_time(now)
    expired = 0
    for _ in range(max_batches):
        with driver.transaction() as ex:
            ids = [r["id"] for r in ex.all("monitor_expired_jobs", now=at, limit=batch)]
            if ids:
                listed = driver.to_db_list(ids)
                ex.run("monitor_record_expired", ids=listed, now=at)
                ex.run("monitor_delete_jobs", ids=listed)
        expired += len(ids)
        if len(ids) < batch:
            break
    forget = driver.to_db_time(forget_before)
    for _ in range(max_batches):
        with driver.transaction() as ex:
            n = ex.run("monitor_forget_expired", before=forget, limit=batch)
        if n < batch:
            break
    return expired


def expired_job(driver: Driver, job_id: int) -> ExpiredRecord | None:
    with driver.read() as ex:
        row = ex.one("get_expired", id=job_id)
    if row is None:
        return None
    d = driver.from_db_time
    return ExpiredRecord(
        id=int(row["id"]),
        queue=row["queue"],
        completed_at=d(row["completed_at"]),
        expires_at=d(row["expires_at"]),
        keep_result=float(row["keep_result"]),
        pruned_at=d(row["pruned_at"]),
    )


def last_job_id(driver: Driver) -> int | None:
    with driver.read() as ex:
        row = ex.one("last_job_id")
    return None if row is None or row["id"] is None else int(row["id"])
