"""The example of docs/guide.md's "Time limits" section: an export that checks its stop
request, put with a five-minute limit, and a worker whose jobs get a default limit."""

from __future__ import annotations

import datetime as dt
import time

import jobq
from jobq import local


def export(rows: int) -> int:
    written = 0
    for _ in range(rows):
        if local.stop_requested():  # its time limit passed: end now, cleanly
            break
        time.sleep(0.01)  # one row's work
        written += 1
    return written


def put_and_run(db: jobq.Database, rows: int, timeout: dt.timedelta) -> jobq.Job:
    # -- example: time limits --
    job = db.queue().put(jobq.Job(export, rows), timeout=timeout)
    worker = db.worker(job_timeout=dt.timedelta(hours=1), timeout_grace=5)  # for jobs without
    with worker.start():
        try:
            print("exported", job.wait(timeout=60), "rows")
        except jobq.JobFailed as failed:  # it ran past its limit (and stopped when asked)
            print(failed.failure.type_name)  # jobq.errors.JobTimeout
    # -- end --
    return job
