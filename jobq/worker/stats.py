"""In-process statistics of one dispatcher (the original's `async` monitor, catalogue 8.1).

`WorkerStats` keeps two ring buffers: the last `polls_kept` polls (what each agent held) and
the last `jobs_kept` job records (thread, times, outcome). The dispatcher feeds it with
one-line calls (`activated`, `polled`, `stopped`, and `wrap` around each agent's runner).
`wrap` hands the runner each job's record (a `JobInfo`); the runner carries it to whichever
thread ends the job (an async job's steps, a group commit) and reports the outcome into it
with `note_outcome` / `note_reassigned`. Nothing here touches the database.

Status: STOPPED (not activated, or stopped), STARTING (activated, no poll yet and none
overdue), STUCK (the next poll is overdue by more than `max(interval, 1 s)`: the original
used no tolerance, which made a busy loop flicker), RUNNING otherwise.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jobq.worker.settling import when_done

if TYPE_CHECKING:
    from jobq._clock import Clock
    from jobq.store.base import AgentRecord, JobRecord
    from jobq.worker.agent import AgentPool


class Observed(Protocol):
    """What the statistics read of the dispatcher they describe."""

    @property
    def uuid(self) -> str: ...
    @property
    def queues(self) -> list[str]: ...
    @property
    def poll_interval(self) -> float: ...
    @property
    def clock(self) -> Clock: ...


_MAX_TEXT = 10000


@dataclass
class JobInfo:
    """What this process knows of one job it ran (the original's info record)."""

    id: int
    call: str
    queue: str
    agent: str
    thread: str
    poll_id: int
    quota_names: tuple[str, ...]
    started: dt.datetime
    completed: dt.datetime | None = None
    failed: bool | None = None
    result: str | None = None
    reassigned: bool = False

    def note_outcome(self, failed: bool, result: str | None) -> None:
        """Called by the runner when it logs the job's outcome."""
        self.failed = failed
        text = result or ""
        self.result = text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "[...TRUNCATED...]"

    def note_reassigned(self) -> None:
        """Called by the runner when the job was taken from this worker."""
        self.reassigned = True


class RecordedRun(Protocol):
    """A runner's `run`, given the record its outcome is noted in."""

    def __call__(self, record: JobRecord, notes: JobInfo, /) -> Any: ...


@dataclass
class Poll:
    key: int
    utc_timestamp: dt.datetime
    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


class WorkerStats:
    """Ring buffers of polls and jobs for one dispatcher, and its status."""

    def __init__(
        self, dispatcher: Observed, *, polls_kept: int = 400, jobs_kept: int = 200
    ) -> None:
        self._dispatcher = dispatcher
        self._lock = threading.Lock()
        self._polls: collections.deque[Poll] = collections.deque(maxlen=polls_kept)
        self._jobs: collections.OrderedDict[int, JobInfo] = collections.OrderedDict()
        self._jobs_kept = jobs_kept
        self._running: dict[int, JobInfo] = {}
        self.activated_at: dt.datetime | None = None
        self.stopped_at: dt.datetime | None = None
        self._poll_key = 0
        self._failing: str | None = None  # why the last round did not go through
        self._totals = dict.fromkeys(("polls", "started", "succeeded", "failed", "reassigned"), 0)

    def _now(self) -> dt.datetime:
        return self._dispatcher.clock.now()

    # -- hooks (one line each in the dispatcher and the runner) ----------------------------------
    def activated(self) -> None:
        with self._lock:
            self.activated_at = self._now()
            self.stopped_at = None

    def stopped(self) -> None:
        with self._lock:
            self.stopped_at = self._now()

    def failed(self, what: str, error: Exception) -> None:
        """A loop or the claim failed: until a round goes through, the worker is FAILING."""
        with self._lock:
            self._failing = f"{what} failed: {error!r}"[:_MAX_TEXT]

    def round_ended(self, went_through: bool) -> None:
        """A poll round ended; one that went through (its loops and claim) clears FAILING."""
        if went_through and self._failing is not None:
            with self._lock:
                self._failing = None

    def polled(self, agents: Sequence[AgentRecord], pools: Mapping[Any, AgentPool]) -> None:
        now = self._now()
        with self._lock:
            self._poll_key += 1
            self._totals["polls"] += 1
            poll = Poll(self._poll_key, now)
            for agent in agents:
                pool = pools.get((agent.queue, agent.name))
                running = [
                    i.id
                    for i in self._running.values()
                    if i.queue == agent.queue and i.agent == agent.name
                ]
                poll.results.setdefault(agent.queue, {})[agent.name] = {
                    "size": agent.size,
                    "len": 0 if pool is None else pool.running,
                    "active jobs": running,
                    "error": None,
                }
            self._polls.append(poll)

    def wrap(self, run: RecordedRun, queue: str, agent: str) -> Callable[[JobRecord], Any]:
        """An agent's runner that records each job it runs (until its end, for an async job
        whose runner returns a future, or an outcome still committing): `run` is given the
        job's record to note the outcome in."""

        def run_recorded(record: JobRecord) -> Any:
            info = JobInfo(
                id=record.id,
                call=record.call_repr,
                queue=queue,
                agent=agent,
                thread=threading.current_thread().name,
                poll_id=self._poll_key,
                quota_names=record.quota_names,
                started=self._now(),
            )
            with self._lock:
                self._running[record.id] = info
                self._jobs[record.id] = info
                self._jobs.move_to_end(record.id)
                while len(self._jobs) > self._jobs_kept:
                    self._jobs.popitem(last=False)
                self._totals["started"] += 1

            def completed() -> None:
                with self._lock:
                    info.completed = self._now()
                    self._running.pop(record.id, None)
                    if info.reassigned:
                        self._totals["reassigned"] += 1
                    elif info.failed is not None:
                        self._totals["failed" if info.failed else "succeeded"] += 1

            pending = None
            try:
                pending = run(record, info)
            finally:
                when_done(pending, completed)
            return pending

        return run_recorded

    # -- reads -----------------------------------------------------------------------------------
    def status_info(self) -> dict[str, Any]:
        """{status, poll interval, time since last poll, uptime, uuid} (catalogue 8.1), and
        `failing`: why its last round did not go through (then status FAILING), or None."""
        d = self._dispatcher
        interval = dt.timedelta(seconds=d.poll_interval)
        now = self._now()
        with self._lock:
            last = self._polls[-1].utc_timestamp if self._polls else None
            activated, stopped = self.activated_at, self.stopped_at
            failing = self._failing
        if activated is None or stopped is not None:
            return {
                "status": "STOPPED",
                "poll interval": interval,
                "time since last poll": None,
                "uptime": None,
                "uuid": d.uuid,
                "failing": None,
            }
        tolerance = max(interval, dt.timedelta(seconds=1))
        due = (last or activated) + interval + tolerance
        if due < now:
            status = "STUCK"
        elif failing is not None:
            status = "FAILING"  # it polls, but cannot ping, sweep or claim: not healthy
        elif last is None:
            status = "STARTING"
        else:
            status = "RUNNING"
        return {
            "status": status,
            "poll interval": interval,
            "time since last poll": None if last is None else now - last,
            "uptime": now - activated,
            "uuid": d.uuid,
            "failing": failing,
        }

    def active_jobs(self, queue: str | None = None, agent: str | None = None) -> list[int]:
        """Ids of the jobs running in this process's threads now, newest first."""
        with self._lock:
            infos = sorted(self._running.values(), key=lambda i: i.started, reverse=True)
        return [
            i.id
            for i in infos
            if (queue is None or i.queue == queue) and (agent is None or i.agent == agent)
        ]

    def job_info(self, job_id: int) -> JobInfo:
        with self._lock:
            info = self._jobs.get(job_id)
        if info is None:
            raise ValueError(f"job {job_id} is not in this worker's records")
        return info

    def jobs(self) -> list[JobInfo]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def polls(self, count: int = 3) -> list[Poll]:
        """The `count` most recent polls, newest first."""
        with self._lock:
            return list(reversed(self._polls))[: max(0, count)]

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._totals)

    def statistics(self) -> dict[str, Any]:
        """Over the kept job records: started, successful, failed, reassigned, and the
        shortest/longest successful, failed and still-active jobs (ids). `statistics start`
        is the oldest record considered and `statistics end` the newest (the original had
        them reversed)."""
        now = self._now()
        with self._lock:
            infos = list(self._jobs.values())
        done_ok = [i for i in infos if i.completed and i.failed is False]
        done_bad = [i for i in infos if i.completed and i.failed]
        running = [i for i in infos if i.completed is None]

        def span(i: JobInfo) -> dt.timedelta:
            return (i.completed or now) - i.started

        def ends(items: list[JobInfo]) -> tuple[int | None, int | None]:
            if not items:
                return None, None
            ordered = sorted(items, key=span)
            return ordered[0].id, ordered[-1].id

        ok_short, ok_long = ends(done_ok)
        bad_short, bad_long = ends(done_bad)
        act_short, act_long = ends(running)
        return {
            "started": len(infos),
            "successful": len(done_ok),
            "failed": len(done_bad),
            "reassigned": sum(1 for i in infos if i.reassigned),
            "shortest successful": ok_short,
            "longest successful": ok_long,
            "shortest failed": bad_short,
            "longest failed": bad_long,
            "shortest active": act_short,
            "longest active": act_long,
            "statistics start": infos[0].started if infos else None,
            "statistics end": infos[-1].started if infos else None,
        }

    def snapshot(self, polls: int = 3, jobs: int = 20) -> dict[str, Any]:
        """Everything `jobq worker-status` shows, as one JSON-able structure (see render)."""
        with self._lock:
            running = list(self._running.values())
        return {
            "status": self.status_info(),
            "queues": list(self._dispatcher.queues),
            "active jobs": sorted(running, key=lambda i: i.started, reverse=True),
            "polls": self.polls(polls),
            "jobs": self.jobs()[:jobs],
            "statistics": self.statistics(),
            "totals": self.totals(),
        }
