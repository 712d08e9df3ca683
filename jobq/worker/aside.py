"""`Aside`: a few threads for work that must not run on the thread it arrives on.

A job whose outcome went to a group commit learns on the group commit's own thread that the
commit failed; its retry policy may then back off for seconds (5 s up to 60 s for a lost
connection) before it answers. Done there, that backoff would hold the outcome of every other
job of the process, one failed job after another. The runner sets such work aside here.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

events_log = logging.getLogger("jobq.events")

THREADS = 4
"""Threads of one `Aside`, started as work arrives. They live as long as the process (daemon
threads, so they never hold up its exit), so that each opens its database connections once."""


class Aside:
    """Runs `submit(fn, arg)` calls on up to `threads` threads of its own, in arrival order.
    A call that raises is logged at CRITICAL; the others go on."""

    def __init__(self, name: str, threads: int = THREADS) -> None:
        self.name = name
        self.threads = threads
        self._work: queue.SimpleQueue[tuple[Callable[[Any], None], Any]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._idle = 0

    def submit(self, fn: Callable[[Any], None], arg: Any) -> None:
        with self._lock:
            # `_idle`: threads started and not busy, less the calls queued for them.
            if self._idle <= 0 and self._started < self.threads:
                self._started += 1
                self._idle += 1
                threading.Thread(
                    target=self._serve, name=f"{self.name}-{self._started}", daemon=True
                ).start()
            self._idle -= 1
        self._work.put((fn, arg))

    def _serve(self) -> None:
        while True:
            fn, arg = self._work.get()
            try:
                fn(arg)
            except Exception as error:
                events_log.critical("%s: %r", self.name, error, exc_info=True)
            finally:
                with self._lock:
                    self._idle += 1
