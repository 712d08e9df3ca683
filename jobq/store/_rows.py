"""Rows of the engines' queries as the records of `store.base` (and stored JSON as values).

Every operation reading jobs or dispatchers builds its records here, with the driver's time
conversion; a claim builds one per job, so these do no more than the fields need.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from jobq.store.base import DispatcherRecord, JobRecord, NewJob
from jobq.store.driver import Driver, Row

_DISPATCHER_TIMES = ("started", "last_ping", "activated", "deactivated")


def json_dict(text: str) -> dict[str, Any]:
    """A stored JSON object; most are empty, and a claim reads several per job. ValueError
    if the text is not a JSON object."""
    if text == "{}":
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object: {text[:80]!r}")
    return value


def json_names(text: str) -> tuple[str, ...]:
    """A stored JSON list of names (a job's quota names). ValueError if it is not one."""
    if text == "[]":
        return ()
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"not a JSON list of names: {text[:80]!r}")
    return tuple(value)


# The JSON columns of a job row: (column, how it is read, the text a damaged one is read as).
_JSON_COLUMNS: tuple[tuple[str, Callable[[str], Any], str | None], ...] = (
    ("retry_data", json_dict, "{}"),
    ("quota_names", json_names, "[]"),
    ("rate_limits", json_names, "[]"),
    ("annotations", json_dict, "{}"),
    ("failure", json_dict, None),
)


def job_record(driver: Driver, row: Row) -> JobRecord:
    """A row with the columns of `get_job` as a record. A JSON column whose text cannot be
    read (a damaged row) is read as empty and named in the record's `damaged`, so that one
    bad row stops no claim, sweep or listing: the worker that claims it fails it."""
    try:
        return _job_record(driver, row)
    except ValueError:  # json.JSONDecodeError included
        return _damaged_job_record(driver, row)


def _damaged_job_record(driver: Driver, row: Row) -> JobRecord:
    fixed = dict(row)
    damaged = []
    for column, read, empty in _JSON_COLUMNS:
        if row[column] is None:
            continue
        try:
            read(row[column])
        except ValueError:
            damaged.append(column)
            fixed[column] = empty
    record = _job_record(driver, fixed)
    record.damaged = tuple(damaged)
    return record


def _job_record(driver: Driver, row: Row) -> JobRecord:
    d = driver.from_db_time
    return JobRecord(
        id=row["id"],
        queue=row["queue"],
        status=row["status"],
        lane=row["lane"],
        begin_after=d(row["begin_after"]),
        begin_by=row["begin_by"],
        job_class=row["job_class"],
        call=bytes(row["call"]),
        call_repr=row["call_repr"],
        retry_policy=row["retry_policy"],
        retry_data=json_dict(row["retry_data"]),
        failure_log_level=row["failure_log_level"],
        quota_names=() if (q := row["quota_names"]) == "[]" else json_names(q),
        annotations=json_dict(row["annotations"]),
        attempt=row["attempt"],
        dispatcher_uuid=row["dispatcher_uuid"],
        agent_name=row["agent_name"],
        put_by=row["put_by"],
        parent_id=row["parent_id"],
        waiting_on=row["waiting_on"],
        result_repr=row["result_repr"],
        failed=bool(row["failed"]),
        failure=None if (f := row["failure"]) is None else json_dict(f),
        created=d(row["created"]),
        assigned_at=None if (t := row["assigned_at"]) is None else d(t),
        active_start=None if (t := row["active_start"]) is None else d(t),
        active_end=None if (t := row["active_end"]) is None else d(t),
        completed_at=None if (t := row["completed_at"]) is None else d(t),
        rate_limits=() if (r := row["rate_limits"]) == "[]" else json_names(r),
        unique_key=row["unique_key"],
        unique_while=row["unique_while"],
        priority=row["priority"],
        keep_result=row["keep_result"],
        expires_at=None if (t := row["expires_at"]) is None else d(t),
    )


def job_records(driver: Driver, rows: list[Row]) -> list[JobRecord]:
    return [job_record(driver, r) for r in rows]


def dispatcher_record(driver: Driver, row: Row) -> DispatcherRecord:
    """A row of `jobq_dispatchers` as a record (its times converted in place)."""
    for key in _DISPATCHER_TIMES:
        if row[key] is not None:
            row[key] = driver.from_db_time(row[key])
    return DispatcherRecord(**row)


def json_columns(job: NewJob) -> tuple[str, str, str]:
    """A job's retry_data, quota_names and rate_limits as stored: JSON text (the empty ones,
    most jobs', without encoding)."""
    return (
        json.dumps(job.retry_data) if job.retry_data else "{}",
        json.dumps(list(job.quota_names)) if job.quota_names else "[]",
        json.dumps(list(job.rate_limits)) if job.rate_limits else "[]",
    )


def insert_params(driver: Driver, job: NewJob, status: str, now: dt.datetime) -> dict[str, Any]:
    """The named parameters of a job's insert (insert_job, insert_and_notify, and with its
    unique options insert_unique), for `job` put at `now` with `status`."""
    retry_data, quota_names, rate_limits = json_columns(job)
    return dict(
        queue=job.queue,
        status=status,
        sort_at=driver.to_db_time(max(job.begin_after, now)),
        begin_after=driver.to_db_time(job.begin_after),
        begin_by=job.begin_by,
        job_class=job.job_class,
        call=job.call,
        call_repr=job.call_repr,
        retry_policy=job.retry_policy,
        retry_data=retry_data,
        failure_log_level=job.failure_log_level,
        quota_names=quota_names,
        rate_limits=rate_limits,
        put_by=job.put_by,
        parent_id=job.parent_id,
        now=driver.to_db_time(now),
        priority=job.priority,
        keep_result=job.keep_result,
    )
