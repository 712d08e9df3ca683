"""Rich tables and JSON output shared by the `jobq` commands.

rich is imported when a command prints, not when the CLI loads: a worker (`jobq worker`) never
prints a table, so its process does not load rich. JSON output is the catalogue's (sorted keys,
indent 4), from the view records' own mapping (`jobq.monitor.render.to_json`).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from jobq.monitor.render import duration_text, to_json, to_jsonable
from jobq.monitor.views import (
    AgentView,
    DispatcherView,
    JobRow,
    JobStats,
    JobSummary,
    QuotaView,
    RateLimitView,
    StatusView,
    TimedJob,
    TreeNode,
)

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.table import Table

    from jobq.jobs.schedules import Schedule

ZERO = dt.timedelta(0)

_STYLE = {
    "pending": "cyan",
    "assigned": "blue",
    "active": "yellow",
    "callbacks": "magenta",
    "completed": "green",
    "failed": "bold red",
    "alive": "green",
    "dead": "bold red",
    "deactivated": "dim",
}


def console() -> Console:
    """A rich Console: as wide as the terminal, or 200 columns when piped."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def new_table(*args: Any, **kwargs: Any) -> Table:
    """A rich Table (imported on first use, as in `console`)."""
    from rich.table import Table

    return Table(*args, **kwargs)


def emit_json(value: Any) -> None:
    """Print `value` (view records included) as the catalogue's JSON."""
    click.echo(to_json(value))


def escape(text: str) -> str:
    """`text` shown as is inside rich markup (a message may hold `[...]`)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def human(value: Any) -> str:
    """Short human text for table cells, escaped for rich markup (a call, a result or a name
    may hold `[...]`, which rich would read as a style or reject)."""
    if value is None:
        return "-"
    if isinstance(value, dt.timedelta):
        return duration_text(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value) or "-"
    if isinstance(value, dict):
        return escape(json.dumps(to_jsonable(value), sort_keys=True)) if value else "-"
    return escape(str(value))


def queue_name(name: str) -> str:
    """A queue's name for people, escaped for rich markup: the default queue ("") shows as
    `(default)`."""
    return "(default)" if name == "" else escape(name)


def wait_text(wait: dt.timedelta | None) -> str:
    """A job's wait; a job scheduled later (negative wait) shows when: `in 5m`."""
    if wait is not None and wait < dt.timedelta(0):
        return f"in {duration_text(-wait)}"
    return human(wait)


def error_text(error: str | None, limit: int = 60) -> str:
    """A failure's `Type: message` for a table cell, on one line and truncated."""
    if not error:
        return "-"
    line = " ".join(error.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def styled_status(view: JobRow | JobSummary | TreeNode) -> str:
    """The status in its colour (rich markup); a failed completed job shows as failed."""
    if view.status == "completed" and view.failed:
        return "[bold red]failed[/]"
    return f"[{_STYLE.get(view.status, 'white')}]{view.status}[/]"


def _state(state: str) -> str:
    return f"[{_STYLE[state]}]{state}[/]"


def queues_table(status: StatusView) -> Table:
    """`jobq status`: one row per queue with its counts and the capacity serving it."""
    table = new_table(title="queues", header_style="bold")
    for column in ("queue", "paused", "pending", "due", "assigned", "active", "callbacks"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    table.add_column("succeeded", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("capacity", justify="right")
    for q in status.queues:
        table.add_row(
            queue_name(q.name),
            "[bold yellow]paused[/]" if q.paused else "no",
            str(q.pending),
            str(q.due),
            str(q.assigned),
            str(q.active),
            str(q.callbacks),
            str(q.succeeded),
            f"[red]{q.failed}[/]" if q.failed else "0",
            str(q.capacity),
        )
    return table


def queue_dispatchers_table(status: StatusView) -> Table:
    """`jobq status`: the dispatchers serving each queue, with their agents' load there."""
    table = new_table(title="dispatchers", header_style="bold")
    for column in ("queue", "dispatcher", "state", "last ping", "since ping", "agents"):
        table.add_column(column)
    for q in status.queues:
        for d in q.dispatchers:
            table.add_row(
                queue_name(q.name),
                escape(d.uuid),
                _state(d.state),
                human(d.last_ping),
                human(d.since_ping),
                "; ".join(_agent_load(a) for a in d.agents),
            )
    return table


def dispatchers_table(views: Sequence[DispatcherView]) -> Table:
    """`jobq dispatchers`: every dispatcher record with its agents in every queue."""
    table = new_table(header_style="bold")
    for column in ("uuid", "state", "host", "pid", "last ping", "since ping", "agents"):
        table.add_column(column)
    for d in views:
        table.add_row(
            escape(d.uuid),
            _state(d.state),
            escape(d.host),
            str(d.pid),
            human(d.last_ping),
            human(d.since_ping),
            "; ".join(f"{queue_name(a.queue)}/{_agent_load(a)}" for a in d.agents) or "-",
        )
    return table


def _agent_load(agent: AgentView) -> str:
    """An agent's name, jobs held of its size, and filter, escaped: `main 2/3 filter m:f`."""
    text = f"{agent.name} {agent.held}/{agent.size}"
    return escape(text + (f" filter {agent.filter}" if agent.filter else ""))


def jobs_table(rows: Sequence[JobRow], title: str | None = None) -> Table:
    """`jobq jobs`: one row per job with its wait (`in 5m` if scheduled later) and active
    time, and an error column (`Type: message`) when a listed job failed."""
    table = new_table(title=title, header_style="bold")
    columns = ["id", "status", "queue", "priority", "agent", "call", "begin after", "wait"]
    columns.append("active")
    with_error = any(r.failed for r in rows)
    if with_error:
        columns.append("error")
    for column in columns:
        right = column in ("id", "priority", "wait", "active")
        table.add_column(column, justify="right" if right else "left")
    for r in rows:
        cells = [
            str(r.id),
            styled_status(r),
            queue_name(r.queue),
            str(r.priority),
            escape(r.agent or "-"),
            escape(r.call),
            human(r.begin_after),
            wait_text(r.wait),
            human(r.active),
        ]
        if with_error:
            cells.append(f"[red]{escape(error_text(r.error))}[/]" if r.failed else "-")
        table.add_row(*cells)
    return table


def summary_table(summary: JobSummary) -> Table:
    """A job's summary as key / value lines, in the catalogue's order."""
    table = new_table(show_header=False, box=None, pad_edge=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in summary.items():
        if key == "status":
            table.add_row(key, styled_status(summary))
        elif key == "result" and summary.failed:
            table.add_row(key, f"[red]{human(value)}[/]")
        elif key == "progress" and value is not None:
            table.add_row(key, f"{value * 100:.0f}%")
        elif key == "queue":
            table.add_row(key, queue_name(value))
        elif key == "wait":
            table.add_row(key, wait_text(value))
        elif key == "retried" and summary.retries is not None:
            table.add_row(key, f"{value} of {summary.retries}")
        else:
            table.add_row(key, human(value))
    return table


def jobstats_table(stats: JobStats) -> Table:
    """`jobq jobstats`: the counts, then each extreme as its duration and job."""
    table = new_table(show_header=False, box=None)
    table.add_column("key", style="bold")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        if isinstance(value, TimedJob):
            table.add_row(key, f"{human(value.duration)}  (job {value.job_id})")
        else:
            table.add_row(key, human(value))
    return table


def quotas_table(views: Sequence[QuotaView]) -> Table:
    """`jobq quotas`: queue, name, size and slots held (the default queue as `(default)`)."""
    table = new_table(title="quotas")
    for column in ("queue", "name", "size", "held"):
        table.add_column(column)
    for view in views:
        table.add_row(queue_name(view.queue), escape(view.name), str(view.size), str(view.held))
    return table


def rate_limits_table(views: Sequence[RateLimitView]) -> Table:
    """`jobq rate-limits` and `jobq status`: each rate limit, its claims in the window now,
    the pending jobs naming it, and when a claim frees if none is left."""
    table = new_table(title="rate limits")
    for column in ("queue", "name", "limit", "per", "used now", "waiting", "frees at"):
        table.add_column(column, justify="right" if column in ("limit", "used now") else "left")
    for view in views:
        full = view.used >= view.limit
        table.add_row(
            queue_name(view.queue),
            escape(view.name),
            str(view.limit),
            human(view.per),
            f"[bold yellow]{view.used}[/]" if full else str(view.used),
            str(view.waiting),
            human(view.frees_at) if view.frees_at is not None else "-",
        )
    return table


def schedules_table(schedules: Sequence[Schedule], now: dt.datetime) -> Table:
    """`jobq schedules` and `jobq status`: each schedule with its next and last run (UTC, and
    how far from now)."""
    table = new_table(title="schedules")
    for column in ("schedule", "cron", "timezone", "queue", "missed", "next run", "last run"):
        table.add_column(column)
    table.add_column("last job", justify="right")
    table.add_column("job")
    for s in schedules:
        if s.paused:
            upcoming = "[bold yellow]paused[/]"
        elif s.next_run is None:
            upcoming = "never"
        else:
            upcoming = f"{human(s.next_run)} (in {duration_text(max(s.next_run - now, ZERO))})"
        last = "-" if s.last_run is None else f"{human(s.last_run)} ({human(now - s.last_run)} ago)"
        missed = s.missed if s.missed != "all" else f"all (up to {s.catch_up})"
        table.add_row(
            escape(s.name), escape(s.cron), escape(s.timezone), queue_name(s.queue), missed,
            upcoming, last,
            "-" if s.last_job_id is None else str(s.last_job_id), escape(s.call_repr),
        )  # fmt: skip
    return table


def _duration_of(value: Any) -> str:
    """A duration as the worker's JSON gives it ({days, hours, minutes, seconds}) for people."""
    if not isinstance(value, dict):
        return "-"
    parts = {k: float(value.get(k) or 0) for k in ("days", "hours", "minutes", "seconds")}
    return duration_text(dt.timedelta(**parts))


def _moment(value: Any) -> str:
    """An ISO datetime of the worker's JSON, to the millisecond."""
    if not isinstance(value, str):
        return "-"
    return value[:23] + "Z" if len(value) > 23 else value


def worker_status_view(data: dict[str, Any]) -> Group:
    """`jobq worker-status`: the worker's state line, its jobs, and its totals and statistics
    as key / value tables (not JSON in cells)."""
    from rich.console import Group

    st = data.get("status") or {}
    colour = {
        "RUNNING": "green",
        "STARTING": "cyan",
        "STUCK": "bold red",
        "FAILING": "bold red",
    }.get(str(st.get("status")), "dim")
    queues = ", ".join(queue_name(q) for q in data.get("queues") or ()) or "-"
    head = new_table(show_header=False, box=None, pad_edge=False, title_justify="left")
    head.add_column("key", style="bold")
    head.add_column("value")
    uuid, status = escape(str(st.get("uuid", "-"))), escape(str(st.get("status", "?")))
    head.add_row("worker", f"{uuid}  [{colour}]{status}[/]")
    head.add_row("queues", queues)
    head.add_row("uptime", _duration_of(st.get("uptime")))
    head.add_row("poll interval", _duration_of(st.get("poll_interval")))
    head.add_row("since last poll", _duration_of(st.get("time_since_last_poll")))
    if st.get("failing"):
        head.add_row("failing", escape(str(st["failing"])))
    jobs = new_table(title="jobs (newest first)", header_style="bold")
    for column in ("id", "call", "queue", "agent", "thread", "started", "completed", "outcome"):
        jobs.add_column(column, justify="right" if column == "id" else "left")
    for j in data.get("jobs") or ():
        outcome = (
            "reassigned"
            if j.get("reassigned")
            else "running"
            if j.get("completed") is None
            else "[red]failed[/]"
            if j.get("failed")
            else "[green]ok[/]"
        )
        jobs.add_row(
            str(j.get("id")),
            escape(str(j.get("call"))),
            queue_name(j.get("queue", "")),
            escape(str(j.get("agent"))),
            escape(str(j.get("thread"))),
            _moment(j.get("started")),
            _moment(j.get("completed")),
            outcome,
        )
    totals = new_table(title="totals", show_header=False, box=None, title_justify="left")
    totals.add_column("key", style="bold")
    totals.add_column("value", justify="right")
    for key, value in sorted((data.get("totals") or {}).items()):
        totals.add_row(escape(key.replace("_", " ")), escape(str(value)))
    stats = new_table(title="statistics", show_header=False, box=None, title_justify="left")
    stats.add_column("key", style="bold")
    stats.add_column("value")
    for key, value in (data.get("statistics") or {}).items():
        shown = _moment(value) if key.startswith("statistics_") else human(value)
        if key.startswith(("shortest", "longest")) and value is not None:
            shown = f"job {value}"
        stats.add_row(escape(key.replace("_", " ")), shown)
    return Group(head, jobs, totals, stats)
