"""Agents: per (dispatcher, queue), how many jobs at once (`size`) and which (`filter`).

An agent's configuration lives in the database (`jobq_agents`), so it can change while the
worker runs; `AgentPool` is its thread pool in this process, resized to match.
"""

from __future__ import annotations

import importlib
import logging
import queue as queue_module
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobq.errors import ConfigError

events_log = logging.getLogger("jobq.events")

DEFAULT_AGENT = "main"
DEFAULT_SIZE = 3


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


def load_filter(path: str) -> Callable[[Any], bool]:
    """Import a filter predicate from `module:qualname`."""
    module_name, sep, name = path.partition(":")
    if not sep or not name:
        raise ConfigError(f"filter {path!r} must be an import path like 'package.module:function'")
    try:
        found: Any = importlib.import_module(module_name)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"cannot import filter {path!r}: {error}") from error
    if not callable(found):
        raise ConfigError(f"filter {path!r} is not callable")
    return found  # type: ignore[no-any-return]


class AgentPool:
    """Daemon threads running one agent's jobs; `size` can change at any time."""

    def __init__(self, name: str, queue: str, run: Callable[[Any], None]) -> None:
        self.name = name
        self.queue = queue
        self._run = run
        self._work: queue_module.SimpleQueue[Any] = queue_module.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self.running = 0  # jobs handed to this pool and not yet finished
        self.on_done: Callable[[], None] = lambda: None

    def resize(self, size: int) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < size:
                thread = threading.Thread(
                    target=self._loop,
                    name=f"jobq-{self.queue or 'default'}-{self.name}-{len(self._threads)}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
            for _ in range(len(self._threads) - size):
                self._work.put(None)  # one thread retires per sentinel
                self._threads.pop()

    def submit(self, item: Any) -> None:
        with self._lock:
            self.running += 1
        self._work.put(item)

    def _loop(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            try:
                self._run(item)
            except BaseException as error:  # a job must never kill the pool silently
                events_log.critical(
                    "unexpected error in agent %s: %r", self.name, error, exc_info=True
                )
            finally:
                with self._lock:
                    self.running -= 1
                    if self.running == 0:
                        self._idle.notify_all()
                self.on_done()

    def stop(self) -> None:
        self.resize(0)

    def join(self, timeout: float | None) -> bool:
        """Wait until no job of this pool is running; True if that happened in time."""
        with self._idle:
            return self._idle.wait_for(lambda: self.running == 0, timeout)
