"""The one shape of a dispatcher's periodic work: each duty is a `Loop` that knows when it is
due, does one tick, and handles its own failure.

The loops are `Heartbeat` (heartbeat.py: ping, every `ping_interval`), `Sweep` (sweep.py:
dead dispatchers and unheld jobs, after each ping), `AgentSync` (agent_sync.py: agents, pauses
and pools, every second) and `Retention` (retention.py: pruning, every minute).

They run as timers on the dispatcher's own thread rather than as threads of their own: each
round the dispatcher ticks the due loops in order, then claims, then waits for work. Running
them in line keeps for free the order the claim relies on (the first ping and agent read come
before the first claim, the sweep follows its ping, nothing is claimed in a round whose ping or
agent read failed), costs no thread or connection per loop, and leaves the claim as responsive
as the wait that ends each round: woken by the waiter, by a job of this process ending, or
after `poll_interval`. A loop's tick must therefore be short; none of them waits for work.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from jobq.errors import ConflictError, StoreFull, StoreUnavailable

events_log = logging.getLogger("jobq.events")

FULL_WARNING_EVERY = 60.0  # seconds between the warnings of a full disk


class Loop(Protocol):
    """A periodic duty of a dispatcher, ticked on its thread by `run_due`."""

    @property
    def name(self) -> str:
        """What the logs call it."""
        ...

    def start(self) -> None:
        """Forget the previous run's timer (the dispatcher activated again)."""
        ...

    def due(self, now: dt.datetime) -> bool:
        """Whether a tick is owed at `now`, a reading of the dispatcher's clock."""
        ...

    def tick(self, now: dt.datetime) -> object:
        """Do the work once. It raises if it failed; its timer then says when to retry."""
        ...

    def failed(self, error: Exception) -> None:
        """Log a failed tick and back off (on the dispatcher's thread)."""
        ...


def run_due(loops: Iterable[Loop], now: dt.datetime) -> bool:
    """Tick each due loop in order; False once one fails. A failure ends the round because what
    follows depends on what came before: no sweep without a ping, no claim without both."""
    for loop in loops:
        if loop.due(now):
            try:
                loop.tick(now)
            except Exception as error:
                loop.failed(error)
                return False
    return True


@dataclass(frozen=True, slots=True)
class Backoff:
    """How the dispatcher's loops and its claim handle a failure, so that nothing stops the
    dispatcher: a store unavailable or in conflict is expected now and then (a warning, then a
    short wait); a full disk lasts (one warning a minute while it does); anything else is a bug
    (logged critical with its traceback, then one poll's wait). The wait ends early when the
    dispatcher stops."""

    stopping: threading.Event
    poll_interval: Callable[[], float]
    full_since: dict[str, float] = field(default_factory=dict)  # what -> when last said
    # Told of each failure (the worker's statistics: a worker that fails is not shown healthy).
    noted: Callable[[str, Exception], None] | None = None

    def failed(self, what: str, error: Exception) -> None:
        if self.noted is not None:
            self.noted(what, error)
        if isinstance(error, StoreFull):
            now = time.monotonic()
            if now - self.full_since.get(what, -FULL_WARNING_EVERY) >= FULL_WARNING_EVERY:
                self.full_since[what] = now
                events_log.warning(
                    "%s failed: %s; waiting for room (said once a minute while it lasts)",
                    what,
                    error,
                )
            self.stopping.wait(min(5.0, self.poll_interval()))
        elif isinstance(error, (StoreUnavailable, ConflictError)):
            events_log.warning("%s failed (%s); retrying", what, error)
            self.stopping.wait(min(5.0, self.poll_interval()))
        else:
            events_log.critical("unexpected error in %s: %r", what, error, exc_info=True)
            self.stopping.wait(self.poll_interval())


class Every:
    """A loop's timer: due when `interval()` seconds of the dispatcher's clock have passed since
    the last tick that went through (at once after `reset`)."""

    __slots__ = ("_interval", "last")

    def __init__(self, interval: Callable[[], float]) -> None:
        self._interval = interval
        self.last: dt.datetime | None = None

    def reset(self) -> None:
        self.last = None

    def due(self, now: dt.datetime) -> bool:
        return self.last is None or (now - self.last).total_seconds() >= self._interval()
