"""The schedule commands: `jobq schedules` lists them with their next and last run, and
`jobq schedule add | pause | resume | remove | sync FILE.toml` changes them while workers run
(every worker's schedules loop reads them within seconds)."""

from __future__ import annotations

import click

from jobq.cli.common import call_kwargs, call_value, db_option, json_option, opened
from jobq.cli.imports import use_import_paths
from jobq.cli.tables import console, emit_json, schedules_table
from jobq.model.job import PRIORITIES

_PATH_OPTION = click.option(
    "--path",
    "paths",
    multiple=True,
    envvar="JOBQ_PATH",
    type=click.Path(exists=True, file_okay=False, resolve_path=True),
    help="A folder to import MODULE from, after the current directory (as jobq worker).",
)


@click.command("schedules")
@db_option
@json_option
def schedules(url: str | None, as_json: bool) -> None:
    """The schedules, with their next run (UTC), last run and last job."""
    with opened(url) as monitor:
        found = monitor.db.schedules()
        now = monitor.now()
    if as_json:
        emit_json(found)
        return
    console().print(schedules_table(found, now))


@click.group("schedule")
def schedule() -> None:
    """Add, pause, resume, remove or sync (from a TOML file) cron schedules."""


@schedule.command("add")
@db_option
@click.argument("name")
@click.argument("cron")
@click.argument("path", metavar="MODULE:FUNCTION")
@click.argument("args", nargs=-1, metavar="[ARGS]...")
@click.option("--kw", "kws", multiple=True, metavar="NAME=VALUE", help="A keyword argument.")
@click.option("--timezone", default="UTC", show_default=True, help="An IANA time zone.")
@click.option("--queue", default="", help="The queue (default: the default queue).")
@click.option(
    "--missed",
    type=click.Choice(["skip", "once", "all"]),
    default="skip",
    show_default=True,
    help="Ticks no worker saw in time: skip them, run once for them, or run all of them.",
)
@click.option("--catch-up", default=10, show_default=True, help="With --missed all: at most N.")
@click.option(
    "--priority",
    type=click.IntRange(min=PRIORITIES[0], max=PRIORITIES[-1]),
    default=0,
    show_default=True,
    help="The priority of its jobs, -10..10 (as put(priority=N)).",
)
@_PATH_OPTION
@json_option
def add(
    url: str | None,
    name: str,
    cron: str,
    path: str,
    args: tuple[str, ...],
    kws: tuple[str, ...],
    timezone: str,
    queue: str,
    missed: str,
    catch_up: int,
    priority: int,
    paths: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create schedule NAME (or replace its definition): at each tick of CRON (quote it; five
    fields, or six with leading seconds) put a job calling MODULE:FUNCTION(ARGS...). Each
    argument is JSON when it is valid JSON, else a string."""
    from jobq.monitor.schedules import ScheduleEntry, save

    kwargs = call_kwargs(kws)
    use_import_paths(paths)
    entry = ScheduleEntry(
        name, cron, path, tuple(call_value(a) for a in args), kwargs, timezone, queue, missed,
        catch_up, priority,
    )  # fmt: skip
    with opened(url) as monitor:
        made = save(monitor.db, entry)
    if as_json:
        emit_json(made)
    else:
        click.echo(f"schedule {made.name!r}: next run {made.next_run}")


def _state_command(verb: str) -> click.Command:
    @click.command(verb)
    @db_option
    @click.argument("name")
    def command(url: str | None, name: str) -> None:
        with opened(url) as monitor:
            if verb == "pause":
                monitor.db.pause_schedule(name)
            elif verb == "resume":
                made = monitor.db.resume_schedule(name)
                click.echo(f"schedule {name!r} resumed: next run {made.next_run}")
                return
            else:
                monitor.db.unschedule(name)
        click.echo(f"schedule {name!r} {'paused' if verb == 'pause' else 'removed'}")

    command.help = {
        "pause": "Pause schedule NAME: no job is put until it is resumed.",
        "resume": "Resume schedule NAME from its next tick (the paused ticks are not run).",
        "remove": "Remove schedule NAME (the jobs it put stay).",
    }[verb]
    return command


for _verb in ("pause", "resume", "remove"):
    schedule.add_command(_state_command(_verb))


@schedule.command("sync")
@db_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--prune", is_flag=True, help="Also remove the schedules FILE does not name.")
@_PATH_OPTION
@json_option
def sync(url: str | None, file: str, prune: bool, paths: tuple[str, ...], as_json: bool) -> None:
    """Create or replace every schedule of the TOML FILE ([schedules.NAME] tables with cron,
    job = "MODULE:FUNCTION", and optionally args, kwargs, timezone, queue, missed, catch_up);
    the whole file is checked before anything is stored."""
    from jobq.monitor.schedules import read_file
    from jobq.monitor.schedules import sync as sync_entries

    use_import_paths(paths)
    with opened(url) as monitor:
        entries = read_file(file)
        result = sync_entries(monitor.db, entries, prune=prune)
    if as_json:
        emit_json(result)
        return
    for made in result.schedules:
        click.echo(f"schedule {made.name!r}: next run {made.next_run}")
    for name in result.removed:
        click.echo(f"schedule {name!r} removed")


COMMANDS = [schedules, schedule]
