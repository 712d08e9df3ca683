"""Retention: completed jobs are kept `keep` (default 7 days, like the original's completed
collection) and then pruned by the dispatchers, with the records of dispatchers not active
since then.

It is one of the dispatcher's loops (loops.py), ticked after each claim: a tick does nothing
until `every` seconds (default 60) have passed since the last run, so it costs a clock
reading. A run deletes in batches of `batch` rows, one short transaction each (PostgreSQL
skips rows other transactions hold), at most `max_batches` per run: a backlog drains over
several runs instead of holding locks. Several dispatchers pruning at once only share the work.
A run that fails is a warning and waits for the next `every` like a run that went through:
pruning is housekeeping, never urgent. `keep=None` turns age-based pruning off for this
dispatcher.

Jobs put with `keep_result` are not pruned by age: each run deletes those whose expiry
(completion + keep_result) is past, with `keep=None` too (the putter asked for it), none that
a callback or a job waiting on it still needs. Each is recorded as expired in the
transaction that deletes it, so that reading it says when and why (`jobq.JobExpired`); a
record is forgotten `forget_after` (7 days) after it was written.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from jobq.store.base import PruneResult

if TYPE_CHECKING:
    from jobq.store.base import Store

events_log = logging.getLogger("jobq.events")

DEFAULT_KEEP = dt.timedelta(days=7)


@dataclass
class Retention:
    store: Store
    keep: dt.timedelta | None = DEFAULT_KEEP
    every: float = 60.0
    batch: int = 500
    max_batches: int = 20
    forget_after: dt.timedelta = DEFAULT_KEEP
    last_run: dt.datetime | None = None

    name: ClassVar[str] = "retention"

    def start(self) -> None:
        """Nothing to reset: a restarted dispatcher keeps the minute since its last run."""

    def due(self, now: dt.datetime) -> bool:
        return self.last_run is None or (now - self.last_run).total_seconds() >= self.every

    def tick(self, now: dt.datetime) -> PruneResult | None:
        """Prune if due; None if not due. Raises if pruning fails."""
        if not self.due(now):
            return None
        self.last_run = now  # before the run: a failed one also waits `every`
        expired = self.store.prune_expired(
            now, now - self.forget_after, batch=self.batch, max_batches=self.max_batches
        )
        if expired:
            events_log.info("pruned %d job(s) whose keep_result expired", expired)
        self.store.prune_unique_keys(now)  # unique_for periods over (a put reuses them anyway)
        if self.keep is None:
            return PruneResult(0, 0, expired)
        result = self.store.prune(now - self.keep, batch=self.batch, max_batches=self.max_batches)
        result = PruneResult(result.jobs, result.dispatchers, expired)
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
