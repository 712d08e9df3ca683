"""Retention: completed jobs are kept `keep` (default 7 days, like the original's completed
collection) and then pruned by the dispatchers, with the records of dispatchers not active
since then.

It is one of the dispatcher's loops (loops.py), ticked after each claim: a tick does nothing
until `every` seconds (default 60) have passed since the last run, so it costs a clock
reading. A run deletes in batches of `batch` rows, one short transaction each (PostgreSQL
skips rows other transactions hold), at most `max_batches` per run: a backlog drains over
several runs instead of holding locks. Several dispatchers pruning at once only share the work.
A run that fails is a warning and waits for the next `every` like a run that went through:
pruning is housekeeping, never urgent. `keep=None` turns pruning off for this dispatcher.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from jobq.store.base import PruneResult, Store

events_log = logging.getLogger("jobq.events")

DEFAULT_KEEP = dt.timedelta(days=7)


@dataclass
class Retention:
    store: Store
    keep: dt.timedelta | None = DEFAULT_KEEP
    every: float = 60.0
    batch: int = 500
    max_batches: int = 20
    last_run: dt.datetime | None = None

    name: ClassVar[str] = "retention"

    def start(self) -> None:
        """Nothing to reset: a restarted dispatcher keeps the minute since its last run."""

    def due(self, now: dt.datetime) -> bool:
        if self.keep is None:
            return False
        return self.last_run is None or (now - self.last_run).total_seconds() >= self.every

    def tick(self, now: dt.datetime) -> PruneResult | None:
        """Prune if due; None if not due or pruning is off. Raises if pruning fails."""
        if self.keep is None or not self.due(now):
            return None
        self.last_run = now  # before the run: a failed one also waits `every`
        result = self.store.prune(now - self.keep, batch=self.batch, max_batches=self.max_batches)
        if result.jobs or result.dispatchers:
            events_log.info(
                "pruned %d completed job(s) and %d dispatcher record(s) older than %s",
                result.jobs,
                result.dispatchers,
                self.keep,
            )
        return result

    def failed(self, error: Exception) -> None:
        events_log.warning("pruning completed jobs failed (%r); retrying later", error)
