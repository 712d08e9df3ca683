"""One run of a job's callable inside its claim, and what it holds while it runs.

A claim may run the callable again when its policy retries at once; each run is an `Attempt`:
the connection the job opened through `jobq.local.connection()`, if any, what it did to jobs
before opening it (written first when it is opened), and what its setup returned for its
teardown, which runs once per run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from jobq.jobs import context
from jobq.store.base import AttemptConnection, Store

events_log = logging.getLogger("jobq.events")


@dataclass(slots=True)
class Attempt:
    """A run of the callable. A run under a time limit has a `guard` (and a `lock`): once
    taken away, it opens no connection, and the one it has is rolled back and closed by
    `revoke`, from the time limits' thread."""

    conn: AttemptConnection | None = None
    setup_info: Any = None
    torn_down: bool = False
    writes: context.AttemptWrites = field(default_factory=context.AttemptWrites)
    guard: context.Guard | None = None
    lock: threading.Lock | None = None

    def connection(self, store: Store) -> Any:
        if self.lock is not None and self.guard is not None:
            with self.lock:
                self.guard.check()
                return self._open(store)
        return self._open(store)

    def _open(self, store: Store) -> Any:
        if self.conn is None:
            self.conn = store.attempt_connection()
            self.writes.write(self.conn.raw)
        return self.conn.raw

    def write_kept(self, store: Store) -> None:
        """Once the call returned: write what the job did to jobs in its attempt's
        transaction, which then stores its outcome too (not the group commit)."""
        if self.writes:
            self.connection(store)

    def rollback(self) -> None:
        self.writes.close()
        if self.lock is not None:
            with self.lock:
                conn, self.conn = self.conn, None
        else:
            conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def revoke(self) -> None:
        """Taken away (another thread): forget what it kept, and end its transaction under
        it, releasing its locks; its later statements fail on the closed connection."""
        self.writes.close()
        assert self.lock is not None
        with self.lock:
            conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.abort()
            except Exception as error:
                events_log.warning("could not close a taken-away job's connection: %r", error)
