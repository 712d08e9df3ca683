"""`ScheduleBook`: the API's schedules (`Database.schedule` and its siblings), checked at the
call and stored in the database, where every worker's schedules loop reads them.

A schedule is stored as its cron expression, time zone and policy, and the job each tick
puts, encoded once like a job row (so a callable or argument that cannot be stored is refused
when the schedule is made, not at its first tick). `Schedule` is what callers read back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jobq.errors import ConfigError
from jobq.model.job import Job, check_priority
from jobq.model.retry import RetryPolicy, policy_path
from jobq.model.schedule import check_cron, check_missed, check_name, next_tick, zone
from jobq.store.base import ScheduleRecord

if TYPE_CHECKING:
    from jobq.jobs.rows import JobRows

DEFAULT_CATCH_UP = 10


class ScheduleNotFound(ConfigError, LookupError):
    """No schedule of that name in this database."""


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as stored: its definition, whether it is paused, its next run (the first
    tick not yet enqueued, UTC; None when paused or when the expression has no more ticks)
    and its last run (the latest tick enqueued, and that tick's job)."""

    name: str
    cron: str
    timezone: str
    queue: str
    missed: str
    catch_up: int
    call_repr: str
    paused: bool
    next_run: dt.datetime | None
    last_run: dt.datetime | None
    last_job_id: int | None
    priority: int = 0  # of the jobs its ticks put

    def to_json(self) -> dict[str, Any]:
        """The schedule as JSON-ready values (times as ISO 8601 text)."""
        data = dataclasses.asdict(self)
        for key in ("next_run", "last_run"):
            value = data[key]
            data[key] = None if value is None else value.isoformat()
        return data


def schedule_view(record: ScheduleRecord) -> Schedule:
    """The public view of a stored schedule."""
    return Schedule(
        name=record.name,
        cron=record.cron,
        timezone=record.timezone,
        queue=record.queue,
        missed=record.missed,
        catch_up=record.catch_up,
        call_repr=record.call_repr,
        paused=record.paused,
        next_run=None if record.paused else record.next_tick,
        last_run=record.last_tick,
        last_job_id=record.last_job_id,
        priority=record.priority,
    )


def _definition(record: ScheduleRecord) -> tuple[object, ...]:
    return (
        record.cron, record.timezone, record.queue, record.missed, record.catch_up,
        record.job_class, record.call, record.retry_policy, record.failure_log_level,
        record.priority,
    )  # fmt: skip


class ScheduleBook:
    """The schedules of one database, over its job rows (store, codec, clock)."""

    def __init__(self, rows: JobRows) -> None:
        self.rows = rows
        self.store = rows.store

    def save(
        self,
        name: str,
        cron: str,
        job: Job | Callable[..., Any],
        *,
        timezone: str = "UTC",
        queue: str = "",
        missed: str = "skip",
        catch_up: int = DEFAULT_CATCH_UP,
        retry_policy: type[RetryPolicy] | None = None,
        failure_log_level: int | None = None,
        priority: int = 0,
    ) -> Schedule:
        """Check everything, then create the schedule or replace the one of that name."""
        check_name(name)
        try:
            check_priority(priority)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"schedule {name!r}: {error}") from None
        zone(timezone)
        missed, catch_up = check_missed(missed, catch_up)
        if not isinstance(queue, str):
            raise ConfigError(f"queue must be a queue name (a string), got {queue!r}")
        if not isinstance(job, Job):
            if not callable(job):
                raise ConfigError(f"a schedule's job must be a jobq.Job or a callable, got {job!r}")
            job = Job(job)
        if retry_policy is not None and not (
            isinstance(retry_policy, type) and issubclass(retry_policy, RetryPolicy)
        ):
            raise ConfigError(f"retry_policy must be a RetryPolicy subclass, got {retry_policy!r}")
        now = self.rows.clock.now()
        first = check_cron(cron, timezone, now)
        row = self.rows.encode(
            queue,
            job,
            now,
            None,
            None if retry_policy is None else policy_path(retry_policy),
            failure_log_level,
            None,
        )  # EncodingError (a TypeError) if the job cannot be stored
        current = self.store.get_schedule(name)
        if current is not None and _definition(current) == (
            cron, timezone, queue, missed, catch_up, row.job_class, row.call, row.retry_policy,
            row.failure_log_level, priority,
        ):  # fmt: skip
            # The same schedule again (an application declaring it at every start): its next
            # tick is kept, so that ticks missed meanwhile still follow its policy.
            return schedule_view(current)
        self.store.ensure_queue(queue, now)
        self.store.save_schedule(
            ScheduleRecord(
                name=name,
                cron=cron,
                timezone=timezone,
                queue=queue,
                missed=missed,
                catch_up=catch_up,
                job_class=row.job_class,
                call=row.call,
                call_repr=row.call_repr,
                retry_policy=row.retry_policy,
                failure_log_level=row.failure_log_level,
                paused=False,
                next_tick=first,
                last_tick=None,
                last_job_id=None,
                revision=1,
                created=now,
                updated=now,
                priority=priority,
            )
        )
        return self.get(name)

    def get(self, name: str) -> Schedule:
        record = self.store.get_schedule(name)
        if record is None:
            raise ScheduleNotFound(f"no schedule named {name!r} in this database")
        return schedule_view(record)

    def all(self) -> list[Schedule]:
        return [schedule_view(r) for r in self.store.schedules()]

    def remove(self, name: str) -> None:
        if not self.store.remove_schedule(name):
            raise ScheduleNotFound(f"no schedule named {name!r} in this database")

    def set_paused(self, name: str, paused: bool) -> Schedule:
        """Pause (no tick is enqueued), or resume from the next tick after now: the ticks of
        the pause are not run."""
        record = self.store.get_schedule(name)
        if record is None:
            raise ScheduleNotFound(f"no schedule named {name!r} in this database")
        now = self.rows.clock.now()
        following = record.next_tick if paused else next_tick(record.cron, record.timezone, now)
        self.store.set_schedule_paused(name, paused, following, now)
        return self.get(name)
