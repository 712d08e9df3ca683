"""Rows of the engines' queries as the records of `store.base` (and stored JSON as values).

Every operation reading jobs or dispatchers builds its records here, with the driver's time
conversion; a claim builds one per job, so these do no more than the fields need.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jobq.store.base import DispatcherRecord, JobRecord
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


# How `_job_record` reads a JSON column: (column, text, parser, value if damaged) -> value.
_JsonReader = Callable[[str, str | None, Callable[[str], Any], Any], Any]


def _strict(column: str, text: str | None, parse: Callable[[str], Any], empty: Any) -> Any:
    return None if text is None else parse(text)


def job_record(driver: Driver, row: Row) -> JobRecord:
    """A row with the columns of `get_job` as a record. A JSON column whose text cannot be
    read (a damaged row) is read as empty and named in the record's `damaged`, so that one
    bad row stops no claim, sweep or listing: the worker that claims it fails it."""
    try:
        return _job_record(driver, row, _strict)
    except ValueError:  # json.JSONDecodeError included
        damaged: list[str] = []

        def lenient(column: str, text: str | None, parse: Callable[[str], Any], empty: Any) -> Any:
            try:
                return _strict(column, text, parse, empty)
            except ValueError:
                damaged.append(column)
                return empty

        record = _job_record(driver, row, lenient)
        record.damaged = tuple(damaged)
        return record


def _job_record(driver: Driver, row: Row, json_of: _JsonReader) -> JobRecord:
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
        retry_data=json_of("retry_data", row["retry_data"], json_dict, {}),
        failure_log_level=row["failure_log_level"],
        quota_names=json_of("quota_names", row["quota_names"], json_names, ()),
        annotations=json_of("annotations", row["annotations"], json_dict, {}),
        attempt=row["attempt"],
        dispatcher_uuid=row["dispatcher_uuid"],
        agent_name=row["agent_name"],
        put_by=row["put_by"],
        parent_id=row["parent_id"],
        waiting_on=row["waiting_on"],
        result_repr=row["result_repr"],
        failed=bool(row["failed"]),
        failure=json_of("failure", row["failure"], json_dict, None),
        created=d(row["created"]),
        assigned_at=None if (t := row["assigned_at"]) is None else d(t),
        active_start=None if (t := row["active_start"]) is None else d(t),
        active_end=None if (t := row["active_end"]) is None else d(t),
        completed_at=None if (t := row["completed_at"]) is None else d(t),
    )


def job_records(driver: Driver, rows: list[Row]) -> list[JobRecord]:
    return [job_record(driver, r) for r in rows]


def dispatcher_record(driver: Driver, row: Row) -> DispatcherRecord:
    """A row of `jobq_dispatchers` as a record (its times converted in place)."""
    for key in _DISPATCHER_TIMES:
        if row[key] is not None:
            row[key] = driver.from_db_time(row[key])
    return DispatcherRecord(**row)
