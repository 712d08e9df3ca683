"""`jobq worker --processes N`: N dispatcher processes under one supervisor, for CPU-bound work.

Each slot runs `python -m jobq worker ...` with its own UUID, stable across restarts of that
slot: derived from `--uuid` as `uuid5(base, str(slot))`, else drawn once when the supervisor
starts. A restarted slot therefore recovers its predecessor's jobs at once (same UUID, same
host, its process gone: see the dispatcher's activation). A child that dies is restarted: at
once if it had run for at least `min_uptime` seconds, else after a delay that doubles with each
quick death (0.5 s, 1 s, 2 s ... up to `max_backoff`). SIGTERM and SIGINT are forwarded to
every child, which stops gracefully (its own grace period); the supervisor exits 0 when every
child did.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid as uuid_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from jobq.worker.timeouts import RUNAWAY_EXIT

events_log = logging.getLogger("jobq.events")


def slot_uuids(base: str | None, count: int) -> list[str]:
    """One UUID per slot: `uuid5(base, str(i))` when a base UUID is given, else random."""
    if base is None:
        return [str(uuid_module.uuid4()) for _ in range(count)]
    root = uuid_module.UUID(base)
    return [str(uuid_module.uuid5(root, str(i))) for i in range(count)]


def backoff(quick_deaths: int, max_backoff: float = 60.0) -> float:
    """Delay before restarting a slot whose child died `quick_deaths` times in a row soon
    after its start (0: it had run long enough, restart at once)."""
    if quick_deaths <= 0:
        return 0.0
    return float(min(max_backoff, 0.5 * 2 ** (quick_deaths - 1)))


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM (a graceful stop) if the supervisor itself dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class Slot:
    index: int
    uuid: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    """Runs one child process per slot until SIGTERM/SIGINT (see the module docstring)."""

    def __init__(
        self,
        slots: Sequence[tuple[str, list[str]]],
        *,
        grace: float = 30.0,
        min_uptime: float = 10.0,
        max_backoff: float = 60.0,
        poll: float = 0.1,
    ) -> None:
        self.slots = [Slot(i, uuid, list(command)) for i, (uuid, command) in enumerate(slots)]
        self.grace = grace
        self.min_uptime = min_uptime
        self.max_backoff = max_backoff
        self.poll = poll
        self._signal: int | None = None

    def request_stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """Stop every child gracefully (safe from a signal handler)."""
        if self._signal is None:
            self._signal = signum

    def run(self) -> int:
        """Supervise until stopped; 0 if every child stopped cleanly, else 1."""
        previous: dict[int, Any] = {}
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            previous[stop_signal] = signal.signal(stop_signal, self.request_stop)
        try:
            for slot in self.slots:
                self._start(slot)
            while self._signal is None:
                self._watch()
                time.sleep(self.poll)
            events_log.info(
                "supervisor: signal %d, stopping %d worker(s)", self._signal, len(self.slots)
            )
            return self._stop_all(self._signal)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _start(self, slot: Slot) -> None:
        slot.process = subprocess.Popen(
            slot.command, preexec_fn=_die_with_parent if sys.platform == "linux" else None
        )
        slot.started = time.monotonic()
        slot.restart_at = None
        events_log.info(
            "supervisor: worker %d (pid %d, UUID %s) started",
            slot.index,
            slot.process.pid,
            slot.uuid,
        )

    def _watch(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is not None:
                code = slot.process.poll()
                if code is None:
                    continue
                uptime = now - slot.started
                if code == RUNAWAY_EXIT:  # it stopped to be replaced: not a crash
                    events_log.warning(
                        "supervisor: worker %d (pid %d, UUID %s) ended: a job taken away after "
                        "its time limit still ran in one of its threads; replacing it",
                        slot.index,
                        slot.process.pid,
                        slot.uuid,
                    )
                    slot.process = None
                    slot.quick_deaths = 0
                    slot.restart_at = now
                    slot.restarts += 1
                    self._start(slot)
                    continue
                slot.quick_deaths = slot.quick_deaths + 1 if uptime < self.min_uptime else 0
                delay = backoff(slot.quick_deaths, self.max_backoff)
                events_log.error(
                    "supervisor: worker %d (pid %d, UUID %s) died with code %s after %.1f s; "
                    "restarting it in %.1f s",
                    slot.index,
                    slot.process.pid,
                    slot.uuid,
                    code,
                    uptime,
                    delay,
                )
                slot.process = None
                slot.restart_at = now + delay
            if slot.restart_at is not None and now >= slot.restart_at and self._signal is None:
                slot.restarts += 1
                self._start(slot)

    def _stop_all(self, signum: int) -> int:
        running = [s for s in self.slots if s.process is not None and s.process.poll() is None]
        for slot in running:
            assert slot.process is not None
            try:
                slot.process.send_signal(signum)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.grace + 30.0
        clean = True
        for slot in self.slots:
            if slot.process is None:
                continue
            try:
                code = slot.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                events_log.error("supervisor: worker %d did not stop in time; killed", slot.index)
                slot.process.kill()
                code = slot.process.wait()
            if code != 0:
                clean = False
                events_log.error("supervisor: worker %d stopped with code %s", slot.index, code)
        events_log.info("supervisor: stopped (%s)", "cleanly" if clean else "with errors")
        return 0 if clean else 1


def worker_command(options: Sequence[str], slot_uuid: str) -> list[str]:
    """The command of one slot: `python -m jobq worker OPTIONS --uuid SLOT_UUID`."""
    return [sys.executable, "-m", "jobq", "worker", *options, "--uuid", slot_uuid]


def supervise(
    options_for: Callable[[int], list[str]],
    processes: int,
    base_uuid: str | None,
    *,
    grace: float,
) -> int:
    """Run `processes` worker processes; `options_for(slot)` gives each one's options."""
    uuids = slot_uuids(base_uuid, processes)
    slots = [(u, worker_command(options_for(i), u)) for i, u in enumerate(uuids)]
    events_log.info("supervisor (pid %d): %d worker processes", os.getpid(), processes)
    return Supervisor(slots, grace=grace).run()
