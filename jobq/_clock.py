"""jobq's one source of "now": UTC, timezone-aware, injectable so tests can move time."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Anything with a `now()` that returns an aware UTC datetime."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def ensure_aware(value: dt.datetime, name: str) -> dt.datetime:
    """Return `value` in UTC; a naive datetime is a ValueError naming the argument."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            f"{name}={value!r} is timezone-naive; jobq needs aware datetimes "
            f"(for example datetime.now(timezone.utc))"
        )
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{name}={value!r} is out of range in UTC (past the year 9999)") from None
