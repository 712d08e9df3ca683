"""What a runner hands back for a job whose run has ended but whose outcome still commits
(`Settling`), and `when_done`, with which each layer around a runner (the pool, the
dispatcher's held jobs, the stats records) releases what it holds once the job is done."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

events_log = logging.getLogger("jobq.events")


class Settling:
    """What a runner returns for a job whose run has ended while its outcome still commits:
    the job is held (and counted in `AgentPool.running`) until `settled()` is called, after
    the commit, but it takes no thread, so its agent may claim another job in its place
    (`AgentPool.settling`). Not a `concurrent.futures.Future`: every plain job gets one, and
    a lock and a list cost a fraction of a future's condition variable."""

    __slots__ = ("_callbacks", "_lock", "_settled")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._settled = False

    def add_done_callback(self, finish: Callable[[], None]) -> None:
        """Call `finish()` once settled: now if it is already."""
        with self._lock:
            if not self._settled:
                self._callbacks.append(finish)
                return
        finish()

    def settled(self) -> None:
        """The outcome is committed (or given up on): call what waits, each once."""
        with self._lock:
            self._settled = True
            callbacks, self._callbacks = self._callbacks, []
        for finish in callbacks:
            try:
                finish()
            except Exception as error:  # one layer's bookkeeping must not skip the others'
                events_log.critical("error releasing a settled job: %r", error, exc_info=True)


def when_done(pending: Any, finish: Callable[[], None]) -> None:
    """Call `finish()` once a job handed over is done: now if `pending` is None (it ran to its
    end), else when `pending` resolves: a `Settling` (its outcome commits), or a concurrent
    future (an async job going on on the event loop). The layers around a runner (the
    dispatcher's `_holding`, the stats records) release what they hold this way; the pool
    itself does it in `_execute`, in one callback."""
    if isinstance(pending, Settling):
        pending.add_done_callback(finish)
    elif isinstance(pending, concurrent.futures.Future):
        pending.add_done_callback(lambda _: finish())
    else:
        finish()
