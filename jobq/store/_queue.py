"""Jobs in their queues: putting (`enqueue`, `requeue`, `park`), reading a job, the pending
jobs of a queue in order, taking one out (`pull`, `remove`) or back to the front
(`put_back`), and a job's annotations (a composite's state).

Functions of `SqlStore`'s operations, each over the engine's `Driver`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from jobq.errors import BadStatusError, JobNotFound
from jobq.store._rows import insert_params, job_record, job_records
from jobq.store.base import JobRecord, NewJob
from jobq.store.driver import Driver, Executor


def ensure_queue(driver: Driver, queue: str, now: dt.datetime) -> None:
    """Record `queue` if it is new; a known one is only read (no write lock to wait for)."""
    with driver.read() as ex:
        if ex.one("queue_exists", queue=queue) is not None:
            return
    with driver.transaction() as ex:
        ex.run("ensure_queue", queue=queue, now=driver.to_db_time(now))


def enqueue(
    driver: Driver, jobs: Sequence[NewJob], now: dt.datetime, conn: object | None
) -> list[int]:
    """Insert `jobs` as pending, all or none; their ids in order."""
    if conn is None and len(jobs) == 1:
        return [driver.put_one(jobs[0], now)]  # the engine's fastest commit of a single put
    with driver.transaction(conn) as ex:
        ids = driver.insert_jobs(ex, jobs, "pending", now)
        for queue in {job.queue for job in jobs}:
            driver.notify(ex, queue)
    return ids


def enqueue_unique(
    driver: Driver, jobs: Sequence[NewJob], now: dt.datetime, conn: object | None
) -> list[tuple[int, str]]:
    """Insert `jobs` as pending, all or none, honouring each row's unique key: (id, outcome)
    in order, outcome "created" (a new job), "existing" (the job holding the key, unchanged)
    or "replaced" (the pending holder, which took this row's call and times)."""
    results = []
    with driver.transaction(conn) as ex:
        for job in jobs:
            if job.unique_key is None:
                results.append((driver.insert_job(ex, job, "pending", now), "created"))
            else:
                results.append(_put_unique(driver, ex, job, now))
        if any(outcome != "existing" for _, outcome in results):
            for queue in {job.queue for job in jobs}:
                driver.notify(ex, queue)
    return results


def _put_unique(driver: Driver, ex: Executor, job: NewJob, now: dt.datetime) -> tuple[int, str]:
    """One row with a unique key, in `ex`'s transaction. Each decision is one statement that
    both checks and writes (an upsert on the partial unique index, or on jobq_unique_keys),
    so no two producers can both make a job for one key."""
    key = dict(queue=job.queue, unique_key=job.unique_key)
    params = _unique_params(driver, job, now)
    if job.unique_for is not None:
        until = now + dt.timedelta(seconds=job.unique_for)
        took = ex.one(
            "take_unique_window",
            **key,
            until=driver.to_db_time(until),
            now=driver.to_db_time(now),
        )
        if took is None:  # put within the period of an earlier put: that put's job
            row = ex.one("unique_window_job", **key)
            assert row is not None and row["job_id"] is not None
            return _conflict(ex, job, int(row["job_id"]), params)
    for _ in range(100):
        row = ex.one("insert_unique", **params)
        if row is not None:
            result = (int(row["id"]), "created")
            break
        holder = ex.one("unique_holder", **key)
        if holder is not None:
            result = _conflict(ex, job, int(holder["id"]), params)
            break
        # The holder let go of the key between the two statements (claimed, completed): the
        # insert tries again.
    else:  # pragma: no cover - a key taken and released a hundred times in a row
        raise RuntimeError(f"unique key {job.unique_key!r}: no stable holder; try again")
    if job.unique_for is not None:
        ex.run("set_unique_window_job", **key, job_id=result[0])
    return result


def _conflict(ex: Executor, job: NewJob, holder: int, params: dict[str, Any]) -> tuple[int, str]:
    if job.replace and ex.run("replace_unique", **params, id=holder):
        return holder, "replaced"
    return holder, "existing"


def _unique_params(driver: Driver, job: NewJob, now: dt.datetime) -> dict[str, Any]:
    """The named parameters of insert_unique (and replace_unique) for `job`, put at `now`."""
    params = insert_params(driver, job, "pending", now)
    params.update(unique_key=job.unique_key, unique_while=job.unique_while)
    return params


def prune_unique_keys(driver: Driver, now: dt.datetime) -> int:
    """Forget the unique_for periods over at `now`."""
    with driver.transaction() as ex:
        return ex.run("prune_unique_keys", now=driver.to_db_time(now))


def park(
    driver: Driver, jobs: Sequence[NewJob], now: dt.datetime, conn: object | None
) -> list[int]:
    """Store jobs as "new": out of any queue until `requeue` puts them (composition)."""
    with driver.transaction(conn) as ex:
        return driver.insert_jobs(ex, jobs, "new", now)


def requeue(
    driver: Driver,
    job_id: int,
    queue: str,
    begin_after: dt.datetime,
    begin_by: float | None,
    put_by: str | None,
    now: dt.datetime,
    conn: object | None,
    quota_names: Sequence[str] | None,
    rate_limits: Sequence[str] | None = None,
    priority: int = 0,
) -> bool:
    with driver.transaction(conn) as ex, _key_held(job_id, queue):
        n = ex.run(
            "requeue",
            priority=priority,
            id=job_id,
            queue=queue,
            sort_at=driver.to_db_time(max(begin_after, now)),
            begin_after=driver.to_db_time(begin_after),
            begin_by=begin_by,
            put_by=put_by,
            quota_names=None if quota_names is None else json.dumps(list(quota_names)),
            rate_limits=None if rate_limits is None else json.dumps(list(rate_limits)),
        )
        if n:
            driver.notify(ex, queue)
        return n == 1


@contextlib.contextmanager
def _key_held(job_id: int, queue: str) -> Iterator[None]:
    """A pulled job put again whose unique key another job holds now: a clear refusal."""
    try:
        yield
    except Exception as error:
        unique = getattr(error, "sqlstate", None) == "23505" or (
            isinstance(error, sqlite3.IntegrityError) and "unique_key" in str(error)
        )
        if not unique:
            raise
        raise BadStatusError(
            f"job {job_id} cannot be queued again in {queue!r}: another job holds its unique "
            f"key now (put while this one was pulled); remove one of them"
        ) from None


def get(driver: Driver, job_id: int) -> JobRecord | None:
    with driver.read() as ex:
        row = ex.one("get_job", id=job_id)
    return None if row is None else job_record(driver, row)


def get_result(driver: Driver, job_id: int) -> bytes | None:
    with driver.read() as ex:
        row = ex.one("get_result", id=job_id)
    if row is None:
        raise JobNotFound(f"no job with id {job_id}")
    return None if row["result"] is None else bytes(row["result"])


def statuses(driver: Driver, job_ids: Sequence[int], conn: object | None) -> dict[int, str]:
    """The status of each job that exists, read without locking (in `conn`'s transaction,
    so its own uncommitted writes count)."""
    found: dict[int, str] = {}
    with driver.transaction(conn) as ex:
        for job_id in job_ids:
            row = ex.one("get_job", id=job_id)
            if row is not None:
                found[job_id] = row["status"]
    return found


def pending(driver: Driver, queue: str, offset: int, limit: int) -> list[JobRecord]:
    with driver.read() as ex:
        rows = ex.all("pending_jobs", queue=queue, offset=offset, limit=limit)
    return job_records(driver, rows)


def count_pending(driver: Driver, queue: str) -> int:
    with driver.read() as ex:
        row = ex.one("count_pending", queue=queue)
    return int(row["n"]) if row else 0


def pull(driver: Driver, queue: str, index: int) -> JobRecord | None:
    """Take the pending job at `index` of the queue's order (negative: from the end) out of
    the queue."""
    for _ in range(5):  # a concurrent claim may take the job between the two statements
        with driver.transaction() as ex:
            if index >= 0:
                rows = ex.all("pending_jobs", queue=queue, offset=index, limit=1)
            else:
                rows = ex.all("pending_jobs_reversed", queue=queue, offset=-index - 1)
            if not rows:
                return None
            job_id = rows[0]["id"]
            if ex.run("unqueue", id=job_id, queue=queue):
                row = ex.one("get_job", id=job_id)
                assert row is not None
                return job_record(driver, row)
    return None


def remove(driver: Driver, queue: str, job_id: int) -> bool:
    with driver.transaction() as ex:
        return ex.run("unqueue", id=job_id, queue=queue) == 1


def put_back(driver: Driver, queue: str, job_id: int, now: dt.datetime) -> bool:
    """Put a pending job at the front of its queue."""
    with driver.transaction() as ex, _key_held(job_id, queue):
        n = ex.run("put_back", id=job_id, queue=queue, now=driver.to_db_time(now))
        if n:
            driver.notify(ex, queue)
        return n == 1


# -- annotations -------------------------------------------------------------------------------
def annotate(ex: Executor, job_id: int, name: str, encoded: str) -> None:
    """Set annotation `name` of `job_id` to the JSON text `encoded`, under the job's lock."""
    if ex.one("lock_job", id=job_id) is None:
        raise JobNotFound(f"no job with id {job_id}")
    current = ex.one("get_annotations", id=job_id)
    assert current is not None
    annotations = json.loads(current["annotations"])
    annotations[name] = json.loads(encoded)
    ex.run("set_annotation", id=job_id, annotations=json.dumps(annotations))


def set_annotation(driver: Driver, job_id: int, name: str, value: Any, conn: object | None) -> None:
    encoded = json.dumps(value)  # fail before touching the row
    with driver.transaction(conn) as ex:
        annotate(ex, job_id, name, encoded)


def lock_annotations(driver: Driver, job_id: int, conn: object | None) -> dict[str, Any]:
    """Lock the job's row (until `conn`'s transaction ends) and return its annotations."""
    with driver.transaction(conn) as ex:
        if ex.one("lock_job", id=job_id) is None:
            raise JobNotFound(f"no job with id {job_id}")
        row = ex.one("get_annotations", id=job_id)
        assert row is not None
        return dict(json.loads(row["annotations"]))
