"""The example of docs/guide.md's "Unique jobs" section: a web app whose users may click
"make my PDF" twice, and a digest mail sent at most once an hour, whatever asks for it."""

from __future__ import annotations

import datetime as dt

import jobq

RENDERED: list[int] = []
DIGESTS: list[str] = []


def render_pdf(order: int) -> str:
    RENDERED.append(order)
    return f"order-{order}.pdf"


def send_digest(user: str) -> None:
    DIGESTS.append(user)


def request_pdf(db: jobq.Database, order: int) -> jobq.Job:
    # -- example: unique jobs --
    pdfs = db.queue("pdf")
    job = pdfs.put(jobq.Job(render_pdf, order), unique_key=f"pdf:order-{order}")
    print(job.id, job.put_outcome)  # a second click while it waits or runs: same id, "existing"
    return job
    # -- end --


def request_digest(db: jobq.Database, user: str) -> jobq.Job:
    # At most one digest an hour per user, even once the first one has been sent.
    return db.queue("mail").put(
        jobq.Job(send_digest, user),
        unique_key=f"digest:{user}",
        unique_for=dt.timedelta(hours=1),
    )
