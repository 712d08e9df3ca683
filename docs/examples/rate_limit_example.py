"""The example of docs/guide.md's "Rate limits" section: a newsletter sent through a mail
server that takes at most 5 messages per 2 seconds, from however many workers."""

from __future__ import annotations

import datetime as dt

import jobq

SENT: list[str] = []


def send_mail(address: str) -> str:
    SENT.append(address)  # smtplib.SMTP(...).send_message(...) in a real application
    return f"sent to {address}"


def send_newsletter(db: jobq.Database, addresses: list[str]) -> list[jobq.Job]:
    # -- example: rate limits --
    mail = db.queue("mail")
    if "smtp" not in mail.rate_limits:
        mail.rate_limits.create("smtp", limit=5, per=dt.timedelta(seconds=2))
    jobs = mail.put_many([jobq.Job(send_mail, a) for a in addresses], rate_limits=["smtp"])
    mail.put(jobq.Job(send_mail, "ops@example.com"))  # names no limit: never waits for it
    smtp = mail.rate_limits["smtp"]
    print(smtp.limit, smtp.per, smtp.used, smtp.waiting)  # 5 0:00:02 0 12
    # -- end --
    return jobs
