"""The schedules loop: every dispatcher enqueues the due ticks of the database's schedules
(`Database.schedule`), so schedules run while any worker runs, with no leader to elect.

It is one of the dispatcher's loops (loops.py), ticked after each claim. It reads the due
schedules when the earliest next tick it knows of has come, and at least every `refresh`
seconds (schedules added or changed meanwhile). For each due schedule it plans the ticks owed
(`jobq.model.schedule.plan`: on-time ticks, and missed ones by the schedule's policy) and
fires them (`Store.fire_schedule`): of several dispatchers racing for a schedule, one enqueues
and the others change nothing; a tick already enqueued is refused by the database's key on
(schedule, tick). A failed tick is a warning and waits `refresh` seconds, like pruning.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, ClassVar

from jobq.errors import ConfigError
from jobq.model.schedule import plan

if TYPE_CHECKING:
    from jobq.store.base import ScheduleRecord, Store

events_log = logging.getLogger("jobq.events")


class Schedules:
    """Enqueues the due ticks of every schedule, for one dispatcher."""

    name: ClassVar[str] = "schedules"

    def __init__(
        self,
        store: Store,
        uuid: str | None = None,
        *,
        refresh: float = 5.0,
        keep_ticks: dt.timedelta = dt.timedelta(days=7),
        prune_every: float = 3600.0,
    ) -> None:
        self.store = store
        self.uuid = uuid  # recorded as the jobs' put_by
        self.refresh = refresh
        self.keep_ticks = keep_ticks
        self.prune_every = prune_every
        self.next_due: dt.datetime | None = None
        self.last_prune: dt.datetime | None = None
        self.enqueued = 0  # jobs this loop put, since it was made

    def start(self) -> None:
        """Read the schedules at once (the dispatcher activated again)."""
        self.next_due = None

    def due(self, now: dt.datetime) -> bool:
        return self.next_due is None or now >= self.next_due

    def tick(self, now: dt.datetime) -> int:
        """Fire every due schedule; the number of jobs enqueued. Raises if the store fails."""
        self.next_due = now + dt.timedelta(seconds=self.refresh)  # a failed tick waits too
        made = 0
        for schedule in self.store.due_schedules(now):
            made += self._fire(schedule, now)
        earliest = self.store.earliest_schedule_tick()
        if earliest is not None and earliest < self.next_due:
            self.next_due = earliest
        if self.last_prune is None or (now - self.last_prune).total_seconds() >= self.prune_every:
            self.last_prune = now
            self.store.prune_schedule_ticks(now - self.keep_ticks)
        self.enqueued += made
        return made

    def _fire(self, schedule: ScheduleRecord, now: dt.datetime) -> int:
        assert schedule.next_tick is not None
        try:
            owed = plan(
                schedule.cron,
                schedule.timezone,
                schedule.next_tick,
                now,
                schedule.missed,
                schedule.catch_up,
            )
        except ConfigError as error:  # e.g. a zone this machine's tz database lacks
            events_log.error("schedule %r cannot be planned here: %s", schedule.name, error)
            return 0
        made = self.store.fire_schedule(schedule, owed.ticks, owed.next_tick, now, self.uuid)
        if made is None:
            return 0  # another dispatcher fired it first, or the schedule changed
        if owed.dropped:
            events_log.info(
                "schedule %r: missed ticks before %s dropped (missed=%r)",
                schedule.name,
                owed.ticks[0] if owed.ticks else now,
                schedule.missed,
            )
        for tick, job_id in made:
            events_log.info("schedule %r: tick %s put job %d", schedule.name, tick, job_id)
        return len(made)

    def failed(self, error: Exception) -> None:
        events_log.warning("enqueueing scheduled jobs failed (%r); retrying", error)
