"""Execution time limits: how long a job may run, and the grace it gets once asked to stop.

A job's own limit (`put(..., timeout=...)`) is saved with it, in its retry data under
`TIMEOUT` (seconds), as `put(retries=N)` saves N: every worker, a restarted one too, reads it
from the row, and `jobq retry` keeps it. A job without one gets its worker's `job_timeout`,
if the worker has one. When the limit passes, the worker requests the job's stop
(`jobq.local.stop_requested()` answers True); once the grace period passes as well, it takes
the attempt away (see `jobq.worker.timeouts`). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

TIMEOUT = "timeout"
"""The key of a job's retry data holding its own time limit, in seconds."""

GRACE_FRACTION = 0.1
GRACE_MOST = 30.0
"""Without a configured grace, a job gets a tenth of its limit, at most 30 seconds."""


def seconds_of(value: object, name: str) -> float:
    """`value` (a timedelta, or a number of seconds) as seconds > 0; a TypeError or
    ValueError naming `name`, the value and the rule otherwise."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"{name} must be a timedelta or a number of seconds > 0 (how long the job may "
            f"run), got {type(value).__name__} {value!r}"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(
            f"{name} must be > 0 (how long the job may run; give none for no limit), got {value!r}"
        )
    return seconds


def check_limit(
    timeout: object, grace: float | None, name: str = "timeout", grace_name: str = "grace"
) -> float:
    """A time limit in seconds, refused if it is not > 0 or if it is shorter than `grace`
    (a configured grace period, in seconds): the stop would come after the job is taken."""
    seconds = seconds_of(timeout, name)
    if grace is not None and seconds < grace:
        raise ValueError(
            f"{name} ({seconds:g} s) must not be shorter than the grace period ({grace:g} s) a "
            f"job gets once its stop is requested; give a longer {name} or a shorter "
            f"{grace_name}"
        )
    return seconds


def check_grace(grace: object, name: str = "timeout_grace") -> float:
    """A configured grace period in seconds (>= 0)."""
    if isinstance(grace, dt.timedelta):
        seconds = grace.total_seconds()
    elif isinstance(grace, int | float) and not isinstance(grace, bool):
        seconds = float(grace)
    else:
        raise TypeError(f"{name} must be a number of seconds >= 0, got {grace!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"{name} must be >= 0 (seconds a job over its time limit gets to stop "
            f"before it is taken away), got {grace!r}"
        )
    return seconds


def limit_of(retry_data: dict[str, Any], default: float | None) -> float | None:
    """The time limit (seconds) a job runs under: its own, else the worker's `default`."""
    own = retry_data.get(TIMEOUT) if retry_data else None
    if isinstance(own, int | float) and not isinstance(own, bool) and own > 0:
        return float(own)
    return default


def time_limit_of(retry_data: dict[str, Any]) -> dt.timedelta | None:
    """A job's own time limit as a timedelta (`job.time_limit`, the monitor's "time limit")."""
    seconds = limit_of(retry_data, None)
    return None if seconds is None else dt.timedelta(seconds=seconds)


def grace_for(limit: float, grace: float | None) -> float:
    """The grace a job with `limit` gets: the configured one (at most the limit itself), else
    a tenth of the limit, at most GRACE_MOST seconds."""
    if grace is not None:
        return min(grace, limit)
    return min(GRACE_MOST, limit * GRACE_FRACTION)
