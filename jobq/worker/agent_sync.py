"""Agent sync, every second: a dispatcher's agents (size and filter, per queue) and the paused
queues live in the database and change while the worker runs; this loop reads them and
resizes the agents' pools in this process to match.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from jobq.errors import ConfigError
from jobq.worker.agent import filter_context, load_filter
from jobq.worker.loops import Backoff, Every

if TYPE_CHECKING:
    from jobq.model.codec import Codec
    from jobq.store.base import AgentRecord, Store
    from jobq.worker.agent import AgentPool

events_log = logging.getLogger("jobq.events")

AGENTS_EVERY = 1.0  # seconds between reads of the agents and pauses


class AgentSync:
    """Reads the agents of `queues` and the paused queues every `interval` seconds; keeps a pool
    per agent (`new_pool` makes one) and each filter's predicate, loaded once."""

    name = "agent sync"

    def __init__(
        self,
        store: Store,
        uuid: str,
        queues: Sequence[str],
        *,
        new_pool: Callable[[AgentRecord], AgentPool],
        removed: Callable[[AgentPool], None] = lambda pool: None,
        backoff: Backoff,
        codec: Codec | None = None,
        interval: float = AGENTS_EVERY,
    ) -> None:
        self._store = store
        self._codec = codec
        self._uuid = uuid
        self._queues = queues
        self._new_pool = new_pool
        self._removed = removed  # told of a pool stopped and dropped: its jobs still run
        self._backoff = backoff
        self.interval = interval
        self._timer = Every(lambda: self.interval)
        self.agents: list[AgentRecord] = []  # as last read, paused queues' agents included
        self.paused: set[str] = set()  # nothing is claimed for these queues
        self.pools: dict[tuple[str, str], AgentPool] = {}  # by (queue, agent name)
        # A filter's predicate by import path; None if it cannot be loaded (it claims nothing).
        self.filters: dict[str, Callable[[Any], bool] | None] = {}
        # Agents whose filter's seal does not hold under JOBQ_SECRET: they claim nothing.
        self.unsealed: set[tuple[str, str]] = set()

    def start(self) -> None:
        """A new run: read at once, and nothing is known until then."""
        self._timer.reset()
        self.agents = []

    def due(self, now: dt.datetime) -> bool:
        return self._timer.due(now)

    def tick(self, now: dt.datetime) -> None:
        store = self._store
        self.agents = [a for a in store.agents(self._uuid) if a.queue in self._queues]
        self.paused = store.paused_queues()
        self._timer.last = now  # read: a pool that fails to resize waits for the next read
        self._resize(self.agents)

    def failed(self, error: Exception) -> None:
        self._backoff.failed(self.name, error)

    def claimable(self) -> list[AgentRecord]:
        """The agents to claim for: those of queues not paused."""
        return [a for a in self.agents if a.queue not in self.paused]

    def predicate(self, agent: AgentRecord) -> Callable[[Any], bool] | None:
        """The loaded filter of `agent`; None (it claims nothing) if it cannot be loaded or
        its seal does not hold."""
        if agent.filter is None or (agent.queue, agent.name) in self.unsealed:
            return None
        return self.filters.get(agent.filter)

    def _sealed(self, agent: AgentRecord) -> bool:
        assert agent.filter is not None
        if self._codec is None:
            return True
        context = filter_context(agent.dispatcher_uuid, agent.queue, agent.name, agent.filter)
        return self._codec.seal_holds(context, agent.filter_seal)

    def _resize(self, agents: list[AgentRecord]) -> None:
        wanted = {(a.queue, a.name): a for a in agents}
        self._store.reserve_connections(sum(a.size for a in agents) * 2 + 4)
        for key, pool in list(self.pools.items()):
            if key not in wanted:
                pool.stop()
                del self.pools[key]
                self._removed(pool)
        for key, agent in wanted.items():
            if key not in self.pools:
                self.pools[key] = self._new_pool(agent)
            self.pools[key].resize(agent.size)
            if agent.filter is not None and not self._sealed(agent):
                if key not in self.unsealed:
                    events_log.error(
                        "agent %s of queue %r: its filter %s is not signed with this worker's "
                        "JOBQ_SECRET (set it from a process with the secret: db.set_agent, "
                        "jobq agent-filter); it claims nothing",
                        agent.name,
                        agent.queue,
                        agent.filter,
                    )
                    self.unsealed.add(key)
                continue
            self.unsealed.discard(key)
            if agent.filter not in self.filters and agent.filter is not None:
                try:
                    self.filters[agent.filter] = load_filter(agent.filter)
                except ConfigError as error:
                    events_log.error("agent %s: %s; it claims nothing", agent.name, error)
                    self.filters[agent.filter] = None
