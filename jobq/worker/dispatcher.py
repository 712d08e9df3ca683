"""The dispatcher: one per worker process, identified by a UUID.

It registers itself, pings, and polls: for each of its agents with room, it claims due jobs
(several per claim) and hands them to the agent's threads. It sleeps until the database says
there may be work (PostgreSQL NOTIFY, SQLite data_version), a job of its own finishes, or
`poll_interval` passes. Run it in the foreground (`run()`; `jobq worker` runs that on a thread
of its own, keeping the main thread for signals) or in a background thread of an application
(`start()` / `stop()`).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jobq._clock import SystemClock
from jobq.errors import ConfigError, ConflictError, StoreUnavailable
from jobq.jobs.rows import JobRows
from jobq.model.failure import TracebackLocals
from jobq.model.limits import check_grace, check_limit
from jobq.store.base import AgentRecord, JobRecord, Waiter
from jobq.worker.agent import (
    CALLBACK_SLOTS,
    DEFAULT_AGENT,
    DEFAULT_SIZE,
    AgentPool,
    AgentSpec,
    filter_context,
)
from jobq.worker.agent_sync import AgentSync
from jobq.worker.aio import AsyncRuntime
from jobq.worker.decode import IMPORT_RETRIES
from jobq.worker.heartbeat import Heartbeat
from jobq.worker.loops import Backoff, Loop, run_due
from jobq.worker.recovery import hand_on
from jobq.worker.retention import Retention
from jobq.worker.runner import Runner
from jobq.worker.schedules import Schedules
from jobq.worker.settling import when_done
from jobq.worker.stats import WorkerStats
from jobq.worker.sweep import Sweep
from jobq.worker.timeouts import Timeouts

events_log = logging.getLogger("jobq.events")
trace_log = logging.getLogger("jobq.trace")


@dataclass(frozen=True, slots=True)
class DispatcherEvent:
    """What happened to a dispatcher's record: "registered" (first time this UUID is seen),
    "activated", "deactivated", or "reactivated" (it found itself presumed dead)."""

    kind: str
    uuid: str
    at: dt.datetime


class Dispatcher:
    """Claims and runs jobs of some queues for this process.

    Its periodic work is a set of loops (loops.py), ticked on its thread before each claim:
    the heartbeat (heartbeat.py) pings every `ping_interval`; the sweep (sweep.py) follows each
    ping: dispatchers whose ping is older than their `death_interval` are deactivated and their
    jobs handed on (see `recovery.py`), as are jobs of this dispatcher that none of its threads
    runs (a restarted worker's predecessor's); agent sync (agent_sync.py) reads agents and
    pauses every second; retention (retention.py) prunes after the claim, every minute, and
    the schedules loop (schedules.py) enqueues the due ticks of cron schedules.
    """

    def __init__(
        self,
        rows: JobRows,
        *,
        owner: Any = None,
        queues: Sequence[str] = ("",),
        agents: Sequence[AgentSpec] | None = None,
        uuid: str | None = None,
        poll_interval: float = 1.0,
        ping_interval: float = 5.0,
        death_interval: float = 30.0,
        grace: float = 30.0,
        traceback_locals: TracebackLocals | None = None,
        import_retries: int = IMPORT_RETRIES,
        job_timeout: dt.timedelta | float | None = None,
        timeout_grace: dt.timedelta | float | None = None,
        exit_on_runaway: bool = False,
    ) -> None:
        if isinstance(queues, str):
            raise ConfigError("queues must be a list of queue names, not a single string")
        if poll_interval <= 0 or ping_interval <= 0 or death_interval <= ping_interval:
            raise ConfigError(
                "poll_interval and ping_interval must be > 0 and death_interval > ping_interval"
            )
        self.rows = rows
        self.store = rows.store
        self.clock = rows.clock
        self.owner = owner  # the API's Database, handed to jobs as jobq.local.queue().db
        self.queues = list(dict.fromkeys(queues))
        self.agent_specs = (
            list(agents) if agents is not None else [AgentSpec(DEFAULT_AGENT, DEFAULT_SIZE)]
        )
        self.uuid = str(
            uuid_module.UUID(uuid or os.environ.get("JOBQ_UUID") or str(uuid_module.uuid4()))
        )
        self.poll_interval = poll_interval
        self.grace = grace
        self.traceback_locals = traceback_locals or TracebackLocals()
        if import_retries < 0:
            raise ConfigError(f"import_retries must be >= 0, got {import_retries}")
        self.import_retries = import_retries
        try:
            grace_seconds = None if timeout_grace is None else check_grace(timeout_grace)
            limit = (
                None
                if job_timeout is None
                else check_limit(job_timeout, grace_seconds, "job_timeout", "timeout_grace")
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(str(error)) from None
        # Time limits (jobq.worker.timeouts); `exit_on_runaway` (a --processes child): a
        # threaded job taken away stops this dispatcher, and `runaway` tells its process to
        # exit at once, for the supervisor to replace it.
        self.timeouts = Timeouts(job_timeout=limit, grace=grace_seconds, on_runaway=self._runaway)
        self.exit_on_runaway = exit_on_runaway
        self.runaway = False
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._activated = threading.Event()
        # `async def` jobs: one event loop for all agents, started on the first one.
        self._aio = AsyncRuntime(f"jobq-aio-{self.uuid[:8]}")
        self._thread: threading.Thread | None = None
        self._startup_error: BaseException | None = None
        self._watch: _Watch | None = None  # while it runs, this process holds the UUID
        self.polls = 0
        self.stats = WorkerStats(self)  # jobq.worker.stats: `jobq worker-status`
        # Called (on the dispatcher thread) with each claimed job before it is handed to its
        # agent; jobq.testing uses it to know which jobs a test worker took.
        self.on_claim: Callable[[JobRecord], None] | None = None
        self._finished_cleanly = True
        self._listeners: list[Callable[[DispatcherEvent], None]] = []
        # Ids claimed by this process and not yet finished, counted: a job taken from this
        # dispatcher (presumed dead) may be claimed again while its old run still ends.
        self._held: collections.Counter[int] = collections.Counter()
        self._held_lock = threading.Lock()
        # Pools of agents removed at run time whose jobs still run: one of those may yet give
        # way to a put-back job, and what it holds back must still go back (`_give_back_stuck`).
        self._removed_pools: list[AgentPool] = []
        self._backoff = Backoff(self._stopping, lambda: self.poll_interval, noted=self.stats.failed)
        # Liveness in the database's time (one clock for every machine), unless jobq runs on
        # an injected clock (tests), which then rules pings too.
        self._database_time = isinstance(self.clock, SystemClock)
        self._heartbeat = Heartbeat(
            self.store,
            self.uuid,
            ping_interval=ping_interval,
            death_interval=death_interval,
            backoff=self._backoff,
            fire=self._fire,
            database_time=self._database_time,
        )
        self._sweep = Sweep(
            rows, self.uuid, after=self._heartbeat, held=self._held_ids, backoff=self._backoff
        )
        self._agent_sync = AgentSync(
            self.store,
            self.uuid,
            self.queues,
            new_pool=self._new_pool,
            removed=self._removed_pools.append,
            backoff=self._backoff,
            codec=rows.codec,
        )
        self._loops: tuple[Loop, ...] = (self._heartbeat, self._sweep, self._agent_sync)
        self.retention = Retention(self.store)  # completed jobs kept 7 days, pruned every 60 s
        self.schedules = Schedules(self.store, self.uuid)  # cron schedules' due ticks

    def __repr__(self) -> str:
        return f"<jobq.Dispatcher {self.uuid} queues={self.queues}>"

    # The heartbeat owns the intervals (the database may change them); they read as before.
    @property
    def ping_interval(self) -> float:
        return self._heartbeat.ping_interval

    @ping_interval.setter
    def ping_interval(self, value: float) -> None:
        self._heartbeat.ping_interval = value

    @property
    def death_interval(self) -> float:
        return self._heartbeat.death_interval

    @death_interval.setter
    def death_interval(self, value: float) -> None:
        self._heartbeat.death_interval = value

    @property
    def _pools(self) -> dict[tuple[str, str], AgentPool]:
        """Each agent's pool, by (queue, agent name), as agent sync keeps them."""
        return self._agent_sync.pools

    # -- life cycle ----------------------------------------------------------------------------
    @property
    def activated(self) -> bool:
        return self._activated.is_set() and not self._stopping.is_set()

    def start(self, timeout: float = 30.0) -> Dispatcher:
        """Run in a background (daemon) thread; returns once registered and polling."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"dispatcher {self.uuid} is already running")
        self._stopping.clear()
        self._activated.clear()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._run_safely, name=f"jobq-dispatcher-{self.uuid[:8]}", daemon=True
        )
        self._thread.start()
        if not self._activated.wait(timeout) and self._startup_error is None:
            raise TimeoutError(f"dispatcher {self.uuid} did not start within {timeout} s")
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def __enter__(self) -> Dispatcher:
        # `with db.worker().start() as d:` must not start a second loop.
        if self._thread is not None and self._thread.is_alive():
            return self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_safely(self) -> None:
        try:
            self.run()
        except BaseException as error:
            self._startup_error = error
            self._activated.set()
            raise

    def stop(self, grace: float | None = None) -> bool:
        """Stop claiming, let running jobs finish (up to `grace` seconds), deactivate.

        Returns True if every running job finished in time.
        """
        if grace is not None:
            self.grace = grace
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        return self._finished_cleanly

    def request_stop(self) -> None:
        """Ask the loop to stop; `run()` then returns. It sets the loop's Events, taking
        their locks: not from a signal handler, which may interrupt a thread holding one
        (record the signal there, and call this from the main thread, as `jobq worker`
        does)."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Poll now (for example after putting jobs from this process)."""
        self._wake.set()

    def add_listener(self, listener: Callable[[DispatcherEvent], None]) -> None:
        """Call `listener(event)` (in the dispatcher's thread) on each DispatcherEvent."""
        self._listeners.append(listener)

    def _fire(self, kind: str) -> None:
        event = DispatcherEvent(kind, self.uuid, self.clock.now())
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as error:
                events_log.error("dispatcher event listener %r failed: %r", listener, error)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        """Register and activate, then poll until `stop()` (or SIGTERM via the CLI)."""
        self._finished_cleanly = True
        self.timeouts.reopen()
        # Activate first: a process refused for a UUID that a live one holds writes nothing
        # (its agents would replace the live one's).
        if not self._activate():
            return
        try:
            if not self._install_agents_when_possible():
                return
            self._begin()
            while not self._stopping.is_set():
                self._round()
        finally:
            self._shutdown()

    def _begin(self) -> None:
        """Activated: the loops start their timers (the first round pings and reads the
        agents before it claims), and `start()` may return."""
        for loop in (*self._loops, self.retention, self.schedules):
            loop.start()
        self._activated.set()
        self.stats.activated()

    def _round(self) -> None:
        """One poll: the due loops, a claim unless one of them failed or the dispatcher is
        lost, then retention, and a wait for work (the waiter, a job of this process ending,
        or `poll_interval`)."""
        self._wake.clear()
        went_through = run_due(self._loops, self.clock.now())
        if went_through and not self._heartbeat.lost:
            went_through = self._claim()
        self.stats.round_ended(went_through)
        self._heartbeat.check_silence()
        self.polls += 1
        self.stats.polled(self._agent_sync.agents, self._pools)
        run_due((self.retention,), self.clock.now())
        run_due((self.schedules,), self.clock.now())
        self._wake.wait(self._wait_for())

    def _wait_for(self) -> float:
        """Seconds to wait for work: `poll_interval` (at most `ping_interval`), shorter if a
        pool holding jobs claimed ahead becomes stuck before, to give them back then, or if a
        rate limit that held jobs back frees a claim before (claim again then)."""
        wait = min(self.poll_interval, self.ping_interval)
        for pool in self._pools.values():
            at = pool.stuck_at()
            if at is not None:
                wait = min(wait, max(0.001, at - time.monotonic() + 0.001))
        now = None
        for queue in {queue for queue, _ in self._pools}:
            frees = self.store.rate_limit_wake(queue)
            if frees is not None:
                now = now or self.clock.now()
                wait = min(wait, max(0.001, (frees - now).total_seconds() + 0.001))
        return wait

    def _liveness_time(self) -> dt.datetime | None:
        """The time of this dispatcher's liveness records: None (the database's) by default."""
        return None if self._database_time else self.clock.now()

    def _activate(self) -> bool:
        """Activate this UUID's record, retrying each poll while another live process holds
        it. Returns False if stopped first."""
        while not self._stopping.is_set():
            try:
                activated, previous = self.store.activate_dispatcher(
                    self.uuid,
                    socket.gethostname(),
                    os.getpid(),
                    self.ping_interval,
                    self.death_interval,
                    self._liveness_time(),
                )
            except (StoreUnavailable, ConflictError) as error:
                events_log.warning("cannot activate dispatcher %s yet (%s)", self.uuid, error)
                self._stopping.wait(min(5.0, self.poll_interval))
                continue
            if activated:
                self._watch = _Watch(
                    self.uuid, self.store.waiter(self.queues), self._stopping, self._wake
                )
                self._watch.start()
                if previous is None:
                    self._fire("registered")
                events_log.info("activated dispatcher %s (queues %s)", self.uuid, self.queues)
                self._fire("activated")
                return True
            assert previous is not None
            if _process_gone(self.uuid, previous.host, previous.pid):
                # Same machine, and that process no longer exists: no need to wait for the
                # death interval to know the record is dead.
                events_log.warning(
                    "UUID %s: its previous process (pid %s on this host) is gone; taking over",
                    self.uuid,
                    previous.pid,
                )
                self.store.deactivate_dispatcher(self.uuid, self._liveness_time())
                continue
            events_log.error(
                "UUID %s already activated (host %s, pid %s, last ping %s): another process? "
                "Not claiming; retrying each poll until that record is deactivated or dead "
                "(death interval %.0f s).",
                self.uuid,
                previous.host,
                previous.pid,
                previous.last_ping,
                previous.death_interval,
            )
            self._stopping.wait(self.poll_interval)
        return False

    def _held_ids(self) -> set[int]:
        """Ids of the jobs this process's runs hold now (the sweep leaves them alone)."""
        with self._held_lock:
            return set(self._held)

    def _wake_up(self) -> None:
        """Wake the poll loop (a job of this process ended): `Event.set` takes a condition
        even when the flag is set already, and most ends find it set."""
        if not self._wake.is_set():
            self._wake.set()

    def _install_agents_when_possible(self) -> bool:
        """Install the agents, retrying while the store is unavailable (a full disk, a lost
        link): a store that fails just after activation must not end the dispatcher, as it
        does not once it runs. Returns False if stopped first."""
        while not self._stopping.is_set():
            try:
                self._install_agents()
                return True
            except (StoreUnavailable, ConflictError) as error:
                self._backoff.failed("installing agents", error)
        return False

    def _install_agents(self) -> None:
        store = self.store
        store.clear_agents(self.uuid)
        for queue in self.queues:
            store.ensure_queue(queue, self.clock.now())
            for spec in self.agent_specs:
                seal = None
                if spec.filter is not None:
                    context = filter_context(self.uuid, queue, spec.name, spec.filter)
                    seal = self.rows.codec.seal(context)
                store.set_agent(self.uuid, queue, spec.name, spec.size, spec.filter, seal)

    def _new_pool(self, agent: AgentRecord) -> AgentPool:
        """A pool for an agent that agent sync found: its runner's runs are counted by the
        stats, held until they end, and wake the poll loop when they do."""
        runner = Runner(
            self.rows,
            self.uuid,
            agent.name,
            self._stopping,
            aio=self._aio,
            owner=self.owner,
            traceback_locals=self.traceback_locals,
            import_retries=self.import_retries,
            timeouts=self.timeouts,
        )
        # jobq.worker.stats
        run = self._holding(self.stats.wrap(runner.run, agent.queue, agent.name))
        pool = AgentPool(
            agent.name, agent.queue, run, runtime=self._aio, is_async=runner.wants_loop
        )
        pool.on_done = self._wake_up

        # A job claimed ahead that yields its start to a put-back job: the others held behind
        # it leave the pool's queue at once (before another thread starts one ahead of it)
        # and go back too, so that the next claim takes the put-back job first and these
        # after it, in order. The dispatcher's thread gives them back, between its claims.
        def yielded() -> None:
            pool.hold_back(_held_behind)
            self._wake_up()

        runner.on_yield = yielded
        runner.on_abandon = pool.abandon
        return pool

    def _runaway(self) -> None:
        """A threaded job was taken away after its time limit and its thread runs on: with
        `exit_on_runaway`, stop (the other jobs get the grace period) so that the process
        exits and is replaced."""
        if self.exit_on_runaway and not self.runaway:
            self.runaway = True
            events_log.error(
                "dispatcher %s stops to be replaced: a job taken away after its time limit "
                "still runs in one of its threads",
                self.uuid,
            )
            self.request_stop()

    def _unhold(self, job_id: int) -> None:
        with self._held_lock:
            self._held[job_id] -= 1
            if self._held[job_id] <= 0:
                del self._held[job_id]

    def _give_back(self, pool: AgentPool, reason: str) -> int:
        """Give the jobs `pool` holds claimed ahead and unstarted back to their queue, as they
        were; how many went back."""
        return self._release(pool, pool.take_queued(_unstarted), reason)

    def _release(self, pool: AgentPool, records: list[JobRecord], reason: str) -> int:
        """Give `records`, taken from `pool` unstarted, back to their queue as they were
        (fenced: one taken from this worker meanwhile is left alone); how many went back. One
        that cannot be written now is no longer held here: the sweep hands it on."""
        moved = 0
        for record in records:
            try:
                if self.store.release(record.id, record.attempt, self.uuid):
                    moved += 1
            except Exception as error:
                events_log.warning("could not give job %s back yet: %r", record.id, error)
            finally:
                self._unhold(record.id)
        if records:
            trace_log.info(
                "agent %s gave back %d job(s) claimed ahead, unstarted: %s",
                pool.name,
                moved,
                reason,
            )
            self._wake_up()
        return moved

    def _give_back_stuck(self) -> None:
        """Pools whose threads all run long jobs give back what they claimed ahead, for
        other workers (or this one, once a thread is free) to start."""
        now = time.monotonic()
        for pool in [*self._pools.values(), *self._removed_pools]:
            # A held job gave its start up to a job put back at the front: the others held
            # behind it go back too, to be claimed again after it, in queue order.
            self._release(pool, pool.take_held_back(), "a job put back ahead of them is due")
            if pool.queued and pool.stuck(now):
                self._give_back(pool, "its threads are all busy with long jobs")
        # In place: agent sync appends to this list (`removed=`), between two claims.
        self._removed_pools[:] = [p for p in self._removed_pools if not p.finished_with()]

    def _holding(self, run: Callable[[JobRecord], Any]) -> Callable[[JobRecord], Any]:
        """Wrap a runner: a job is "held" by this process from its claim until its run ends
        (for an async job, or an outcome still committing, until the future its runner
        returns resolves), or until it is given back unstarted (`_give_back`)."""

        def run_held(record: JobRecord) -> Any:
            pending = None
            try:
                pending = run(record)
            finally:
                when_done(pending, lambda: self._unhold(record.id))
            return pending

        return run_held

    def _accept(self, agent: AgentRecord) -> Callable[[JobRecord], bool] | None:
        predicate = self._agent_sync.predicate(agent)
        path = agent.filter

        def accept(record: JobRecord) -> bool:
            if predicate is None:
                return False
            try:
                return bool(predicate(self.rows.job(record)))
            except Exception as error:
                events_log.error("filter %s failed on job %s: %r", path, record.id, error)
                return False

        return accept

    def _claim(self) -> bool:
        """Claim for each agent with room, and hand the jobs to its pool; a failure is
        handled like a loop's (loops.Backoff). False if it failed."""
        try:
            self._give_back_stuck()
            self._claim_for(self._agent_sync.claimable())
        except Exception as error:
            self._backoff.failed("poll", error)
            return False
        return True

    def _claim_for(self, agents: list[AgentRecord]) -> None:
        if self._stopping.is_set():
            return
        for agent in agents:
            pool = self._pools.get((agent.queue, agent.name))
            if pool is None:
                continue
            pool.claim_begins()
            try:
                self._claim_for_pool(agent, pool)
            finally:
                pool.claim_ended()

    def _claim_for_pool(self, agent: AgentRecord, pool: AgentPool) -> None:
        """Claim for one agent with room and hand the jobs to its pool."""
        # Agents with a filter take only what fits their free threads (see claim_ahead).
        free = pool.free if agent.filter is None else agent.size - pool.running
        if free <= 0:
            self._claim_callbacks(agent, pool)
            return
        # Jobs for free threads start in the claim; the rest are claimed ahead, assigned.
        startable = min(free, pool.startable)
        accept = None if agent.filter is None else self._accept(agent)
        # A fresh reading, taken after `free`: a job that a runner of this pool put back
        # (front of the queue, due "now") before freeing its slot is due for this claim.
        now = self.clock.now()
        records = self.store.claim(
            agent.queue,
            self.uuid,
            agent.name,
            free,
            now,
            accept,
            active_only=True,
            start=startable,
            database_time=self._database_time,
        )
        self._hand_over(pool, records)

    def _claim_callbacks(self, agent: AgentRecord, pool: AgentPool) -> None:
        """The agent's callback slot: while its threads all run long jobs, it takes the
        callbacks due at the front of its queue itself, on a thread of their own."""
        room = CALLBACK_SLOTS - pool.callbacks_running
        if agent.filter is not None or room <= 0 or not pool.stuck(time.monotonic()):
            return
        records = self.store.claim_callbacks(
            agent.queue, self.uuid, agent.name, room, self.clock.now()
        )
        self._hand_over(pool, records, callback_slot=True)

    def _hand_over(
        self, pool: AgentPool, records: list[JobRecord], *, callback_slot: bool = False
    ) -> None:
        """Hold the jobs claimed and hand them to `pool`: jobs put back at the front of the
        queue (lane 0) go before those it holds ahead; for `callback_slot`, to its slot."""
        with self._held_lock:
            self._held.update(r.id for r in records)
        for record in records:
            trace_log.debug("claimed job %s for agent %s", record.id, pool.name)
            if self.on_claim is not None:
                self.on_claim(record)
            if callback_slot:
                pool.submit_callback(record)
            else:
                pool.submit(record, front=record.lane == 0)

    def _shutdown(self) -> None:
        """Graceful stop: running jobs get `grace` seconds; then the rest are handed on at once
        (claimed ones put back, running ones interrupted through their retry policy) rather
        than waiting for a sibling to find this dispatcher dead."""
        if self._watch is not None:
            self._watch.holding = False
        # Jobs claimed ahead and not started go back as they were, for other workers: this
        # one's grace is for the jobs it runs.
        for pool in [*self._pools.values(), *self._removed_pools]:
            try:
                # The queued jobs, then any that a job giving way took out of the queue.
                self._give_back(pool, "its worker stops")
                self._release(pool, pool.take_held_back(), "its worker stops")
            except Exception as error:
                events_log.error("could not give back jobs claimed ahead: %r", error)
        deadline = time.monotonic() + self.grace
        for pool in self._pools.values():
            if not pool.join(max(0.0, deadline - time.monotonic())):
                self._finished_cleanly = False
                events_log.warning(
                    "agent %s still has %d running job(s) after the %.0f s grace period; "
                    "handing them on",
                    pool.name,
                    pool.running,
                    self.grace,
                )
            pool.stop()
        # Async jobs still running are cancelled at their await (rolling back their own
        # transaction, running teardown) before being handed on like threaded ones.
        if self._aio.cancel(timeout=5.0):
            self._finished_cleanly = False
        try:
            left = self.store.dispatcher_jobs(self.uuid)
            if left:
                hand_on(self.rows, left, "its worker stopped")
            self.store.deactivate_dispatcher(self.uuid, self._liveness_time())
            self._fire("deactivated")
        except Exception as error:
            events_log.error("could not deactivate dispatcher %s cleanly: %r", self.uuid, error)
        self._aio.close()
        self.timeouts.close()
        if self._watch is not None:  # it ends within a wait (0.5 s), closing its waiter:
            self._watch.join(timeout=2.0)  # a SQLite wake socket is then removed, not left
        events_log.info("deactivated dispatcher %s", self.uuid)
        self.stats.stopped()


class _Watch(threading.Thread):
    """Wakes its dispatcher when the database says there may be work (PostgreSQL NOTIFY,
    SQLite data_version). Started on activation, it also stands for the dispatcher's hold on
    its UUID in this process while `holding` is set (see `_process_gone`)."""

    def __init__(
        self, uuid: str, waiter: Waiter, stopping: threading.Event, wake: threading.Event
    ) -> None:
        super().__init__(name="jobq-waiter", daemon=True)
        self.uuid = uuid
        self.holding = True  # cleared when the dispatcher begins to shut down
        self._waiter = waiter
        self._stopping = stopping
        self._wake = wake

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._waiter.wait(0.5):
                    self._wake.set()
        finally:
            self._waiter.close()


def _unstarted(record: JobRecord) -> bool:
    """A job claimed ahead that no thread has started (the claim left it assigned)."""
    return record.status == "assigned"


def _held_behind(record: JobRecord) -> bool:
    """A job claimed ahead, unstarted, from the back lane (behind put-back jobs)."""
    return record.status == "assigned" and record.lane != 0


def _process_gone(uuid: str, host: str, pid: int) -> bool:
    """True if the record's process ran on this machine and no longer exists.

    Another pid is asked of the operating system's process table. This process's own pid
    means the record is either held by a dispatcher running here or left by an earlier
    process that had the same pid (a restarted container's pid 1, say), since no live
    process shares it: so the interpreter's table of live threads answers, a dispatcher
    holding its UUID exactly while its `_Watch` thread runs with `holding` set. Asking what
    runs, instead of keeping a module-level set of the UUIDs active here, leaves no state to
    register or forget: Dispatcher objects of one process see each other through it whether
    they share a database object or not, and one that ended can never be mistaken for live.
    """
    if host != socket.gethostname():
        return False
    if pid == os.getpid():
        return not any(
            isinstance(thread, _Watch) and thread.uuid == uuid and thread.holding
            for thread in threading.enumerate()
        )
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
