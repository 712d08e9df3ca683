"""JSON rendering as the original's monitor did (catalogue 8.2): sorted keys, indent 4;
a timedelta is `{days, hours, minutes, seconds}` without its zero parts (`{"seconds": 0.0}`
when all are zero); a datetime is ISO 8601 UTC with a `Z`; a UUID is its string; a job is
its id; the monitor's view records (`View`) map themselves with `to_json()`; other records
(dataclasses) become objects. `duration_text` is the one human text of a duration that the
CLI's tables and the web pages show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any

from jobq.store.base import JobRecord


class View:
    """Base of the monitor's view records (`jobq.monitor.views`): each maps itself to the
    catalogue's JSON with `to_json()`."""

    __slots__ = ()

    def to_json(self) -> Any:
        raise NotImplementedError


def json_key(label: str) -> str:
    """A display label as a JSON key: "last ping" -> "last_ping"."""
    return label.replace(" ", "_")


def snake_keys(value: Any, depth: int | None = None) -> Any:
    """`value` with the spaces of its mappings' keys made underscores, `depth` levels deep
    (None: all). For fixed field names only: not for mappings keyed by names (queues)."""
    if depth == 0:
        return value
    below = None if depth is None else depth - 1
    if isinstance(value, dict):
        return {json_key(str(k)): snake_keys(v, below) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v, below) for v in value]
    return value


def worker_snapshot_json(snapshot: Any) -> Any:
    """A worker's status snapshot (`WorkerStats.snapshot()`, or its JSON as read back) with
    snake_case keys (`active_jobs`, `poll_interval`...), its queue and agent names kept."""
    data = snake_keys(to_jsonable(snapshot), 1)
    for key in ("status", "statistics", "totals"):
        if isinstance(data.get(key), dict):
            data[key] = snake_keys(data[key], 1)
    for poll in data.get("polls") or ():
        for agents in (poll.get("results") or {}).values():
            for name, load in agents.items():
                agents[name] = snake_keys(load, 1)
    return data


def duration_text(value: dt.timedelta) -> str:
    """A duration for people: `1.25s` under a minute, else its non-zero parts (`2h 5s`)."""
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return sign + " ".join(f"{n}{u}" for n, u in parts if n)


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
    if isinstance(value, View):
        return value.to_json()
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
