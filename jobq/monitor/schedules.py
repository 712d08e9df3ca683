"""Schedules for operators: adding one by import path (`jobq schedule add`), and a schedules
file (`jobq schedule sync FILE.toml`), checked whole before anything is stored.

A schedules file is TOML, one table per schedule under `[schedules]`:

    [schedules.nightly-report]
    cron = "0 3 * * *"
    job = "myapp.reports:nightly"     # MODULE:FUNCTION
    args = ["eu"]                     # optional
    kwargs = { full = true }          # optional
    timezone = "Europe/Berlin"        # optional, default "UTC"
    queue = "reports"                 # optional, default ""
    missed = "once"                   # optional: skip (default), once, all
    catch_up = 10                     # optional, with missed = "all"
    priority = 5                      # optional, -10..10, default 0

Syncing creates or replaces each schedule of the file (an unchanged one keeps its next tick)
and, with `prune`, removes the database's schedules the file does not name.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobq.errors import ConfigError, EncodingError
from jobq.jobs.schedules import DEFAULT_CATCH_UP, Schedule
from jobq.model.job import Job, check_priority
from jobq.model.schedule import check_cron, check_missed, check_name, zone

if TYPE_CHECKING:
    from jobq.database import Database

_KEYS = {"cron", "job", "args", "kwargs", "timezone", "queue", "missed", "catch_up", "priority"}


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """One schedule as an operator gives it: the job as an import path and its arguments."""

    name: str
    cron: str
    path: str
    args: Sequence[Any] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    timezone: str = "UTC"
    queue: str = ""
    missed: str = "skip"
    catch_up: int = DEFAULT_CATCH_UP
    priority: int = 0

    def job(self) -> Job:
        """The job each tick puts; ValueError if the path names no importable callable."""
        from jobq.monitor.service import resolve_callable

        return Job(resolve_callable(self.path), *self.args, **self.kwargs)


@dataclasses.dataclass(frozen=True, slots=True)
class SyncResult:
    """What `sync` did: the schedules of the file as stored, and the names it removed."""

    schedules: tuple[Schedule, ...]
    removed: tuple[str, ...]


def read_file(path: str | Path) -> list[ScheduleEntry]:
    """The entries of a schedules file; ConfigError naming the file, schedule and key that is
    wrong."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"cannot read schedules file {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    unknown = set(data) - {"schedules"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; use [schedules.NAME]"
        )
    tables = data.get("schedules", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: 'schedules' must be a table of [schedules.NAME] tables")
    entries = []
    for name, table in tables.items():
        where = f"{path}: schedule {name!r}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        extra = set(table) - _KEYS
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {sorted(extra)}; known: {sorted(_KEYS)}")
        missing = {"cron", "job"} - set(table)
        if missing:
            raise ConfigError(f"{where}: missing {' and '.join(sorted(missing))}")
        if not isinstance(table.get("args", []), list):
            raise ConfigError(f"{where}: args must be a list")
        if not isinstance(table.get("kwargs", {}), dict):
            raise ConfigError(f"{where}: kwargs must be a table")
        try:
            entries.append(
                ScheduleEntry(
                    name=name,
                    cron=table["cron"],
                    path=table["job"],
                    args=tuple(table.get("args", ())),
                    kwargs=dict(table.get("kwargs", {})),
                    timezone=table.get("timezone", "UTC"),
                    queue=table.get("queue", ""),
                    missed=table.get("missed", "skip"),
                    catch_up=table.get("catch_up", DEFAULT_CATCH_UP),
                    priority=table.get("priority", 0),
                )
            )
        except TypeError as error:
            raise ConfigError(f"{where}: {error}") from None
    return entries


def save(db: Database, entry: ScheduleEntry) -> Schedule:
    """Create or replace the schedule of `entry`; ValueError if its job path is bad."""
    job = entry.job()
    try:
        return db.schedule(
            entry.name,
            entry.cron,
            job,
            timezone=entry.timezone,
            queue=entry.queue,
            missed=entry.missed,
            catch_up=entry.catch_up,
            priority=entry.priority,
        )
    except EncodingError as error:
        raise ConfigError(f"schedule {entry.name!r}: {error}") from None


def sync(db: Database, entries: Sequence[ScheduleEntry], *, prune: bool = False) -> SyncResult:
    """Check every entry (names, expressions, zones, policies, job paths), then save each and,
    with `prune`, remove the schedules not named: a bad entry stores nothing."""
    now = db.clock.now()
    for entry in entries:
        try:
            check_name(entry.name)
            zone(entry.timezone)
            check_cron(entry.cron, entry.timezone, now)
            check_missed(entry.missed, entry.catch_up)
            check_priority(entry.priority)
            entry.job()
        except (TypeError, ValueError) as error:
            raise ConfigError(f"schedule {entry.name!r}: {error}") from None
    saved = tuple(save(db, entry) for entry in entries)
    removed: list[str] = []
    if prune:
        wanted = {entry.name for entry in entries}
        for schedule in db.schedules():
            if schedule.name not in wanted:
                db.unschedule(schedule.name)
                removed.append(schedule.name)
    return SyncResult(saved, tuple(removed))
