"""The sweep, after each ping: dispatchers whose ping is older than their death interval are
deactivated and their jobs handed on through their retry policies (recovery.py), as are jobs
of this dispatcher that none of its threads runs (a restarted worker's predecessor's).

It follows the heartbeat instead of keeping a clock of its own: a dispatcher that cannot ping
judges no one dead by pings they may not have been able to write either, and a sweep that
failed is owed until it goes through.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobq.worker.loops import Backoff
from jobq.worker.recovery import hand_on

if TYPE_CHECKING:
    from jobq.jobs.rows import JobRows
    from jobq.worker.heartbeat import Heartbeat

events_log = logging.getLogger("jobq.events")


class Sweep:
    """Once per ping of `after` that went through: deactivate the dead, hand on their jobs and
    this dispatcher's unheld ones (`held()` gives the ids its threads hold)."""

    name = "sweep"

    def __init__(
        self,
        rows: JobRows,
        uuid: str,
        *,
        after: Heartbeat,
        held: Callable[[], set[int]],
        backoff: Backoff,
    ) -> None:
        self._rows = rows
        self._uuid = uuid
        self._after = after
        self._held = held
        self._backoff = backoff
        self._swept_at = after.beats  # the heartbeat's count at the last sweep

    def start(self) -> None:
        """A new run: nothing is owed until its first ping."""
        self._swept_at = self._after.beats

    def due(self, now: dt.datetime) -> bool:
        return self._after.beats != self._swept_at

    def tick(self, now: dt.datetime) -> None:
        store = self._rows.store
        since = self._after.in_reach_since
        in_reach_for = None if since is None else (now - since).total_seconds()
        stamp = None if self._after.database_time else now
        for dead in store.deactivate_dead(stamp, in_reach_for=in_reach_for):
            events_log.warning("dispatcher %s is dead (no ping in time): deactivated", dead)
        orphans = store.orphans()
        if orphans:
            moved = hand_on(self._rows, orphans, "its dispatcher is gone")
            events_log.info("handed on %d job(s) of dispatchers that are gone", moved)
        held = self._held()  # before the read: a job ending in between is then not "unheld"
        mine = [r for r in store.dispatcher_jobs(self._uuid) if r.id not in held]
        if mine:
            hand_on(self._rows, mine, "no thread of this dispatcher runs it (restarted?)")
        self._swept_at = self._after.beats

    def failed(self, error: Exception) -> None:
        self._backoff.failed(self.name, error)
