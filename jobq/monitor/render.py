"""JSON rendering as the original's monitor did (catalogue 8.2): sorted keys, indent 4;
a timedelta is `{days, hours, minutes, seconds}` without its zero parts (`{"seconds": 0.0}`
when all are zero); a datetime is ISO 8601 UTC with a `Z`; a UUID is its string; a job is
its id; records (dataclasses) become objects.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any

from jobq.store.base import JobRecord


def timedelta_json(value: dt.timedelta) -> dict[str, float]:
    total = value.total_seconds()
    sign = -1 if total < 0 else 1
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out: dict[str, float] = {}
    if days:
        out["days"] = sign * int(days)
    if hours:
        out["hours"] = sign * int(hours)
    if minutes:
        out["minutes"] = sign * int(minutes)
    if seconds or not out:
        out["seconds"] = sign * round(seconds, 6)
    return out


def datetime_json(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for monitor values (see the module docstring)."""
    if isinstance(value, dt.timedelta):
        return timedelta_json(value)
    if isinstance(value, dt.datetime):
        return datetime_json(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, JobRecord):
        return value.id
    if isinstance(value, bytes):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [to_jsonable(v) for v in items]
    return value


def to_json(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True, indent=4)
