"""Prometheus metrics in the text exposition format (version 0.0.4), rendered by hand.

`database_metrics(monitor)` reads the database (job counts by queue and status, the completed
jobs of the last `window` with their durations, waits, retries and interruptions, queues
paused, dispatcher liveness, agent sizes and load); `worker_metrics(stats)` describes one
worker process from its in-memory statistics. Both answer text for a `/metrics` endpoint.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobq.monitor.service import Monitor
    from jobq.worker.stats import WorkerStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


class Exposition:
    """Collects metric families and renders them (HELP and TYPE once per family)."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, kind: str, help_text: str, value: float, **labels: Any) -> None:
        family = self._families.setdefault(name, (kind, help_text, []))
        rendered = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        family[2].append(
            f"{name}{{{rendered}}} {_number(value)}" if labels else f"{name} {_number(value)}"
        )

    def declare(self, name: str, kind: str, help_text: str) -> None:
        self._families.setdefault(name, (kind, help_text, []))

    def render(self) -> str:
        lines: list[str] = []
        for name, (kind, help_text, samples) in self._families.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)
        return "\n".join(lines) + "\n"


_STATUSES = ("pending", "assigned", "active", "callbacks", "succeeded", "failed")


def database_metrics(monitor: Monitor, *, window: dt.timedelta = dt.timedelta(hours=1)) -> str:
    from jobq.monitor.service import dispatcher_state  # not for a worker's own metrics

    store = monitor.store
    now = monitor.now()
    out = Exposition()
    out.declare("jobq_jobs", "gauge", "Jobs in the database by queue and status.")
    for q in store.queue_stats(now):
        for status in _STATUSES:
            out.add("jobq_jobs", "gauge", "", getattr(q, status), queue=q.name, status=status)
        out.add(
            "jobq_jobs_due", "gauge", "Pending jobs already due, by queue.", q.due, queue=q.name
        )
        out.add("jobq_queue_paused", "gauge", "1 if the queue is paused.", q.paused, queue=q.name)
    seconds = int(window.total_seconds())
    out.declare(
        "jobq_window_jobs",
        "gauge",
        f"Jobs completed in the last {seconds} s by queue and outcome.",
    )
    for t in store.job_totals(now - window):
        outcome = "failed" if t.failed else "succeeded"
        labels = {"queue": t.queue, "outcome": outcome}
        out.add("jobq_window_jobs", "gauge", "", t.count, **labels)
        out.add(
            "jobq_window_job_duration_seconds_sum",
            "gauge",
            f"Summed active time of the jobs completed in the last {seconds} s.",
            t.active_sum,
            **labels,
        )
        out.add(
            "jobq_window_job_duration_seconds_max",
            "gauge",
            f"Longest active time among the jobs completed in the last {seconds} s.",
            t.active_max,
            **labels,
        )
        out.add(
            "jobq_window_job_wait_seconds_sum",
            "gauge",
            f"Summed wait (begin_after to start) of the jobs completed in the last {seconds} s.",
            t.wait_sum,
            **labels,
        )
        out.add(
            "jobq_window_job_retries",
            "gauge",
            f"Claims beyond the first of the jobs completed in the last {seconds} s.",
            t.retries,
            **labels,
        )
        out.add(
            "jobq_window_job_interruptions",
            "gauge",
            f"Interruptions (worker died while active) of the jobs completed in the last "
            f"{seconds} s.",
            t.interruptions,
            **labels,
        )
    agents = store.agent_loads()
    out.declare("jobq_dispatcher_up", "gauge", "1 if the dispatcher is activated and alive.")
    alive_at = monitor.liveness_now()
    for d in store.list_dispatchers():
        state = dispatcher_state(d, alive_at)
        if state == "deactivated":
            continue
        out.add("jobq_dispatcher_up", "gauge", "", state == "alive", uuid=d.uuid, host=d.host)
        if d.last_ping is not None:
            out.add(
                "jobq_dispatcher_ping_age_seconds",
                "gauge",
                "Seconds since the dispatcher's last ping.",
                (alive_at - d.last_ping).total_seconds(),
                uuid=d.uuid,
                host=d.host,
            )
        for a in (a for a in agents if a.dispatcher_uuid == d.uuid):
            labels = {"uuid": d.uuid, "queue": a.queue, "agent": a.name}
            out.add("jobq_agent_size", "gauge", "Jobs an agent may run at once.", a.size, **labels)
            out.add(
                "jobq_agent_jobs",
                "gauge",
                "Jobs an agent holds now (assigned, active, callbacks).",
                a.assigned + a.active + a.callbacks,
                **labels,
            )
    return out.render()


def worker_metrics(stats: WorkerStats, extra: Iterable[tuple[str, float]] = ()) -> str:
    """One worker process: status, uptime, polls, jobs started/succeeded/failed here."""
    info = stats.status_info()
    out = Exposition()
    labels = {"uuid": info["uuid"] or ""}
    for status in ("RUNNING", "FAILING", "STUCK", "STARTING", "STOPPED"):
        out.add(
            "jobq_worker_status",
            "gauge",
            "1 for the worker's current status.",
            info["status"] == status,
            status=status,
            **labels,
        )
    uptime = info["uptime"]
    out.add(
        "jobq_worker_uptime_seconds",
        "gauge",
        "Seconds since the dispatcher activated.",
        0.0 if uptime is None else uptime.total_seconds(),
        **labels,
    )
    since = info["time since last poll"]
    if since is not None:
        out.add(
            "jobq_worker_seconds_since_poll",
            "gauge",
            "Seconds since the last poll.",
            since.total_seconds(),
            **labels,
        )
    totals = stats.totals()
    for key in ("polls", "started", "succeeded", "failed", "reassigned"):
        out.add(
            f"jobq_worker_{key}_total",
            "counter",
            f"{key.capitalize()} in this worker process since it started.",
            totals[key],
            **labels,
        )
    out.add(
        "jobq_worker_running_jobs",
        "gauge",
        "Jobs running in this process now.",
        len(stats.active_jobs()),
        **labels,
    )
    for name, value in extra:
        out.add(name, "gauge", name, value, **labels)
    return out.render()
