"""Schedules' time arithmetic: checking a cron expression and a time zone, and `plan`, which
says which ticks of a schedule are owed at a moment and when its next tick is.

The cron expressions are cronsim's (five fields, or six with a leading seconds field), read
in the schedule's time zone. cronsim defines the daylight-saving rule: a tick that falls in
the hour skipped when clocks go forward runs at the first moment after the gap (a "30 2 * * *"
schedule in Europe/Berlin runs at 03:00 that night), and a tick that falls in the hour
repeated when clocks go back runs once, at its first occurrence. So a daily schedule runs once
a day, every day. cronsim is imported here only, when a schedule is checked or planned, so a
worker without schedules never loads it.

A tick is *on time* if it is at most `ON_TIME` late when a worker sees it; it runs under every
policy. The others were *missed* (no worker ran then): `missed="skip"` drops them, `"once"`
runs one job for them (stamped with the latest), `"all"` runs each of the latest `catch_up`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobq.errors import ConfigError

if TYPE_CHECKING:
    from cronsim import CronSim

MISSED_POLICIES = ("skip", "once", "all")
ON_TIME = dt.timedelta(seconds=10)
"""How late a tick may be seen and still count as on time rather than missed: enough for a
worker's poll interval and a busy moment, short against any schedule a worker missed."""
MAX_CATCH_UP = 10_000
_MICRO = dt.timedelta(microseconds=1)


def check_name(name: object) -> str:
    """A schedule's name: a non-empty string of at most 200 characters."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ConfigError(
            f"schedule name must be a non-empty string of at most 200 characters, got {name!r}"
        )
    return name


def zone(timezone: object) -> ZoneInfo:
    """The IANA time zone called `timezone` ("UTC", "Europe/Berlin"); ConfigError if unknown."""
    if not isinstance(timezone, str) or not timezone:
        raise ConfigError(f"timezone must be an IANA zone name such as 'UTC', got {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {timezone!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None


def _cronsim(cron: str, start: dt.datetime, *, reverse: bool = False) -> CronSim:
    from cronsim import CronSim, CronSimError

    try:
        return CronSim(cron, start, reverse=reverse)
    except CronSimError as error:
        raise ConfigError(
            f"bad cron expression {cron!r} ({error}): use five fields 'minute hour "
            f"day-of-month month day-of-week' (or six, with a leading seconds field), "
            f"for example '0 3 * * *'"
        ) from None


def check_cron(cron: object, timezone: str, now: dt.datetime) -> dt.datetime:
    """Check a cron expression; its first tick after `now` (ConfigError if it has none)."""
    if not isinstance(cron, str):
        raise ConfigError(f"cron expression must be a string such as '0 3 * * *', got {cron!r}")
    first = next_tick(cron, timezone, now)
    if first is None:
        raise ConfigError(f"cron expression {cron!r} never matches a date")
    return first


def check_missed(missed: object, catch_up: object) -> tuple[str, int]:
    """The missed-ticks policy and its catch-up count, checked."""
    if missed not in MISSED_POLICIES:
        raise ConfigError(f"missed must be one of {', '.join(MISSED_POLICIES)}; got {missed!r}")
    if isinstance(catch_up, bool) or not isinstance(catch_up, int):
        raise ConfigError(f"catch_up must be an integer, got {catch_up!r}")
    if not 1 <= catch_up <= MAX_CATCH_UP:
        raise ConfigError(f"catch_up must be between 1 and {MAX_CATCH_UP}, got {catch_up}")
    return str(missed), catch_up


def _utc(ticks: Iterator[dt.datetime]) -> Iterator[dt.datetime]:
    for tick in ticks:
        yield tick.astimezone(dt.UTC)


def next_tick(cron: str, timezone: str, after: dt.datetime) -> dt.datetime | None:
    """The first tick strictly after `after` (UTC), or None if the expression never matches."""
    forward = _utc(_cronsim(cron, after.astimezone(zone(timezone))))
    return next(forward, None)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a schedule owes at a moment: the ticks to enqueue (UTC, in order), whether its
    policy dropped missed ticks, and its next tick after that moment (None: no more)."""

    ticks: tuple[dt.datetime, ...]
    dropped: bool
    next_tick: dt.datetime | None


def plan(
    cron: str,
    timezone: str,
    first: dt.datetime,
    now: dt.datetime,
    missed: str,
    catch_up: int,
) -> Plan:
    """The ticks owed at `now` by a schedule whose first tick not yet enqueued is `first`.

    Only the on-time ticks and as many missed ones as the policy keeps are ever iterated (a
    per-second schedule down for a week costs no more than one down for a minute): a reverse
    walk from `now` finds where they begin, a forward walk lists them as cron defines them.
    """
    keep = {"skip": 0, "once": 1, "all": catch_up}[missed]
    tz = zone(timezone)
    anchor = first - _MICRO  # the forward walk yields ticks strictly after its start
    skipped_before = False
    backward = _utc(_cronsim(cron, (now + _MICRO).astimezone(tz), reverse=True))
    late = 0
    for tick in backward:
        if tick < first:
            break
        if now - tick > ON_TIME:
            late += 1
            if late > keep:
                anchor = tick
                skipped_before = True
                break
    on_time: list[dt.datetime] = []
    late_ticks: list[dt.datetime] = []
    forward = _utc(_cronsim(cron, anchor.astimezone(tz)))
    following: dt.datetime | None = None
    for tick in forward:
        if tick > now:
            following = tick
            break
        (on_time if now - tick <= ON_TIME else late_ticks).append(tick)
    kept = late_ticks[-keep:] if keep else []
    dropped = skipped_before or len(late_ticks) > len(kept)
    return Plan(tuple(kept + on_time), dropped, following)
