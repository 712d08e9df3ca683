"""The "Result expiry" example of docs/guide.md: previews kept an hour, not the workers' week."""

from __future__ import annotations

import datetime as dt

import jobq


def render_preview(order_id: int) -> str:
    return f"preview of order {order_id}"


def request_preview(db: jobq.Database, order_id: int) -> jobq.Job:
    # A preview is read once, soon after it is made: keep it an hour after it completes,
    # then the workers' retention prunes it (other jobs are kept 7 days).
    return db.queue().put(jobq.Job(render_preview, order_id), keep_result=dt.timedelta(hours=1))


def read_preview(db: jobq.Database, job_id: int) -> str:
    try:
        return str(db.get_job(job_id).wait(timeout=30))
    except jobq.JobExpired as expired:  # a jobq.JobNotFound, saying when and why
        return f"expired at {expired.expires_at:%H:%M}: request a new preview"
