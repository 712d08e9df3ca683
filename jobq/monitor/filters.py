"""The monitor's argument grammar (catalogue 8.2-8.3): `<states...> [name:value...]`.

States: pending, assigned, active, callbacks, and at most one of completed / succeeded /
failed. Filters: `callable:GLOB` (no dot: the function's own name; with a dot: its full dotted
name), `queue:GLOB`, `agent:GLOB`, `uuid:UUID|THIS`, and the time filters `requested_start:`
(begin_after), `start:` (active_start), `end:` (active_end) and `callbacks_completed:`
(completion), each `sinceINTERVAL`, `beforeINTERVAL` or both joined by a comma, where an
interval is `[nD][nH][nM][nS]` before now (`5M`, `1H30M`, `2.5S`), and `priority:N` (exactly
N), `priority:N..` (at least N), `priority:..M` (at most M) or `priority:N..M`. Every error is a
ValueError that says what was wrong and what is accepted.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid as uuid_module
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jobq.model.job import PRIORITIES
from jobq.store.base import JobQuery

STATES = ("pending", "assigned", "active", "callbacks", "completed", "succeeded", "failed")
_FINAL = ("completed", "succeeded", "failed")
TIME_FILTERS = {
    "requested_start": "requested",
    "start": "start",
    "end": "end",
    "callbacks_completed": "completed",
}
GLOB_FILTERS = ("callable", "queue", "agent")
FILTERS = (*GLOB_FILTERS, "uuid", *TIME_FILTERS, "priority")
_INTERVAL = re.compile(
    r"^(?:(?P<d>\d+(?:\.\d+)?)D)?(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?$",
    re.IGNORECASE,
)


_LONGEST_INTERVAL = dt.timedelta(days=36525)


def parse_interval(text: str) -> dt.timedelta:
    """`[nD][nH][nM][nS]` (case-insensitive) as a timedelta: `5M`, `1H30M`, `20S`, `2D`."""
    match = _INTERVAL.match(text.strip())
    if not text.strip() or match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"bad interval {text!r}: use [nD][nH][nM][nS], for example 5M, 1H30M, 20S or 2D"
        )
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    try:
        interval = dt.timedelta(
            days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"]
        )
    except OverflowError:
        interval = _LONGEST_INTERVAL * 2
    if interval > _LONGEST_INTERVAL:
        raise ValueError(f"bad interval {text!r}: at most {_LONGEST_INTERVAL.days}D (100 years)")
    return interval


def parse_time_filter(
    name: str, value: str, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """`sinceX`, `beforeY`, or `sinceX,beforeY` (either order): (since, before) datetimes."""
    since = before = None
    pieces = [p.strip() for p in value.split(",")]
    if not value.strip() or len(pieces) > 2:
        raise ValueError(
            f"bad value for {name}: {value!r}: use sinceINTERVAL, beforeINTERVAL or "
            f"sinceINTERVAL,beforeINTERVAL (for example {name}:since5M)"
        )
    for piece in pieces:
        lower = piece.lower()
        if lower.startswith("since"):
            if since is not None:
                raise ValueError(f"{name}: 'since' given twice in {value!r}")
            since = now - parse_interval(piece[5:])
        elif lower.startswith("before"):
            if before is not None:
                raise ValueError(f"{name}: 'before' given twice in {value!r}")
            before = now - parse_interval(piece[6:])
        else:
            raise ValueError(
                f"bad value for {name}: {piece!r} must start with 'since' or 'before' "
                f"(for example {name}:since2M or {name}:before1H)"
            )
    return since, before


def parse_priority_filter(value: str) -> tuple[int | None, int | None]:
    """`N`, `N..`, `..M` or `N..M` (priorities -10..10) as (at least, at most)."""
    text = value.strip()
    low, dots, high = text.partition("..")
    pieces = [low, high] if dots else [low, low]
    bounds: list[int | None] = []
    for piece in pieces:
        piece = piece.strip()
        if not piece and dots:
            bounds.append(None)
            continue
        if not re.fullmatch(r"[+-]?\d+", piece):
            raise ValueError(
                f"bad value for priority: {value!r}: use N, N.., ..M or N..M with "
                f"priorities from {PRIORITIES[0]} to {PRIORITIES[-1]} (for example priority:5..)"
            )
        number = int(piece)
        if number not in PRIORITIES:
            raise ValueError(
                f"bad value for priority: {value!r}: priorities are from {PRIORITIES[0]} to "
                f"{PRIORITIES[-1]}"
            )
        bounds.append(number)
    if bounds == [None, None]:
        raise ValueError(f"bad value for priority: {value!r}: give N, N.., ..M or N..M")
    low_bound, high_bound = bounds
    if low_bound is not None and high_bound is not None and low_bound > high_bound:
        raise ValueError(f"bad value for priority: {value!r}: {low_bound} is above {high_bound}")
    return low_bound, high_bound


def parse_states(states: Iterable[str]) -> tuple[tuple[str, ...], bool | None]:
    """Validated states as (stored statuses, failed flag for completed jobs)."""
    wanted = [s.strip().lower() for s in states if s.strip()]
    if not wanted:
        raise ValueError(f"give at least one state: {', '.join(STATES)}")
    unknown = [s for s in wanted if s not in STATES]
    if unknown:
        raise ValueError(f"unknown state(s) {', '.join(unknown)}; known: {', '.join(STATES)}")
    if len({s for s in wanted if s in _FINAL}) > 1:
        raise ValueError(
            'can only include zero or one of "completed", "succeeded," or "failed" states.'
        )
    failed: bool | None = None
    statuses = []
    for s in dict.fromkeys(wanted):
        if s == "succeeded":
            failed = False
        elif s == "failed":
            failed = True
        statuses.append("completed" if s in _FINAL else s)
    return tuple(statuses), failed


@dataclass(frozen=True)
class Selection:
    """Parsed states, filters and other named options (display:, count:, ...)."""

    query: JobQuery
    options: dict[str, str] = field(default_factory=dict)
    used: frozenset[str] = frozenset()

    @property
    def by_agent(self) -> bool:
        return self.query.agent is not None or self.query.uuid is not None


def parse_selection(
    args: Sequence[str],
    now: dt.datetime,
    *,
    this_uuid: str | None = None,
    require_states: bool = True,
    default_states: Sequence[str] = (),
    options: Sequence[str] = (),
    forbidden: Sequence[str] = (),
) -> Selection:
    """Parse `<states...> [name:value...]`: positional states first, then named filters
    (and the named `options` a tool accepts); `forbidden` filters are refused."""
    states: list[str] = []
    named: dict[str, str] = {}
    for arg in args:
        if ":" in arg:
            name, _, value = arg.partition(":")
            name = name.strip().lower()
            if name not in FILTERS and name not in options:
                known = ", ".join([*FILTERS, *options])
                raise ValueError(f"unknown filter {name!r} in {arg!r}; known: {known}")
            if name in named:
                raise ValueError(f"filter {name!r} given twice")
            named[name] = value
        else:
            if named:
                raise ValueError("placeful modifiers must come before named modifiers")
            states.append(arg)
    bad = sorted(set(named) & set(forbidden))
    if bad:
        raise ValueError(f"unsupported filters: {', '.join(bad)}")
    if not states:
        if require_states:
            raise ValueError(f"give at least one state: {', '.join(STATES)}")
        states = list(default_states)
    statuses, failed = parse_states(states)
    query = JobQuery(states=statuses, failed=failed)
    for name in GLOB_FILTERS:
        if name in named:
            if not named[name]:
                raise ValueError(f"{name}: needs a glob, for example {name}:send*")
            glob: dict[str, Any] = {name: named[name]}  # the JobQuery field of that name
            query = replace(query, **glob)
    if "uuid" in named:
        value = named["uuid"].strip()
        if value.upper() == "THIS":
            if this_uuid is None:
                raise ValueError(
                    "uuid:THIS needs this process's UUID: set JOBQ_UUID (or --uuid) to the "
                    "worker's UUID"
                )
            value = this_uuid
        try:
            value = str(uuid_module.UUID(value))
        except ValueError:
            raise ValueError(f"uuid: {value!r} is not a UUID (or THIS)") from None
        query = replace(query, uuid=value)
    for name, prefix in TIME_FILTERS.items():
        if name in named:
            since, before = parse_time_filter(name, named[name], now)
            bounds: dict[str, Any] = {f"{prefix}_since": since, f"{prefix}_before": before}
            query = replace(query, **bounds)
    if "priority" in named:
        low, high = parse_priority_filter(named["priority"])
        query = replace(query, priority_min=low, priority_max=high)
    opts = {k: v for k, v in named.items() if k in options}
    return Selection(query, opts, frozenset(named))
