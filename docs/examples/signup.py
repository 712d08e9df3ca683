"""A small application under test for docs/testing.md: sign-ups send a welcome mail now and
a reminder a day later, unless the user confirmed meanwhile."""

from __future__ import annotations

import datetime as dt

import jobq

SENT: list[str] = []  # stands in for a mail server
CONFIRMED: set[str] = set()


def send_welcome(email: str) -> str:
    SENT.append(f"welcome {email}")
    return "sent"


def send_reminder(email: str) -> str:
    if email in CONFIRMED:
        return "skipped"
    SENT.append(f"reminder {email}")
    return "sent"


def log_outcome(result: object) -> str:
    return f"outcome: {result}"


def sign_up(db: jobq.Database, email: str) -> jobq.Job:
    """Puts the welcome mail (with a callback) and a reminder due in one day."""
    queue = db.queue()
    welcome = queue.put(jobq.Job(send_welcome, email))
    welcome.add_callback(log_outcome)
    queue.put(
        jobq.Job(send_reminder, email),
        begin_after=db.clock.now() + dt.timedelta(days=1),
        begin_by=dt.timedelta(hours=1),
    )
    return welcome
