"""`jobq demo`: jobq's main job on the embedded default, end to end, printed as it happens.

It puts report jobs (one fails and is reported by a failure callback, one is scheduled a few
seconds ahead, one returns a follow-up job), starts a real worker process, and shows each
job's status until all are done. The job functions live here so the worker can import them.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

import jobq


def make_report(number: int) -> str:
    """Pretend to render an expensive report."""
    time.sleep(0.3)
    if number == 3:
        raise RuntimeError(f"report {number}: the template is missing")
    return f"report-{number}.pdf"


def report_failed(failure: jobq.Failure) -> str:
    """A failure callback: runs in a worker with the Failure of its parent."""
    return f"alerted ops about {failure.type_name}"


def report_done(result: str) -> str:
    return f"e-mailed {result}"


def split_work(count: int) -> jobq.Job:
    """Returns a follow-up job: this job completes with that job's result."""
    return jobq.Job(sum_numbers, list(range(count)))


def sum_numbers(numbers: list[int]) -> int:
    return sum(numbers)


def _table(jobs: list[tuple[str, jobq.Job]]) -> Table:
    table = Table(title="jobq demo", expand=False)
    for column in ("job", "what", "status", "result"):
        table.add_column(column)
    for label, job in jobs:
        job.refresh()
        if job.status in ("callbacks", "completed"):
            result = f"[red]{job.failure}[/red]" if job.failed else repr(job.result)
        else:
            result = ""
        colour = {"completed": "green", "active": "yellow"}.get(job.status, "white")
        table.add_row(str(job.id), label, f"[{colour}]{job.status}[/{colour}]", result)
    return table


def run_demo(url: str | None, count: int) -> int:
    console = Console()
    if url is None:
        path = "jobq-demo.db"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        url = f"sqlite:///{path}"
    db = jobq.connect(url)
    queue = db.queue()
    jobs: list[tuple[str, jobq.Job]] = []
    for n in range(1, count + 1):
        job = queue.put(jobq.Job(make_report, n))
        jobs.append((f"make_report({n})", job))
        jobs.append((f"  callbacks of {job.id}", job.add_callbacks(report_done, report_failed)))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    jobs.append(
        ("make_report(99) at +3 s", queue.put(jobq.Job(make_report, 99), begin_after=later))
    )
    jobs.append(("split_work(100)", queue.put(jobq.Job(split_work, 100))))
    console.print(f"Put {len(jobs)} jobs in {db!r}; starting a worker process...")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobq",
            "worker",
            "--db",
            url,
            "--agent",
            "main:4",
            "--log-level",
            "WARNING",
            "--poll-interval",
            "0.5",
        ],
        env=env,
    )
    started = time.monotonic()
    try:
        with Live(_table(jobs), console=console, refresh_per_second=4) as live:
            while time.monotonic() - started < 60:
                live.update(_table(jobs))
                if all(job.status == "completed" for _, job in jobs):
                    break
                time.sleep(0.25)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    done = sum(job.status == "completed" for _, job in jobs)
    failed = sum(job.failed for _, job in jobs)
    console.print(
        f"{done}/{len(jobs)} jobs completed ({failed} failed, as planned) in "
        f"{time.monotonic() - started:.1f} s; the worker stopped cleanly: {worker.returncode == 0}"
    )
    db.close()
    return 0 if done == len(jobs) and worker.returncode == 0 else 1
