"""Retention: completed jobs are kept `keep` (default 7 days, like the original's completed
collection) and then pruned by the dispatchers, with the records of dispatchers not active
since then.

Each dispatcher calls `Retention.tick` after its polls; the tick does nothing until `every`
seconds (default 60) have passed since its last run, so it costs a clock reading. A run
deletes in batches of `batch` rows, one short transaction each (PostgreSQL skips rows other
transactions hold), at most `max_batches` per run: a backlog drains over several runs
instead of holding locks. Several dispatchers pruning at once only share the work.
`keep=None` turns pruning off for this dispatcher.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobq.store.base import PruneResult, Store

events_log = logging.getLogger("jobq.events")

DEFAULT_KEEP = dt.timedelta(days=7)


@dataclass
class Retention:
    keep: dt.timedelta | None = DEFAULT_KEEP
    every: float = 60.0
    batch: int = 500
    max_batches: int = 20
    last_run: dt.datetime | None = None

    def tick(self, store: Store, now: dt.datetime) -> PruneResult | None:
        """Prune if `every` seconds have passed since the last run; never raises."""
        if self.keep is None:
            return None
        if self.last_run is not None and (now - self.last_run).total_seconds() < self.every:
            return None
        self.last_run = now
        try:
            result = store.prune(now - self.keep, batch=self.batch, max_batches=self.max_batches)
        except Exception as error:
            events_log.warning("pruning completed jobs failed (%r); retrying later", error)
            return None
        if result.jobs or result.dispatchers:
            events_log.info(
                "pruned %d completed job(s) and %d dispatcher record(s) older than %s",
                result.jobs,
                result.dispatchers,
                self.keep,
            )
        return result
