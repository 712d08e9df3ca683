"""The `jobq` monitor and operator commands (added to the `jobq` group by `add_commands`).

Reads: `status`, `jobs`, `count`, `jobstats`, `job`, `traceback`, `nextpending`,
`lastcompleted`, `dispatchers`, `quotas`, `worker-status`. Actions: `cancel`, `fail`, `retry`,
`pause`, `resume`, `agent-size`, `agent-add`, `agent-remove`, `agent-filter`, `quota-size`,
`quota-create`, `quota-remove`, `prune`. Servers: `dashboard`. Human output is rich
tables (colour on a terminal); `--json` prints the catalogue's JSON (sorted keys, indent 4).
A bad state or filter exits with status 2 and a message saying what was wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from jobq.errors import JobqError
from jobq.monitor.filters import parse_interval
from jobq.monitor.render import duration_text, to_json, to_jsonable
from jobq.monitor.service import DETAILS, Monitor
from jobq.monitor.views import DispatcherView, JobRow, JobSummary, TimedJob, TreeNode

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

DB_HELP = "Database URL: sqlite:///path.db or postgresql://... (default ./jobq.db; env JOBQ_DB)."
FILTER_HELP = (
    "ARGS: states (pending assigned active callbacks, and one of completed succeeded failed), "
    "then filters: callable:GLOB queue:GLOB agent:GLOB uuid:UUID|THIS, and time filters "
    "requested_start: start: end: callbacks_completed: with sinceINTERVAL, beforeINTERVAL or "
    "both joined by a comma (INTERVAL: [nD][nH][nM][nS], e.g. start:since2M end:before1H)."
)
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
    # rich is imported when a command prints, not when the CLI loads: a worker (`jobq worker`)
    # never prints a table, and rich weighs about 2.7 MiB of its memory.
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def new_table(*args: Any, **kwargs: Any) -> Table:
    """A rich Table (imported on first use, as in `console`)."""
    from rich.table import Table

    return Table(*args, **kwargs)


def human(value: Any) -> str:
    """Short human text for table cells."""
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
        return json.dumps(to_jsonable(value), sort_keys=True) if value else "-"
    return str(value)


def styled_status(view: JobRow | JobSummary | TreeNode) -> str:
    """The status in its colour (rich markup); a failed completed job shows as failed."""
    if view.status == "completed" and view.failed:
        return "[bold red]failed[/]"
    return f"[{_STYLE.get(view.status, 'white')}]{view.status}[/]"


@contextmanager
def opened(url: str | None, this_uuid: str | None = None) -> Iterator[Monitor]:
    import jobq

    try:
        db = jobq.connect(url)
    except (JobqError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    try:
        yield Monitor(db, this_uuid=this_uuid)
    except (ValueError, LookupError) as error:
        raise click.UsageError(str(error)) from error
    except JobqError as error:
        raise click.ClickException(str(error)) from error
    finally:
        db.close()


def emit_json(value: Any) -> None:
    click.echo(to_json(value))


def db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", "url", envvar="JOBQ_DB", default=None, help=DB_HELP)(f)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def this_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--uuid",
        "this_uuid",
        envvar="JOBQ_UUID",
        default=None,
        help="What uuid:THIS means (env JOBQ_UUID).",
    )(f)


# -- tables ------------------------------------------------------------------------------------
def jobs_table(rows: Sequence[JobRow], title: str | None = None) -> Table:
    table = new_table(title=title, header_style="bold")
    for column in ("id", "status", "queue", "agent", "call", "begin after", "wait", "active"):
        table.add_column(column, justify="right" if column in ("id", "wait", "active") else "left")
    for r in rows:
        table.add_row(
            str(r.id),
            styled_status(r),
            repr(r.queue),
            r.agent or "-",
            r.call,
            human(r.begin_after),
            human(r.wait),
            human(r.active),
        )
    return table


def summary_table(summary: JobSummary) -> Table:
    table = new_table(show_header=False, box=None, pad_edge=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in summary.items():
        if key == "status":
            table.add_row(key, styled_status(summary))
        elif key == "result" and summary.failed:
            table.add_row(key, f"[red]{value}[/]")
        elif key == "progress" and value is not None:
            table.add_row(key, f"{value * 100:.0f}%")
        else:
            table.add_row(key, human(value))
    return table


def dispatchers_table(views: Sequence[DispatcherView]) -> Table:
    table = new_table(header_style="bold")
    for column in ("uuid", "state", "host", "pid", "last ping", "since ping", "agents"):
        table.add_column(column)
    for d in views:
        agents = "; ".join(
            f"{a.queue!r}/{a.name} {a.held}/{a.size}" + (f" filter {a.filter}" if a.filter else "")
            for a in d.agents
        )
        table.add_row(
            d.uuid,
            f"[{_STYLE[d.state]}]{d.state}[/]",
            d.host,
            str(d.pid),
            human(d.last_ping),
            human(d.since_ping),
            agents or "-",
        )
    return table


# -- commands ----------------------------------------------------------------------------------
@click.command()
@db_option
@click.option("--queue", default=None, help="Queue glob.")
@click.option("--agent", default=None, help="Agent glob.")
@click.option("--dispatcher", "uuid", default=None, help="A dispatcher UUID, or THIS.")
@this_option
@json_option
def status(
    url: str | None,
    queue: str | None,
    agent: str | None,
    uuid: str | None,
    this_uuid: str | None,
    as_json: bool,
) -> None:
    """Queues (pending, due, load) with their activated dispatchers and agents."""
    with opened(url, this_uuid) as monitor:
        info = monitor.status(queue, agent, uuid)
    if as_json:
        emit_json(info)
        return
    out = console()
    table = new_table(title="queues", header_style="bold")
    for column in ("queue", "paused", "pending", "due", "assigned", "active", "callbacks"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    table.add_column("succeeded", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("capacity", justify="right")
    for q in info.queues:
        table.add_row(
            repr(q.name),
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
    out.print(table)
    dtable = new_table(title="dispatchers", header_style="bold")
    for column in ("queue", "dispatcher", "state", "last ping", "since ping", "agents"):
        dtable.add_column(column)
    for q in info.queues:
        for d in q.dispatchers:
            agents = "; ".join(
                f"{a.name} {a.held}/{a.size}" + (f" filter {a.filter}" if a.filter else "")
                for a in d.agents
            )
            dtable.add_row(
                repr(q.name),
                d.uuid,
                f"[{_STYLE[d.state]}]{d.state}[/]",
                human(d.last_ping),
                human(d.since_ping),
                agents,
            )
    out.print(dtable)


def _selection_args(
    monitor: Monitor, args: Sequence[str], options: Sequence[str] = ()
) -> tuple[Any, dict[str, str]]:
    sel = monitor.select(args, options=options)
    return sel.query, sel.options


@click.command(epilog=FILTER_HELP)
@db_option
@click.argument("args", nargs=-1, required=True)
@click.option("--limit", default=50, show_default=True, help="Page size (also count:N).")
@click.option("--offset", default=0, show_default=True, help="Jobs to skip (paging).")
@click.option(
    "--display",
    type=click.Choice(["default", "repr", "details"]),
    default=None,
    help="ids (default), call reprs, or summaries (also display:...).",
)
@this_option
@json_option
def jobs(
    url: str | None,
    args: tuple[str, ...],
    limit: int,
    offset: int,
    display: str | None,
    this_uuid: str | None,
    as_json: bool,
) -> None:
    """Jobs in the given states, filtered (pending first, then held by agents, then completed
    newest first)."""
    with opened(url, this_uuid) as monitor:
        query, opts = _selection_args(monitor, args, ("display", "count"))
        display = display or opts.get("display", "default")
        if display == "detail":
            display = "details"
        if display not in ("default", "repr", "details"):
            raise ValueError(f"display must be default, repr or details, not {display!r}")
        if "count" in opts:
            try:
                limit = int(opts["count"])
            except ValueError:
                raise ValueError(f"count: must be an integer, not {opts['count']!r}") from None
        records = monitor.list(query, offset=offset, limit=limit)
        rows = monitor.rows(records)
        summaries = [monitor.summary(r) for r in records] if display == "details" else []
    if as_json:
        if display == "repr":
            emit_json([r.call for r in rows])
        elif display == "details":
            emit_json(summaries)
        else:
            emit_json([r.id for r in rows])
        return
    out = console()
    if display == "repr":
        for r in rows:
            out.print(f"{r.id}  {r.call}", markup=False)
    elif display == "details":
        for summary in summaries:
            out.print(summary_table(summary))
            out.print()
    else:
        out.print(jobs_table(rows))


@click.command(epilog=FILTER_HELP)
@db_option
@click.argument("args", nargs=-1, required=True)
@this_option
@json_option
def count(url: str | None, args: tuple[str, ...], this_uuid: str | None, as_json: bool) -> None:
    """How many jobs are in the given states, filtered."""
    with opened(url, this_uuid) as monitor:
        n = monitor.count(monitor.select(args).query)
    click.echo(json.dumps(n) if as_json else str(n))


@click.command(epilog=FILTER_HELP)
@db_option
@click.argument("args", nargs=-1, required=True)
@this_option
@json_option
def jobstats(url: str | None, args: tuple[str, ...], this_uuid: str | None, as_json: bool) -> None:
    """Counts per state and the longest / shortest wait and active time."""
    with opened(url, this_uuid) as monitor:
        stats = monitor.jobstats(monitor.select(args).query)
    if as_json:
        emit_json(stats)
        return
    table = new_table(show_header=False, box=None)
    table.add_column("key", style="bold")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        if isinstance(value, TimedJob):
            table.add_row(key, f"{human(value.duration)}  (job {value.job_id})")
        else:
            table.add_row(key, human(value))
    console().print(table)


@click.command()
@db_option
@click.argument("job_id", type=int)
@click.option("--tree", is_flag=True, help="Also show the callbacks tree.")
@json_option
def job(url: str | None, job_id: int, tree: bool, as_json: bool) -> None:
    """A job's summary: call, status, queue, agent, dispatcher, times, outcome."""
    with opened(url) as monitor:
        summary = monitor.job(job_id)
        callbacks = monitor.tree(job_id) if tree else None
    if as_json:
        emit_json({**summary.to_json(), "tree": callbacks} if tree else summary)
        return
    out = console()
    out.print(summary_table(summary))
    if callbacks is not None:
        from rich.tree import Tree

        def grow(node: Tree, item: TreeNode) -> None:
            for child in item.callbacks:
                grow(node.add(f"{child.id} {styled_status(child)} {child.call}"), child)

        root = Tree(f"{callbacks.id} {styled_status(callbacks)} {callbacks.call}")
        grow(root, callbacks)
        out.print(root)


@click.command()
@db_option
@click.argument("job_id", type=int)
@click.option("--detail", type=click.Choice(DETAILS), default="default", show_default=True)
@json_option
def traceback(url: str | None, job_id: int, detail: str, as_json: bool) -> None:
    """A failed job's traceback (brief, default, or verbose with frame locals)."""
    with opened(url) as monitor:
        text = monitor.traceback(job_id, detail)
    if as_json:
        emit_json(text)
    elif text is None:
        click.echo(f"job {job_id} has no failure")
    else:
        click.echo(text.rstrip())


def _summary_command(name: str, doc: str) -> click.Command:
    @click.command(name=name, help=doc, epilog=FILTER_HELP)
    @db_option
    @click.argument("args", nargs=-1)
    @this_option
    @json_option
    def command(
        url: str | None, args: tuple[str, ...], this_uuid: str | None, as_json: bool
    ) -> None:
        with opened(url, this_uuid) as monitor:
            summary = getattr(monitor, name)(args)
        if as_json:
            emit_json(summary)
        elif summary is None:
            click.echo("none")
        else:
            console().print(summary_table(summary))

    return command


nextpending = _summary_command(
    "nextpending", "The first pending job (filters allowed, not start/end/callbacks_completed)."
)
lastcompleted = _summary_command("lastcompleted", "The most recently completed job (filtered).")


@click.command()
@db_option
@json_option
def dispatchers(url: str | None, as_json: bool) -> None:
    """Every dispatcher record: alive, dead or deactivated, last ping, agents and load."""
    with opened(url) as monitor:
        infos = monitor.dispatchers()
    if as_json:
        emit_json(infos)
    else:
        console().print(dispatchers_table(infos))


# -- operator actions --------------------------------------------------------------------------
@click.command()
@db_option
@click.argument("job_id", type=int)
def cancel(url: str | None, job_id: int) -> None:
    """Pull a pending job out of its queue (it becomes "new")."""
    with opened(url) as monitor:
        monitor.cancel(job_id)
    click.echo(f"job {job_id} pulled from its queue")


@click.command()
@db_option
@click.argument("uuid")
@click.option("--force", is_flag=True, help="Even if the dispatcher still pings.")
def requeue(url: str | None, uuid: str, force: bool) -> None:
    """Hand on now the jobs of dispatcher UUID (stuck on a dead or stopped worker)."""
    with opened(url) as monitor:
        moved = monitor.requeue_dispatcher(uuid, force=force)
    click.echo(f"dispatcher {uuid} deactivated; {moved} job(s) handed on")


@click.command()
@db_option
@click.argument("job_id", type=int)
@click.option("--reason", default="failed by an operator", show_default=True)
def fail(url: str | None, job_id: int, reason: str) -> None:
    """Fail a job that has not started (its callbacks get the failure)."""
    with opened(url) as monitor:
        monitor.fail(job_id, reason)
    click.echo(f"job {job_id} failed: {reason}")


@click.command()
@db_option
@click.argument("job_id", type=int)
def retry(url: str | None, job_id: int) -> None:
    """Put a copy of a failed job as a new job (the failed one stays, linked)."""
    with opened(url) as monitor:
        new = monitor.retry(job_id)
    click.echo(f"job {job_id} retried as job {new.id}")


@click.command()
@db_option
@click.argument("queue")
def pause(url: str | None, queue: str) -> None:
    """Stop workers claiming from QUEUE (running jobs go on)."""
    with opened(url) as monitor:
        monitor.pause(queue)
    click.echo(f"queue {queue!r} paused")


@click.command()
@db_option
@click.argument("queue")
def resume(url: str | None, queue: str) -> None:
    """Let workers claim from QUEUE again."""
    with opened(url) as monitor:
        monitor.resume(queue)
    click.echo(f"queue {queue!r} resumed")


@click.command("agent-size")
@db_option
@click.argument("queue")
@click.argument("name")
@click.argument("size", type=click.IntRange(min=0))
@click.option("--dispatcher", "uuid", default=None, help="Only this dispatcher's agent.")
def agent_size(url: str | None, queue: str, name: str, size: int, uuid: str | None) -> None:
    """Set agent NAME of QUEUE to SIZE threads (on every dispatcher, or one)."""
    with opened(url) as monitor:
        n = monitor.agent_size(queue, name, size, uuid)
    click.echo(f"agent {name!r} of queue {queue!r}: size {size} on {n} dispatcher(s)")


@click.command("quota-size")
@db_option
@click.argument("queue")
@click.argument("name")
@click.argument("size", type=click.IntRange(min=1))
def quota_size(url: str | None, queue: str, name: str, size: int) -> None:
    """Set (or create) quota NAME of QUEUE to SIZE."""
    with opened(url) as monitor:
        monitor.quota_size(queue, name, size)
    click.echo(f"quota {name!r} of queue {queue!r}: size {size}")


# -- agents and quotas changed while workers run (used at their next poll) ---------------------
@click.command("agent-add")
@db_option
@click.argument("queue")
@click.argument("name")
@click.option("--dispatcher", "uuid", required=True, help="The dispatcher (worker) UUID.")
@click.option("--size", type=click.IntRange(min=0), default=3, show_default=True)
@click.option("--filter", "filter_path", default=None, help="A filter: package.module:function.")
def agent_add(
    url: str | None, queue: str, name: str, uuid: str, size: int, filter_path: str | None
) -> None:
    """Add agent NAME to QUEUE on a running worker (it claims from its next poll)."""
    with opened(url) as monitor:
        monitor.agent_add(uuid, queue, name, size=size, filter=filter_path)
    shown = f", filter {filter_path}" if filter_path else ""
    click.echo(f"agent {name!r} of queue {queue!r} added to {uuid}: size {size}{shown}")


@click.command("agent-remove")
@db_option
@click.argument("queue")
@click.argument("name")
@click.option("--dispatcher", "uuid", default=None, help="Only this dispatcher's agent.")
def agent_remove(url: str | None, queue: str, name: str, uuid: str | None) -> None:
    """Remove agent NAME of QUEUE (on every dispatcher, or one); its running jobs finish."""
    with opened(url) as monitor:
        n = monitor.agent_remove(queue, name, uuid)
    click.echo(f"agent {name!r} of queue {queue!r} removed from {n} dispatcher(s)")


@click.command("agent-filter")
@db_option
@click.argument("queue")
@click.argument("name")
@click.argument("filter_path", metavar="FILTER")
@click.option("--dispatcher", "uuid", default=None, help="Only this dispatcher's agent.")
def agent_filter(
    url: str | None, queue: str, name: str, filter_path: str, uuid: str | None
) -> None:
    """Set the filter of agent NAME of QUEUE to FILTER (package.module:function; "none" for
    every job), on every dispatcher or one."""
    new = None if filter_path.lower() == "none" else filter_path
    with opened(url) as monitor:
        n = monitor.agent_filter(queue, name, new, uuid)
    click.echo(f"agent {name!r} of queue {queue!r}: filter {new or 'none'} on {n} dispatcher(s)")


@click.command("quota-create")
@db_option
@click.argument("queue")
@click.argument("name")
@click.argument("size", type=click.IntRange(min=1), default=1)
def quota_create(url: str | None, queue: str, name: str, size: int) -> None:
    """Create quota NAME of QUEUE: at most SIZE (default 1) of its jobs at once."""
    with opened(url) as monitor:
        monitor.quota_create(queue, name, size)
    click.echo(f"quota {name!r} of queue {queue!r} created: size {size}")


@click.command("quota-remove")
@db_option
@click.argument("queue")
@click.argument("name")
def quota_remove(url: str | None, queue: str, name: str) -> None:
    """Remove quota NAME of QUEUE (jobs naming it are no longer limited by it)."""
    with opened(url) as monitor:
        try:
            monitor.quota_remove(queue, name)
        except KeyError as error:
            raise click.UsageError(error.args[0]) from error
    click.echo(f"quota {name!r} of queue {queue!r} removed")


@click.command()
@db_option
@click.option("--queue", default=None, help="Only this queue.")
@json_option
def quotas(url: str | None, queue: str | None, as_json: bool) -> None:
    """The quotas: queue, name, size, and how many jobs hold a slot now."""
    with opened(url) as monitor:
        views = monitor.quotas(queue)
    if as_json:
        emit_json(views)
        return
    table = new_table(title="quotas")
    for column in ("queue", "name", "size", "held"):
        table.add_column(column)
    for view in views:
        table.add_row(*(human(v) if v != "" else '""' for _, v in view.items()))
    console().print(table)


@click.command()
@db_option
@click.option("--older-than", default="7D", show_default=True, help="Interval [nD][nH][nM][nS].")
def prune(url: str | None, older_than: str) -> None:
    """Delete completed jobs (and stopped dispatcher records) older than an interval now."""
    try:
        keep = parse_interval(older_than)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    with opened(url) as monitor:
        result = monitor.prune(keep)
    click.echo(f"pruned {result.jobs} job(s) and {result.dispatchers} dispatcher record(s)")


@click.command("worker-status")
@click.argument("url")
@click.option("--timeout", default=5.0, show_default=True)
@json_option
def worker_status(url: str, timeout: float, as_json: bool) -> None:
    """A worker's own status, from its --monitor-port (e.g. http://127.0.0.1:8765)."""
    if "://" not in url:
        url = f"http://{url}"
    if url.rstrip("/").count("/") < 3:
        url = url.rstrip("/") + "/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.loads(response.read().decode())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise click.ClickException(f"cannot read {url}: {error}") from error
    if as_json:
        click.echo(json.dumps(data, sort_keys=True, indent=4))
        return
    out = console()
    st = data["status"]
    colour = {"RUNNING": "green", "STARTING": "cyan", "STUCK": "bold red"}.get(st["status"], "dim")
    out.print(f"[bold]{st['uuid']}[/]  [{colour}]{st['status']}[/]  queues {data['queues']}")
    out.print(
        f"uptime {json.dumps(st['uptime'])}  poll interval {json.dumps(st['poll interval'])}  "
        f"since last poll {json.dumps(st['time since last poll'])}",
        markup=False,
    )
    table = new_table(title="jobs (newest first)", header_style="bold")
    for column in ("id", "call", "agent", "thread", "started", "completed", "outcome"):
        table.add_column(column)
    for j in data["jobs"]:
        outcome = (
            "reassigned"
            if j["reassigned"]
            else "running"
            if j["completed"] is None
            else "[red]failed[/]"
            if j["failed"]
            else "[green]ok[/]"
        )
        table.add_row(
            str(j["id"]),
            j["call"],
            j["agent"],
            j["thread"],
            j["started"],
            j["completed"] or "-",
            outcome,
        )
    out.print(table)
    out.print(f"totals: {json.dumps(data['totals'], sort_keys=True)}", markup=False)


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True)
@click.option(
    "--token",
    envvar="JOBQ_DASHBOARD_TOKEN",
    default=None,
    help="Token required for actions (env JOBQ_DASHBOARD_TOKEN); without one, actions are off.",
)
@this_option
def dashboard(
    url: str | None, host: str, port: int, token: str | None, this_uuid: str | None
) -> None:
    """Serve the web dashboard (and /metrics) until interrupted."""
    import uvicorn

    import jobq
    from jobq.web import create_app

    db = jobq.connect(url)
    try:
        app = create_app(db, token=token, this_uuid=this_uuid)
        if host not in ("127.0.0.1", "localhost", "::1") and not token:
            click.echo("warning: dashboard reachable from the network, actions disabled", err=True)
        click.echo(f"jobq dashboard on http://{host}:{port}/ ({db!r})", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        db.close()


COMMANDS = [
    status,
    jobs,
    count,
    jobstats,
    job,
    traceback,
    nextpending,
    lastcompleted,
    dispatchers,
    cancel,
    requeue,
    fail,
    retry,
    pause,
    resume,
    agent_size,
    agent_add,
    agent_remove,
    agent_filter,
    quotas,
    quota_size,
    quota_create,
    quota_remove,
    prune,
    worker_status,
    dashboard,
]


def add_commands(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)
