"""The example of docs/guide.md's "Priorities" section: a queue where password-reset mails
go before newsletters and a nightly clean-up goes last, drained by a worker of one thread."""

from __future__ import annotations

import datetime as dt

import jobq

SENT: list[str] = []


def send(kind: str, to: str) -> str:
    SENT.append(f"{kind}:{to}")
    return to


def fill(db: jobq.Database) -> list[jobq.Job]:
    # -- example: priorities --
    mail = db.queue("mail")
    mail.put_many([jobq.Job(send, "newsletter", f"user{i}") for i in range(3)])  # priority 0
    mail.put(jobq.Job(send, "cleanup", "nobody"), priority=-5)  # after every default job
    reset = mail.put(jobq.Job(send, "password-reset", "ann"), priority=10)  # first of all
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    mail.put(jobq.Job(send, "reminder", "bob"), priority=10, begin_after=later)  # waits
    print([job.priority for job in mail])  # queue order: [10, 10, 0, 0, 0, -5]
    # -- end --
    return [reset]
