"""The `jobq` operator actions: cancel, requeue, fail, retry, pause, resume, the agent-* and
quota-* commands (used by running workers at their next read of their agents), prune, and the
`db` schema commands. Each acts through `Monitor` and prints one line saying what it did.
"""

from __future__ import annotations

import click

import jobq
from jobq.cli.common import db_option, opened
from jobq.monitor.filters import parse_interval


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


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command()
@db_option
def upgrade(url: str | None) -> None:
    """Create or upgrade jobq's tables."""
    database = jobq.connect(url)
    database.close()
    click.echo("schema is up to date")


COMMANDS = [
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
    quota_size,
    quota_create,
    quota_remove,
    prune,
    db,
]
