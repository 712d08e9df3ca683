"""The `jobq` operator actions: put, cancel, pull, requeue, fail, retry (cancel and retry also in
bulk, with filters), pause, resume, the agent-* and quota-* commands (used by running workers
at their next read of their agents), prune, and the `db` schema commands. Each acts through
`Monitor` and prints one line saying what it did.
"""

from __future__ import annotations

import datetime as dt

import click

import jobq
from jobq.cli.common import (
    COUNT,
    FILTER_HELP,
    JOB_ID,
    call_kwargs,
    call_value,
    db_option,
    json_option,
    opened,
    this_option,
)
from jobq.cli.imports import use_import_paths
from jobq.cli.tables import emit_json
from jobq.model.job import PRIORITIES
from jobq.monitor.filters import parse_interval
from jobq.monitor.views import BulkResult
from jobq.queue import check_keep_result


def _one_id(args: tuple[str, ...], flag: str) -> int:
    """The single JOB_ID of an action given without its bulk flag."""
    if len(args) != 1:
        raise click.UsageError(
            f"give one JOB_ID, or {flag} followed by filters (e.g. {flag} queue:reports)"
        )
    try:
        return int(args[0])
    except ValueError:
        raise click.UsageError(
            f"JOB_ID must be a job id (an integer), not {args[0]!r}; for many jobs use {flag}"
        ) from None


def _bulk(what: str, result: BulkResult, dry_run: bool, yes: bool, as_json: bool) -> bool:
    """Say what a bulk action selected; True if it should go on (not a dry run, and
    confirmed by --yes or at the prompt)."""
    ids = ", ".join(map(str, result.selected[:20])) + (" ..." if len(result.selected) > 20 else "")
    if dry_run or not result.selected:
        if as_json:
            emit_json(result)
        else:
            shown = f": {ids}" if result.selected else ""
            click.echo(
                f"would {what} {len(result.selected)} job(s){shown} (dry run)"
                if dry_run
                else f"no job to {what}"
            )
        return False
    if not yes:
        click.confirm(f"{what} {len(result.selected)} job(s) ({ids})?", abort=True, err=True)
    return True


@click.command(epilog="FILTERS (with --all-pending): " + FILTER_HELP.split("then filters: ")[1])
@db_option
@click.argument("args", nargs=-1, metavar="JOB_ID | --all-pending [FILTERS...]")
@click.option("--all-pending", is_flag=True, help="Cancel every pending job the filters select.")
@click.option("--dry-run", is_flag=True, help="Only say which jobs --all-pending would cancel.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before a bulk cancel.")
@this_option
@json_option
def cancel(
    url: str | None,
    args: tuple[str, ...],
    all_pending: bool,
    dry_run: bool,
    yes: bool,
    this_uuid: str | None,
    as_json: bool,
) -> None:
    """Cancel a job that has not started, as job.cancel() does: it leaves its queue and
    completes with a CancelledError failure, which its callbacks get.

    (`jobq cancel` used to pull a job back to "new"; that is now `jobq pull JOB_ID`.)"""
    if not all_pending:
        if dry_run:
            raise click.UsageError("--dry-run goes with --all-pending")
        job_id = _one_id(args, "--all-pending")
        with opened(url) as monitor:
            monitor.cancel_job(job_id)
        click.echo(f"job {job_id} cancelled (completed with CancelledError)")
        return
    with opened(url, this_uuid) as monitor:
        query = monitor.select_for(args, "pending")
        preview = monitor.cancel_many(query, dry_run=True)
        if not _bulk("cancel", preview, dry_run, yes, as_json):
            return
        result = monitor.cancel_many(query)
    if as_json:
        emit_json(result)
        return
    skipped = f"; {len(result.skipped)} skipped (started meanwhile)" if result.skipped else ""
    click.echo(f"cancelled {len(result.done)} job(s){skipped}")


@click.command()
@db_option
@click.argument("job_id", type=JOB_ID)
def pull(url: str | None, job_id: int) -> None:
    """Pull a pending job out of its queue: it becomes "new" (not completed; no callback
    runs), to be put again from code. (What `jobq cancel` did before.)"""
    with opened(url) as monitor:
        monitor.pull(job_id)
    click.echo(f"job {job_id} pulled from its queue (now new)")


def _when(text: str | None, now: dt.datetime) -> dt.datetime | None:
    """--begin-after: `+INTERVAL` from now (`+5m`, `+1h30m`) or an ISO datetime (UTC if it
    names no offset)."""
    if text is None:
        return None
    if text.startswith("+"):
        try:
            return now + parse_interval(text[1:])
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--begin-after") from None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither +INTERVAL (e.g. +5m) nor an ISO datetime "
            f"(e.g. 2030-01-31T08:00:00Z)",
            param_hint="--begin-after",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@click.command(context_settings={"ignore_unknown_options": False})
@db_option
@click.argument("path", metavar="MODULE:FUNCTION")
@click.argument("args", nargs=-1, metavar="[ARGS]...")
@click.option("--kw", "kws", multiple=True, metavar="NAME=VALUE", help="A keyword argument.")
@click.option("--queue", default="", help="The queue (default: the default queue).")
@click.option("--begin-after", default=None, help="+INTERVAL (+5m, +1h) or an ISO datetime.")
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=None,
    help="Retry an error up to N times, with exponential backoff (as put(retries=N)).",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="The job's time limit in seconds (as put(timeout=...)).",
)
@click.option(
    "--priority",
    type=click.IntRange(min=PRIORITIES[0], max=PRIORITIES[-1]),
    default=None,
    help="-10..10, default 0: higher runs first among due jobs (as put(priority=N)).",
)
@click.option(
    "--keep-result",
    default=None,
    metavar="INTERVAL",
    help="Keep the completed job this long ([nD][nH][nM][nS]) instead of the workers' "
    "retention, then prune it (as put(keep_result=...)).",
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    envvar="JOBQ_PATH",
    type=click.Path(exists=True, file_okay=False, resolve_path=True),
    help="A folder to import MODULE from, after the current directory (as jobq worker).",
)
@click.option("--unique-key", default=None, help="Make no second job while one holds this key.")
@click.option(
    "--unique-while",
    multiple=True,
    type=click.Choice(["pending", "active"]),
    help="A state in which the job holds its key (repeat; default: pending and active).",
)
@click.option(
    "--unique-for",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds after this put in which no second job with the key is put.",
)
@click.option(
    "--on-conflict",
    type=click.Choice(["keep", "replace"]),
    default=None,
    help="With the key held: keep the holder (default), or replace a pending holder's call.",
)
@json_option
def put(
    url: str | None,
    path: str,
    args: tuple[str, ...],
    kws: tuple[str, ...],
    queue: str,
    begin_after: str | None,
    retries: int | None,
    timeout: float | None,
    priority: int | None,
    keep_result: str | None,
    paths: tuple[str, ...],
    unique_key: str | None,
    unique_while: tuple[str, ...],
    unique_for: float | None,
    on_conflict: str | None,
    as_json: bool,
) -> None:
    """Put a job calling MODULE:FUNCTION(ARGS..., NAME=VALUE...) and print its id. Each
    argument is JSON when it is valid JSON (3, true, null, [1, 2], '"3"'), else a string;
    use -- before arguments that start with a dash. With --unique-key, a held key prints the
    holder's id (--json: "created": false)."""
    kwargs = call_kwargs(kws)
    keep = None
    if keep_result is not None:
        try:
            keep = parse_interval(keep_result)
            check_keep_result(keep)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--keep-result") from None
    use_import_paths(paths)
    with opened(url) as monitor:
        record, outcome = monitor.put_job(
            path,
            [call_value(a) for a in args],
            kwargs,
            queue=queue,
            begin_after=_when(begin_after, monitor.now()),
            retries=retries,
            timeout=timeout,
            unique_key=unique_key,
            unique_while=unique_while or None,
            unique_for=None if unique_for is None else dt.timedelta(seconds=unique_for),
            on_conflict=on_conflict,
            priority=priority,
            keep_result=keep,
        )
    if as_json:
        emit_json(
            {
                "id": record.id,
                "queue": record.queue,
                "call": record.call_repr,
                "begin_after": record.begin_after,
                "created": outcome == "created",
                "put_outcome": outcome,
                "priority": record.priority,
            }
        )
    else:
        click.echo(str(record.id))


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
@click.argument("job_id", type=JOB_ID)
@click.option("--reason", default="failed by an operator", show_default=True)
def fail(url: str | None, job_id: int, reason: str) -> None:
    """Fail a job that has not started (its callbacks get the failure)."""
    with opened(url) as monitor:
        monitor.fail(job_id, reason)
    click.echo(f"job {job_id} failed: {reason}")


@click.command(epilog="FILTERS (with --all-failed): " + FILTER_HELP.split("then filters: ")[1])
@db_option
@click.argument("args", nargs=-1, metavar="JOB_ID | --all-failed [FILTERS...]")
@click.option(
    "--all-failed",
    is_flag=True,
    help="Retry every failed job the filters select (not those retried already, nor those "
    "cancelled on purpose).",
)
@click.option("--dry-run", is_flag=True, help="Only say which jobs --all-failed would retry.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before a bulk retry.")
@this_option
@json_option
def retry(
    url: str | None,
    args: tuple[str, ...],
    all_failed: bool,
    dry_run: bool,
    yes: bool,
    this_uuid: str | None,
    as_json: bool,
) -> None:
    """Put a copy of a failed job as a new job (the failed one stays, linked)."""
    if not all_failed:
        if dry_run:
            raise click.UsageError("--dry-run goes with --all-failed")
        job_id = _one_id(args, "--all-failed")
        with opened(url) as monitor:
            new = monitor.retry(job_id)
        click.echo(f"job {job_id} retried as job {new.id}")
        return
    with opened(url, this_uuid) as monitor:
        query = monitor.select_for(args, "failed")
        preview = monitor.retry_many(query, dry_run=True)
        if not _bulk("retry", preview, dry_run, yes, as_json):
            return
        result = monitor.retry_many(query)
    if as_json:
        emit_json(result)
        return
    skipped = (
        f"; skipped {len(result.skipped)} retried before or cancelled" if result.skipped else ""
    )
    click.echo(f"retried {len(result.done)} job(s){skipped}")


@click.command()
@db_option
@click.argument("queue")
@click.option(
    "--create", is_flag=True, help="Create QUEUE if it has no jobs yet (paused from the start)."
)
def pause(url: str | None, queue: str, create: bool) -> None:
    """Stop workers claiming from QUEUE (running jobs go on)."""
    with opened(url) as monitor:
        monitor.pause(queue, create=create)
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
@click.argument("size", type=COUNT)
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
@click.option("--size", type=COUNT, default=3, show_default=True)
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
@click.argument("size", type=click.IntRange(min=1, max=COUNT.max))
def quota_size(url: str | None, queue: str, name: str, size: int) -> None:
    """Set (or create) quota NAME of QUEUE to SIZE."""
    with opened(url) as monitor:
        monitor.quota_size(queue, name, size)
    click.echo(f"quota {name!r} of queue {queue!r}: size {size}")


@click.command("quota-create")
@db_option
@click.argument("queue")
@click.argument("name")
@click.argument("size", type=click.IntRange(min=1, max=COUNT.max), default=1)
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


@click.command("rate-limit-set")
@db_option
@click.argument("queue")
@click.argument("name")
@click.argument("limit", type=click.IntRange(min=1, max=COUNT.max))
@click.argument("per")
def rate_limit_set(url: str | None, queue: str, name: str, limit: int, per: str) -> None:
    """Set (or create) rate limit NAME of QUEUE: at most LIMIT claims of its jobs in any
    PER ([nD][nH][nM][nS], e.g. 1M or 2S); running workers apply it at their next claim."""
    with opened(url) as monitor:
        created = monitor.rate_limit_set(queue, name, limit, parse_interval(per))
    done = "created" if created else "set"
    click.echo(f"rate limit {name!r} of queue {queue!r} {done}: {limit} per {per}")


@click.command("rate-limit-remove")
@db_option
@click.argument("queue")
@click.argument("name")
@click.option("--force", is_flag=True, help="Even if pending jobs name it (they run unlimited).")
def rate_limit_remove(url: str | None, queue: str, name: str, force: bool) -> None:
    """Remove rate limit NAME of QUEUE; refused while pending jobs name it, unless --force."""
    with opened(url) as monitor:
        try:
            monitor.rate_limit_remove(queue, name, force=force)
        except ValueError as error:  # named by pending jobs: say how from here
            text = str(error).replace(f"with remove({name!r}, force=True)", "with --force")
            raise click.UsageError(text) from error
        except KeyError as error:
            raise click.UsageError(error.args[0]) from error
    click.echo(f"rate limit {name!r} of queue {queue!r} removed")


@click.command()
@db_option
@click.option("--older-than", default="7D", show_default=True, help="Interval [nD][nH][nM][nS].")
def prune(url: str | None, older_than: str) -> None:
    """Delete completed jobs (and stopped dispatcher records) older than an interval now, and
    the jobs whose keep_result expired."""
    try:
        keep = parse_interval(older_than)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    with opened(url) as monitor:
        result = monitor.prune(keep)
    click.echo(
        f"pruned {result.jobs} job(s), {result.expired} expired job(s) (keep_result) and "
        f"{result.dispatchers} dispatcher record(s)"
    )


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
    put,
    cancel,
    pull,
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
    rate_limit_set,
    rate_limit_remove,
    prune,
    db,
]
