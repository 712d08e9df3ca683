"""The heartbeat: what a dispatcher does every ping, and what it concludes when it cannot.

Every `ping_interval` it pings its record; if a sibling presumed it dead meanwhile (the ping
finds the record deactivated), it reactivates the record; then it picks up interval changes
made in the database (`Database.set_dispatcher_intervals`). The sweep (sweep.py) follows each
ping that went through. Between pings it watches its own silence: a dispatcher that could not
ping for longer than its death interval is `lost`, and claims nothing until a ping goes through
again, since a sibling may be handing its jobs on.

It also keeps `in_reach_since`, when its current unbroken run of pings began: a dispatcher
that was itself cut off (a failed ping, or one that took much longer than it should: a stall of
the database shared by every worker, a paused process) knows nothing of whether its siblings
could ping meanwhile, so the sweep judges no one dead for one death interval after it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobq.worker.loops import Backoff, Every

if TYPE_CHECKING:
    from jobq.store.base import Store

events_log = logging.getLogger("jobq.events")


class Heartbeat:
    """Pings every `ping_interval` seconds; owns the dispatcher's ping and death intervals,
    which the database may change."""

    name = "heartbeat"

    def __init__(
        self,
        store: Store,
        uuid: str,
        *,
        ping_interval: float,
        death_interval: float,
        backoff: Backoff,
        fire: Callable[[str], None],
        database_time: bool = False,
    ) -> None:
        self._store = store
        # Pings in the database's time (None to the store: one clock for every machine), not
        # this process's `now`, so skewed clocks make no one look dead.
        self.database_time = database_time
        self._uuid = uuid
        self.ping_interval = ping_interval
        self.death_interval = death_interval
        self._backoff = backoff
        self._fire = fire  # the dispatcher's events: "reactivated"
        self._timer = Every(lambda: self.ping_interval)
        self.beats = 0  # ticks that went through, since the dispatcher was made (for the sweep)
        self._ping_ok_at: float | None = None  # time.monotonic() of the last ping that went through
        self._cut_off = False  # a ping failed since the last one that went through
        self.lost = False  # could not ping for longer than the death interval
        # The dispatcher's time when its current unbroken run of pings began (None: since it
        # activated, which needs the database too).
        self.in_reach_since: dt.datetime | None = None

    def start(self) -> None:
        """A new run: ping at once, and count the silence from now (the activation)."""
        self._timer.reset()
        self._ping_ok_at = time.monotonic()
        self._cut_off = False
        self.in_reach_since = None

    def due(self, now: dt.datetime) -> bool:
        return self._timer.due(now)

    def tick(self, now: dt.datetime) -> None:
        """Ping; reactivate if presumed dead; pick up interval changes."""
        store = self._store
        began = time.monotonic()
        stamp = None if self.database_time else now
        if not store.ping(self._uuid, stamp):
            events_log.critical(
                "Dispatcher %s not activated prior to ping: a sibling presumed it dead (suspect "
                "a death interval too short for the ping interval, long commits, a paused "
                "process or clock skew). Reactivating; jobs taken from it meanwhile will not be "
                "completed by it.",
                self._uuid,
            )
            store.reactivate_dispatcher(self._uuid, stamp)
            self._fire("reactivated")
        went_through = time.monotonic()
        previous = self._ping_ok_at
        # Out of reach since the last ping: one failed, or this one or the wait before it
        # took far longer than a round should (allowing for a slow commit and a busy machine).
        slow = 2 * self.ping_interval + 1.0
        if self._cut_off or (previous is not None and went_through - previous > slow):
            self.in_reach_since = now + dt.timedelta(seconds=went_through - began)
        self._cut_off = False
        self._ping_ok_at = went_through
        if self.lost:
            events_log.warning("dispatcher %s reaches the database again; claiming", self._uuid)
            self.lost = False
        record = store.get_dispatcher(self._uuid)
        if record is not None and (
            record.ping_interval != self.ping_interval
            or record.death_interval != self.death_interval
        ):
            events_log.info(
                "dispatcher %s: ping interval %.1f s, death interval %.1f s (changed in the "
                "database)",
                self._uuid,
                record.ping_interval,
                record.death_interval,
            )
            self.ping_interval = record.ping_interval
            self.death_interval = record.death_interval
        self._timer.last = now
        self.beats += 1

    def failed(self, error: Exception) -> None:
        self._cut_off = True
        self._backoff.failed(self.name, error)

    def check_silence(self) -> None:
        """Called every round: past the death interval without a ping, the dispatcher is lost."""
        if self._ping_ok_at is None or self.lost:
            return
        silent = time.monotonic() - self._ping_ok_at
        if silent > self.death_interval:
            events_log.critical(
                "dispatcher %s could not ping for %.0f s (death interval %.0f s): it stops "
                "claiming; a sibling may hand its jobs on, which it will then not complete",
                self._uuid,
                silent,
                self.death_interval,
            )
            self.lost = True
