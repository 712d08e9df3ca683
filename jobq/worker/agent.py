"""Agents: per (dispatcher, queue), how many jobs at once (`size`) and which (`filter`).

An agent's configuration lives in the database (`jobq_agents`), so it can change while the
worker runs; `AgentPool` is its thread pool in this process, resized to match.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pkgutil import resolve_name
from typing import TYPE_CHECKING, Any

from jobq.errors import ConfigError
from jobq.worker.settling import Settling, when_done

if TYPE_CHECKING:
    from jobq.worker.aio import AsyncRuntime

events_log = logging.getLogger("jobq.events")

DEFAULT_AGENT = "main"
DEFAULT_SIZE = 3
# An agent whose recent jobs ran shorter than this on average claims more jobs than it has
# free threads, queued here, so that a thread ending a job takes the next at once instead of
# waiting for a claim: about this many seconds of its work (`size` jobs for jobs just under
# it, up to CLAIM_AHEAD_MOST times `size` for jobs of about 3 ms or less), so that a job
# claimed ahead waits about that long at most. A job claimed ahead is *assigned*, not active:
# its thread's fenced start makes it active when it really begins, and a crash or a stop
# gives it back as it was (no interruption counted). Longer jobs are never claimed ahead, and
# once every thread of the agent has been busy for CLAIM_AHEAD_BELOW without a job ending
# (the jobs turned long), it claims none ahead and gives back those it holds, so no other
# worker idles while this one holds jobs it cannot start. The bigger the claims of very short
# jobs, the less each pays of a claim's round trip, which the dispatcher's thread waits for
# (docs/benchmarks.md has the figures).
CLAIM_AHEAD_BELOW = 0.05  # seconds
CLAIM_AHEAD_MOST = 16
# Jobs per thread whose outcomes may be committing while the agent goes on (the group commit
# gathers outcomes for a few milliseconds, `jobq.store._group`).
SETTLING_MOST = 16
# Callbacks an agent runs at once beside its `size` threads, while those all run long jobs.
CALLBACK_SLOTS = 1


def jobs_to_claim_ahead(size: int, mean_run: float | None) -> int:
    """How many jobs beyond `size` an agent whose recent jobs ran `mean_run` seconds on
    average may hold: about CLAIM_AHEAD_BELOW seconds of its work, at most CLAIM_AHEAD_MOST
    times `size`, none for longer jobs or before any has run."""
    if mean_run is None or mean_run >= CLAIM_AHEAD_BELOW:
        return 0
    if mean_run * CLAIM_AHEAD_MOST <= CLAIM_AHEAD_BELOW:
        return CLAIM_AHEAD_MOST * size
    return int(size * CLAIM_AHEAD_BELOW / mean_run)


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """An agent to install: `AgentSpec("main", 3)`, or with a filter's import path
    (`"myapp.jobs:only_reports"`), a predicate that gets the job and answers True to take it."""

    name: str = DEFAULT_AGENT
    size: int = DEFAULT_SIZE
    filter: str | None = None

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise ConfigError(f"agent name {self.name!r} must be non-empty and contain no ':'")
        if not isinstance(self.size, int) or self.size < 0:
            raise ConfigError(
                f"agent {self.name!r}: size must be an integer >= 0, got {self.size!r}"
            )
        if self.filter is not None:
            load_filter(self.filter)  # fail at configuration time, not at the first claim

    @classmethod
    def parse(cls, text: str) -> AgentSpec:
        """Parse the command line form NAME:SIZE[:FILTER], FILTER being module:function."""
        parts = text.split(":", 2)
        if len(parts) < 2:
            raise ConfigError(f"--agent {text!r}: expected NAME:SIZE[:FILTER], e.g. main:3")
        try:
            size = int(parts[1])
        except ValueError:
            raise ConfigError(f"--agent {text!r}: SIZE must be an integer") from None
        return cls(parts[0], size, parts[2] if len(parts) == 3 else None)


def filter_context(uuid: str, queue: str, name: str, path: str) -> bytes:
    """What an agent's filter seal signs: the filter's path, bound to its agent (a filter
    copied to another agent's row does not verify there)."""
    return "\0".join(("agent-filter", uuid, queue, name, path)).encode()


def load_filter(path: str) -> Callable[[Any], bool]:
    """Import a filter predicate from `module:qualname`."""
    _, sep, name = path.partition(":")
    if not sep or not name:
        raise ConfigError(f"filter {path!r} must be an import path like 'package.module:function'")
    try:
        found: Any = resolve_name(path)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"cannot import filter {path!r}: {error}") from error
    if not callable(found):
        raise ConfigError(f"filter {path!r} is not callable")
    return found


class AgentPool:
    """One agent's jobs in this process; `size` can change at any time.

    `running` counts the jobs handed to the pool and not finished, threaded and async alike:
    the dispatcher claims at most `size - running`, so `size` bounds both. Threaded jobs run in
    up to `size` daemon threads, started as jobs need them (an agent that only gets async jobs
    starts none). Async jobs (`is_async(item)`, with a `runtime`) take no agent thread: their
    blocking steps run on the runtime's threads and their awaits on its event loop.
    """

    def __init__(
        self,
        name: str,
        queue: str,
        run: Callable[[Any], Any],
        *,
        runtime: AsyncRuntime | None = None,
        is_async: Callable[[Any], bool] | None = None,
    ) -> None:
        self.name = name
        self.queue = queue
        self._run = run
        self._runtime = runtime
        self._is_async = is_async
        self._items: collections.deque[Any] = collections.deque()
        self._front = 0  # items at the head of `_items` handed over with `front=True`
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._idle_cond = threading.Condition(self._lock)
        self._size = 0
        self._threads = 0  # live threads
        self._waiting = 0  # threads waiting for an item
        self._started = 0
        self.running = 0  # jobs handed to this pool and not yet finished
        self.settling = 0  # of those, jobs whose run ended and whose outcome is committing
        self._mean_run: float | None = None  # moving average of its jobs' lengths
        self._busy = 0  # threads running a job now
        self._moved_at = time.monotonic()  # when a thread last took or ended a job
        self.callbacks_running = 0  # jobs of the callback slot (see `submit_callback`)
        # Set while a job held here has given its start up to a put-back job (`hold_back`):
        # the jobs it names as held behind leave the queue at once, into `_held_back`, for
        # the dispatcher to give back.
        self._hold_back: Callable[[Any], bool] | None = None
        self._held_back: list[Any] = []
        # Of `running`, threaded jobs taken away after their time limit whose call still
        # runs (jobq.worker.timeouts): they keep their thread and their place in `size`, but
        # a stop (`join`) no longer waits for them.
        self.abandoned = 0
        self.abandoned_callbacks = 0  # the same, of the callback slot's jobs
        self._callback_ids: set[int] = set()  # ids of the jobs the callback slot runs
        self.on_done: Callable[[], None] = lambda: None  # wakes the dispatcher to claim
        self._claim_asked = False  # on_done was called and the dispatcher has not claimed yet
        self._ended_while_asked = False  # a job ended since, during the claim

    @property
    def threads(self) -> int:
        """Threads of this pool alive now."""
        with self._lock:
            return self._threads

    @property
    def claim_ahead(self) -> int:
        """How many jobs beyond `size` the dispatcher may hand over (see CLAIM_AHEAD_BELOW):
        none while the agent is stuck on long jobs."""
        if self.stuck(time.monotonic()):
            return 0
        return jobs_to_claim_ahead(self._size, self._mean_run)

    @property
    def free(self) -> int:
        """How many jobs the dispatcher may hand over now: `size` (plus `claim_ahead`) less
        those running, where jobs whose outcome is committing count as done (`_committing`)."""
        return self._free(self.claim_ahead)

    def _free(self, claim_ahead: int) -> int:
        return self._size + claim_ahead - self.running + self._committing()

    @property
    def startable(self) -> int:
        """How many of the jobs handed over now a free thread takes at once (the claim starts
        those; the rest are claimed ahead, assigned): free threads less the jobs queued."""
        return max(0, self._size - self.running + self._committing())

    def _committing(self) -> int:
        """Jobs whose run ended and whose outcome is committing, counted as done: their
        threads are free. Up to SETTLING_MOST times `size`, so that a commit that stalls
        (its connection lost) holds this agent back rather than letting outcomes pile up."""
        return min(self.settling, SETTLING_MOST * self._size)

    @property
    def queued(self) -> int:
        """Jobs handed over that no thread has taken yet."""
        with self._lock:
            return len(self._items)

    def stuck(self, now: float) -> bool:
        """True once every thread has been busy for CLAIM_AHEAD_BELOW seconds without taking
        or ending a job: the jobs queued here would wait for jobs of unknown length."""
        return 0 < self._size <= self._busy and now - self._moved_at > CLAIM_AHEAD_BELOW

    def stuck_at(self) -> float | None:
        """When (time.monotonic) this pool becomes stuck if nothing moves, for the dispatcher
        to look then (give back what it holds, open its callback slot); None if it has a
        free thread with nothing queued for it, or is stuck already with nothing queued."""
        with self._lock:
            if self._size == 0:
                return None
            queued = bool(self._items)
            if self._busy < self._size:
                if not queued:
                    return None
                # Free threads are about to take jobs queued here (handed over a moment ago):
                # look once they have, as no later event wakes the dispatcher for it.
                return time.monotonic() + CLAIM_AHEAD_BELOW
            at = self._moved_at + CLAIM_AHEAD_BELOW
        return at if queued or at > time.monotonic() else None

    def take_queued(self, unstarted: Callable[[Any], bool]) -> list[Any]:
        """Take back the queued items that `unstarted` says were claimed ahead and not
        started, so that they can be given back to their queue; they no longer count as
        running here."""
        with self._lock:
            return self._take(unstarted)

    def hold_back(self, behind: Callable[[Any], bool]) -> None:
        """A job held here gave its start up to a job put back ahead of it (and went back to
        its queue): the queued items `behind` says were held behind it leave the queue now,
        and so do those handed over until the dispatcher takes them (`take_held_back`), so
        that no thread starts one of them before the job that gave way is claimed again."""
        with self._lock:
            self._hold_back = behind
            self._held_back.extend(self._take(behind))

    def take_held_back(self) -> list[Any]:
        """The items `hold_back` took out of the queue, for the dispatcher to give back to
        their queue; items handed over from now on are queued as usual."""
        with self._lock:
            taken, self._held_back, self._hold_back = self._held_back, [], None
        return taken

    def finished_with(self) -> bool:
        """Nothing left here: no job handed over still runs, none is held back (a pool
        removed from its worker is watched until then, as one of its threads may yet give
        way)."""
        with self._lock:
            return self.running <= 0 and self._hold_back is None and not self._held_back

    def _take(self, unstarted: Callable[[Any], bool]) -> list[Any]:  # with the lock held
        taken = [item for item in self._items if unstarted(item)]
        if not taken:
            return []
        head = list(self._items)[: self._front]
        self._front = sum(1 for item in head if not unstarted(item))
        self._items = collections.deque(i for i in self._items if not unstarted(i))
        self.running -= len(taken)
        if self.running == 0:
            self._idle_cond.notify_all()
        return taken

    def resize(self, size: int) -> None:
        with self._lock:
            self._size = size
            self._spawn_needed()
            self._wakeup.notify_all()  # surplus idle threads retire

    def _spawn_needed(self) -> None:  # with the lock held
        while len(self._items) > self._waiting and self._threads < self._size:
            self._threads += 1
            self._waiting += 1  # it takes an item as soon as it runs
            self._started += 1
            thread = threading.Thread(
                target=self._loop,
                name=f"jobq-{self.queue or 'default'}-{self.name}-{self._started - 1}",
                daemon=True,
            )
            thread.start()

    def submit(self, item: Any, front: bool = False) -> None:
        """Hand over a job; `front` (a job put back at the front of its queue) goes before
        the jobs queued here, after those handed over with `front` before it. One held
        behind a job that gave way (`hold_back`) is held back with the others instead."""
        with self._lock:
            if self._hold_back is not None and self._hold_back(item):
                self._held_back.append(item)  # for the dispatcher to give back with the rest
                return
            self.running += 1
        if self._runtime is not None and self._is_async is not None:
            try:
                routed = self._is_async(item)
            except Exception:
                routed = False
            if routed:
                try:
                    self._runtime.submit(self._execute, item)
                    return
                except RuntimeError:  # its executor shut down (stopping): use a thread
                    pass
        with self._lock:
            if front:
                self._items.insert(self._front, item)
                self._front += 1
            else:
                self._items.append(item)
            self._spawn_needed()
            self._wakeup.notify()

    def _loop(self) -> None:
        while True:
            with self._lock:
                # Items handed over are always run, even after a shrink (or a stop): the
                # dispatcher counts them as held until their runner returns.
                while not self._items and self._threads <= self._size:
                    self._wakeup.wait()
                self._waiting -= 1  # counted as waiting from its start or its last item
                if not self._items:
                    self._threads -= 1
                    return
                item = self._items.popleft()
                self._front = max(0, self._front - 1)
                self._busy += 1
                self._moved_at = time.monotonic()
            try:
                self._execute(item)
            finally:
                with self._lock:
                    self._waiting += 1
                    self._busy -= 1
                    self._moved_at = time.monotonic()

    def _execute(self, item: Any) -> None:
        pending = None
        started = time.monotonic()
        try:
            pending = self._run(item)
        except BaseException as error:  # a job must never kill the pool silently
            events_log.critical("unexpected error in agent %s: %r", self.name, error, exc_info=True)
            self._finished()
            return
        if isinstance(pending, Settling):
            # Its outcome still commits: its thread is free already (the dispatcher may claim
            # again), while its place in `running` ends once the commit does.
            # Its length counts now, not once committed: the claim this ending asks for must
            # see that the agent's jobs turned long, or it claims ahead for short ones.
            self._note_length(time.monotonic() - started)  # its run, not the commit's wait
            with self._lock:
                self.settling += 1

            def settled() -> None:
                with self._lock:
                    self.settling -= 1
                self._finished()

            pending.add_done_callback(settled)
            self._ask_for_more()
            return
        if not isinstance(pending, concurrent.futures.Future):
            self._note_length(time.monotonic() - started)
            self._finished()
            return

        # An async job: its length, its errors and its place in `running` end when the future
        # resolves (one callback for all, as there is one per job).
        def done(future: concurrent.futures.Future[Any]) -> None:
            self._note_length(time.monotonic() - started)
            self._check(future)
            self._finished()

        pending.add_done_callback(done)

    def submit_callback(self, item: Any) -> None:
        """Run a callback on a thread of its own, beside the agent's `size` threads: the
        agent's callback slot, taken (one at a time, CALLBACK_SLOTS) while its threads are all
        busy with long jobs, so that a finished job's callbacks do not wait for them."""
        job_id = getattr(item, "id", None)
        with self._lock:
            self.callbacks_running += 1
            if isinstance(job_id, int):
                self._callback_ids.add(job_id)

        def done() -> None:
            with self._lock:
                self.callbacks_running -= 1
                self._callback_ids.discard(job_id)
                if self._idle():
                    self._idle_cond.notify_all()
            self.on_done()

        def run() -> None:
            pending = None
            try:
                pending = self._run(item)
            except BaseException as error:  # as in _execute: never die silently
                events_log.critical(
                    "unexpected error in agent %s: %r", self.name, error, exc_info=True
                )
            when_done(pending, done)

        thread = threading.Thread(
            target=run, name=f"jobq-{self.queue or 'default'}-{self.name}-callbacks", daemon=True
        )
        thread.start()

    def _note_length(self, took: float) -> None:
        mean = self._mean_run
        self._mean_run = took if mean is None else 0.8 * mean + 0.2 * took

    def _check(self, pending: concurrent.futures.Future[Any]) -> None:
        error = None if pending.cancelled() else pending.exception()
        if error is not None:
            events_log.critical(
                "unexpected error in agent %s: %r", self.name, error, exc_info=error
            )

    def _finished(self) -> None:
        with self._lock:
            self.running -= 1
            if self._idle():
                self._idle_cond.notify_all()
        self._ask_for_more()

    def _ask_for_more(self) -> None:
        """A job ended: wake the dispatcher to claim more once the jobs queued here fall to
        half the claim-ahead window (at once for an agent that claims none ahead) with room to
        claim, and only if it was not asked already, so that very short jobs are claimed tens
        at a time rather than in one claim per job ending."""
        with self._lock:
            if self._claim_asked:
                self._ended_while_asked = True
                return
            claim_ahead = self.claim_ahead
            if len(self._items) > claim_ahead // 2 or self._free(claim_ahead) <= 0:
                return
            self._claim_asked = True
        self.on_done()

    def claim_begins(self) -> None:
        """The dispatcher looks at this pool to claim for it: jobs ending meanwhile need not
        wake it (`claim_ended` looks again)."""
        with self._lock:
            self._claim_asked = True
            self._ended_while_asked = False

    def claim_ended(self) -> None:
        """The dispatcher's claim for this pool is handed over: ask again if jobs that ended
        during it left the pool short (not otherwise: a claim that found the queue empty
        would only be repeated)."""
        with self._lock:
            self._claim_asked = False
            ended = self._ended_while_asked
        if ended:
            self._ask_for_more()

    def abandon(self, change: int, job_id: int) -> None:
        """One more (+1) or one less (-1) job (`job_id`) taken away whose thread still
        runs it."""
        with self._lock:
            if job_id in self._callback_ids:
                self.abandoned_callbacks += change
            else:
                self.abandoned += change
            if self._idle():
                self._idle_cond.notify_all()

    def _idle(self) -> bool:  # with the lock held
        """No job runs here but those taken away after their time limit."""
        return (
            self.running - self.abandoned <= 0
            and self.callbacks_running - self.abandoned_callbacks <= 0
        )

    def stop(self) -> None:
        self.resize(0)

    def join(self, timeout: float | None) -> bool:
        """Wait until no job of this pool is running (but those taken away after their time
        limit, whose threads cannot be stopped); True if that happened in time."""
        with self._idle_cond:
            return self._idle_cond.wait_for(self._idle, timeout)
