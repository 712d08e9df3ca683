"""The example of docs/guide.md's "Schedules" section: a nightly report in Berlin time and a
per-second heartbeat, declared at every start of the application."""

from __future__ import annotations

import jobq

DONE: list[str] = []


def nightly_report(region: str) -> str:
    DONE.append(region)
    return f"report for {region}"


def declare_schedules(db: jobq.Database) -> None:
    # -- example: schedules --
    db.schedule(
        "nightly-report",
        "0 3 * * *",  # 03:00 every day, Berlin time
        jobq.Job(nightly_report, "eu"),
        timezone="Europe/Berlin",
        queue="reports",
        missed="once",  # down at 03:00? one report when a worker is back
    )
    db.schedule("heartbeat", "* * * * * *", jobq.Job(nightly_report, "ping"))  # every second
    for schedule in db.schedules():
        print(schedule.name, schedule.next_run, schedule.last_run)
    # -- end --
