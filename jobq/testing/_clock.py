"""`MovableClock`: a frozen, settable "now" for `jobq.connect(url, clock=...)`.

Nothing is patched: jobq reads time only through its Database's clock (`db.clock.now()`), so a
test that connects with a MovableClock moves time for that Database alone: in the test's own
thread and in any dispatcher or inline runner of the same Database. Moving the clock calls the
callbacks registered with `on_change` (an in-process test worker registers its `wake`, so it
polls at once instead of sleeping out its real-time poll interval).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from jobq._clock import ensure_aware

__all__ = ["MovableClock"]


class MovableClock:
    """A clock that stands still until the test moves it.

        clock = MovableClock(datetime(2024, 1, 1, tzinfo=UTC))
        db = jobq.connect(url, clock=clock)
        clock.advance(minutes=5)            # or advance(300), advance(timedelta(minutes=5))
        clock.set(datetime(2024, 1, 2, tzinfo=UTC))

    `start` (an aware datetime) is the frozen "now"; by default, the real time at creation, so
    that application code computing `begin_after` from `datetime.now(UTC)` still makes sense.
    Moving it backwards is allowed (`set`), though jobs already put keep their times.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = dt.datetime.now(dt.UTC) if start is None else ensure_aware(start, "start")
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], object]] = []

    def __repr__(self) -> str:
        return f"<jobq.testing.MovableClock {self.now().isoformat()}>"

    def now(self) -> dt.datetime:
        """The current (frozen) time, aware, in UTC."""
        with self._lock:
            return self._now

    def set(self, when: dt.datetime) -> dt.datetime:
        """Move to `when` (an aware datetime); returns it, in UTC."""
        when = ensure_aware(when, "when")
        with self._lock:
            self._now = when
        self._notify()
        return when

    def advance(self, seconds: float | dt.timedelta = 0.0, **delta: float) -> dt.datetime:
        """Move forward by `seconds` (a number or a timedelta) and/or timedelta keywords
        (`minutes=5`, `hours=1`, ...); returns the new time."""
        step = seconds if isinstance(seconds, dt.timedelta) else dt.timedelta(seconds=seconds)
        step += dt.timedelta(**delta)
        if step < dt.timedelta(0):
            raise ValueError(f"advance() moves forward only, got {step}; use set() to go back")
        with self._lock:
            self._now += step
            now = self._now
        self._notify()
        return now

    def on_change(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call `callback()` after every move (in the thread that moved the clock); returns a
        function that unregisters it."""
        with self._lock:
            self._listeners.append(callback)

        def unregister() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unregister

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()
