"""The dispatcher: one per worker process, identified by a UUID.

It registers itself, pings, and polls: for each of its agents with room, it claims due jobs
(several per claim) and hands them to the agent's threads. It sleeps until the database says
there may be work (PostgreSQL NOTIFY, SQLite data_version), a job of its own finishes, or
`poll_interval` passes. Run it in the foreground (`run()`, as `jobq worker` does) or in a
background thread of an application (`start()` / `stop()`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid as uuid_module
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from jobq.errors import ConfigError, ConflictError, StoreUnavailable
from jobq.store.base import AgentRecord, JobRecord
from jobq.worker.agent import DEFAULT_AGENT, DEFAULT_SIZE, AgentPool, AgentSpec, load_filter
from jobq.worker.runner import Runner

if TYPE_CHECKING:
    from jobq.database import Database

events_log = logging.getLogger("jobq.events")
trace_log = logging.getLogger("jobq.trace")


class Dispatcher:
    """Claims and runs jobs of some queues for this process."""

    def __init__(
        self,
        db: Database,
        *,
        queues: Sequence[str] = ("",),
        agents: Sequence[AgentSpec] | None = None,
        uuid: str | None = None,
        poll_interval: float = 1.0,
        ping_interval: float = 5.0,
        death_interval: float = 30.0,
        grace: float = 30.0,
    ) -> None:
        if isinstance(queues, str):
            raise ConfigError("queues must be a list of queue names, not a single string")
        if poll_interval <= 0 or ping_interval <= 0 or death_interval <= ping_interval:
            raise ConfigError(
                "poll_interval and ping_interval must be > 0 and death_interval > ping_interval"
            )
        self.db = db
        self.queues = list(dict.fromkeys(queues))
        self.agent_specs = (
            list(agents) if agents is not None else [AgentSpec(DEFAULT_AGENT, DEFAULT_SIZE)]
        )
        self.uuid = str(
            uuid_module.UUID(uuid or os.environ.get("JOBQ_UUID") or str(uuid_module.uuid4()))
        )
        self.poll_interval = poll_interval
        self.ping_interval = ping_interval
        self.death_interval = death_interval
        self.grace = grace
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._activated = threading.Event()
        self._pools: dict[tuple[str, str], AgentPool] = {}
        self._filters: dict[str, Callable[[Any], bool] | None] = {}
        self._thread: threading.Thread | None = None
        self._startup_error: BaseException | None = None
        self.polls = 0
        self._finished_cleanly = True

    def __repr__(self) -> str:
        return f"<jobq.Dispatcher {self.uuid} queues={self.queues}>"

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
        """Ask the loop to stop (safe from a signal handler); `run()` then returns."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Poll now (for example after putting jobs from this process)."""
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        """Register, then poll until `stop()` (or SIGTERM via the CLI)."""
        store = self.db.store
        self._finished_cleanly = True
        self._install_agents()
        store.register_dispatcher(
            self.uuid,
            socket.gethostname(),
            os.getpid(),
            self.ping_interval,
            self.death_interval,
            self.db.clock.now(),
        )
        events_log.info("activated dispatcher %s (queues %s)", self.uuid, self.queues)
        waiter = store.waiter()
        watcher = threading.Thread(
            target=self._watch, args=(waiter,), name="jobq-waiter", daemon=True
        )
        watcher.start()
        self._activated.set()
        last_ping = self.db.clock.now()
        agents: list[AgentRecord] = []
        agents_read_at = None
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                now = self.db.clock.now()
                try:
                    if (now - last_ping).total_seconds() >= self.ping_interval:
                        store.ping(self.uuid, now)
                        last_ping = now
                    if agents_read_at is None or (now - agents_read_at).total_seconds() >= 1.0:
                        agents = [a for a in store.agents(self.uuid) if a.queue in self.queues]
                        agents_read_at = now
                        self._sync_pools(agents)
                    self._poll(agents, now)
                except (StoreUnavailable, ConflictError) as error:
                    events_log.warning("poll failed (%s); retrying", error)
                    self._stopping.wait(min(5.0, self.poll_interval))
                except Exception as error:
                    events_log.critical("unexpected error while polling: %r", error, exc_info=True)
                    self._stopping.wait(self.poll_interval)
                self.polls += 1
                self._wake.wait(self.poll_interval)
        finally:
            self._shutdown(waiter)

    def _watch(self, waiter: Any) -> None:
        try:
            while not self._stopping.is_set():
                if waiter.wait(0.5):
                    self._wake.set()
        finally:
            waiter.close()

    def _install_agents(self) -> None:
        store = self.db.store
        store.clear_agents(self.uuid)
        for queue in self.queues:
            self.db.queue(queue)
            for spec in self.agent_specs:
                store.set_agent(self.uuid, queue, spec.name, spec.size, spec.filter)

    def _sync_pools(self, agents: list[AgentRecord]) -> None:
        wanted = {(a.queue, a.name): a for a in agents}
        self.db.store.reserve_connections(sum(a.size for a in agents) * 2 + 4)
        for key, pool in list(self._pools.items()):
            if key not in wanted:
                pool.stop()
                del self._pools[key]
        for key, agent in wanted.items():
            pool = self._pools.get(key)
            if pool is None:
                runner = Runner(self.db, self.uuid, agent.name, self._stopping)
                pool = AgentPool(agent.name, agent.queue, runner.run)
                pool.on_done = self._wake.set
                self._pools[key] = pool
            pool.resize(agent.size)
            if agent.filter not in self._filters and agent.filter is not None:
                try:
                    self._filters[agent.filter] = load_filter(agent.filter)
                except ConfigError as error:
                    events_log.error("agent %s: %s; it claims nothing", agent.name, error)
                    self._filters[agent.filter] = None

    def _accept(self, path: str) -> Callable[[JobRecord], bool] | None:
        predicate = self._filters.get(path)

        def accept(record: JobRecord) -> bool:
            if predicate is None:
                return False
            try:
                return bool(predicate(self.db._job_from_record(record)))
            except Exception as error:
                events_log.error("filter %s failed on job %s: %r", path, record.id, error)
                return False

        return accept

    def _poll(self, agents: list[AgentRecord], now: Any) -> None:
        if self._stopping.is_set():
            return
        for agent in agents:
            pool = self._pools.get((agent.queue, agent.name))
            if pool is None:
                continue
            free = agent.size - pool.running
            if free <= 0:
                continue
            accept = None if agent.filter is None else self._accept(agent.filter)
            # A fresh reading, taken after `free`: a job that a runner of this pool put back
            # (front of the queue, due "now") before freeing its slot is due for this claim.
            now = self.db.clock.now()
            records = self.db.store.claim(agent.queue, self.uuid, agent.name, free, now, accept)
            for record in records:
                trace_log.debug("claimed job %s for agent %s", record.id, agent.name)
                pool.submit(record)

    def _shutdown(self, waiter: Any) -> None:
        grace = self.grace
        for pool in self._pools.values():
            if not pool.join(grace):
                self._finished_cleanly = False
                events_log.warning(
                    "agent %s still has %d running job(s) after the %.0f s grace period",
                    pool.name,
                    pool.running,
                    grace,
                )
            pool.stop()
        try:
            self.db.store.deactivate_dispatcher(self.uuid, self.db.clock.now())
        except Exception as error:
            events_log.error("could not mark dispatcher %s deactivated: %r", self.uuid, error)
        events_log.info("deactivated dispatcher %s", self.uuid)
