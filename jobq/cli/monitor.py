"""The `jobq` read commands: status, jobs, count, jobstats, job, traceback, nextpending,
lastcompleted, dispatchers, quotas, and worker-status (a worker's own monitor port over HTTP).

Each reads through `Monitor` and prints its view records as rich tables, or with `--json` as
the catalogue's JSON (sorted keys, indent 4).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import click

from jobq.cli.common import (
    COUNT,
    FILTER_HELP,
    JOB_ID,
    db_option,
    json_option,
    opened,
    this_option,
)
from jobq.cli.tables import (
    console,
    dispatchers_table,
    emit_json,
    escape,
    jobs_table,
    jobstats_table,
    queue_dispatchers_table,
    queues_table,
    quotas_table,
    rate_limits_table,
    schedules_table,
    styled_status,
    summary_table,
    worker_status_view,
)
from jobq.monitor.render import worker_snapshot_json
from jobq.monitor.service import DETAILS, Monitor
from jobq.monitor.views import TreeNode


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
    """Queues (pending, due, load) with their activated dispatchers and agents, and the
    schedules with their next and last run."""
    with opened(url, this_uuid) as monitor:
        info = monitor.status(queue, agent, uuid)
        found_schedules, now = monitor.db.schedules(), monitor.now()
    if as_json:
        emit_json(info)
        return
    out = console()
    out.print(queues_table(info))
    out.print(queue_dispatchers_table(info))
    limits = [r for q in info.queues for r in q.rate_limits]
    if limits:
        out.print(rate_limits_table(limits))
    if found_schedules:
        out.print(schedules_table(found_schedules, now))


def _selection_args(
    monitor: Monitor, args: Sequence[str], options: Sequence[str] = ()
) -> tuple[Any, dict[str, str]]:
    sel = monitor.select(args, options=options)
    return sel.query, sel.options


@click.command(epilog=FILTER_HELP)
@db_option
@click.argument("args", nargs=-1, required=True)
@click.option(
    "--limit", type=COUNT, default=50, show_default=True, help="Page size (also count:N)."
)
@click.option("--offset", type=COUNT, default=0, show_default=True, help="Jobs to skip (paging).")
@click.option(
    "--display",
    type=click.Choice(["default", "repr", "details"]),
    default=None,
    help="A table (default; with --json the ids), call reprs (repr), or each job's summary "
    "(details); also display:... .",
)
@click.option(
    "--priority",
    default=None,
    metavar="N|N..|..M|N..M",
    help="Only jobs of this priority, or within these bounds (also priority:...).",
)
@this_option
@json_option
def jobs(
    url: str | None,
    args: tuple[str, ...],
    limit: int,
    offset: int,
    display: str | None,
    priority: str | None,
    this_uuid: str | None,
    as_json: bool,
) -> None:
    """Jobs in the given states, filtered (pending first in queue order: put back, then by
    priority, then by time; then held by agents, then completed newest first)."""
    if priority is not None:
        args = (*args, f"priority:{priority}")
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
    console().print(jobstats_table(stats))


@click.command()
@db_option
@click.argument("job_id", type=JOB_ID)
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
                grow(node.add(f"{child.id} {styled_status(child)} {escape(child.call)}"), child)

        root = Tree(f"{callbacks.id} {styled_status(callbacks)} {escape(callbacks.call)}")
        grow(root, callbacks)
        out.print(root)


@click.command()
@db_option
@click.argument("job_id", type=JOB_ID)
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
    console().print(quotas_table(views))


@click.command("rate-limits")
@db_option
@click.option("--queue", default=None, help="Only this queue.")
@json_option
def rate_limits(url: str | None, queue: str | None, as_json: bool) -> None:
    """The rate limits: queue, name, limit per period, claims in the window now, and the
    pending jobs naming each."""
    with opened(url) as monitor:
        views = monitor.rate_limits(queue)
    if as_json:
        emit_json(views)
        return
    console().print(rate_limits_table(views))


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
    data = worker_snapshot_json(data)  # snake_case keys, from any worker version
    if as_json:
        emit_json(data)
        return
    console().print(worker_status_view(data))


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
    quotas,
    rate_limits,
    worker_status,
]
