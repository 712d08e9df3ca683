"""The pi quickstart: Monte Carlo samples as parallel parts, combined by a postprocess.

    .venv/bin/python examples/pi.py                     # 20,000,000 samples, SQLite in a temp dir
    .venv/bin/python examples/pi.py --samples 10000000  # quicker (about 4 s), still parallel

It starts two worker processes (`python -m jobq worker`), each with two agents:

    --agent samples:1:pi:is_sample       one sample job at a time per process: one per core
    --agent main:3:pi:is_not_sample      everything else (composites, postprocesses, callbacks)

then estimates pi twice with the same number of samples: `jobq.parallel` of two sample jobs
(one per worker process, so one per core), and one big sample job alone. Each sample job
reports its progress (`jobq.local.progress`), shown here as bars while it runs. At the end it
prints both estimates, each run's active time (`job.active_end - job.active_start` of the
composite) and their ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jobq
from jobq import Job

REPORTS = 40  # progress reports per sample job


# -- the jobs (workers import them from this module, `pi`) --------------------------------------
def generate_sample(size: int = 100_000) -> tuple[int, int]:
    """Throw `size` random points in the unit square; (how many fell in the circle, size)."""
    inside = 0
    done = 0
    rand = random.random
    chunk = max(10_000, size // REPORTS)
    while done < size:
        n = min(chunk, size - done)
        for _ in range(n):
            x, y = rand(), rand()
            if x * x + y * y <= 1.0:
                inside += 1
        done += n
        jobq.local.progress(done, size)
    return inside, size


def process_samples(*jobs: jobq.Job) -> float:
    """The postprocess: pi from the parts' (inside, size) results."""
    inside = sum(job.result[0] for job in jobs)
    size = sum(job.result[1] for job in jobs)
    return 4.0 * inside / size


def is_sample(job: jobq.Job) -> bool:
    """Agent filter: the sample jobs."""
    return job.call_repr.startswith("pi.generate_sample(")


def is_not_sample(job: jobq.Job) -> bool:
    """Agent filter: everything else (keep a catch-all agent: composites need it)."""
    return not is_sample(job)


# -- the client ----------------------------------------------------------------------------------
def start_workers(db_url: str, count: int) -> list[subprocess.Popen[bytes]]:
    here = str(Path(__file__).resolve().parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable, "-m", "jobq", "worker", "--db", db_url, "--poll-interval", "0.1",
        "--agent", "samples:1:pi:is_sample", "--agent", "main:3:pi:is_not_sample",
        "--log-level", "WARNING",
    ]  # fmt: skip
    return [subprocess.Popen(command, env=env) for _ in range(count)]


def wait_for_workers(db: jobq.Database, count: int, timeout: float = 60.0) -> None:
    """Wait until `count` workers are alive with their agents (so both start timing ready)."""
    from jobq.monitor.service import Monitor

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = [d for d in Monitor(db).dispatchers() if d.state == "alive" and d.agents]
        if len(ready) >= count:
            return
        time.sleep(0.1)
    raise SystemExit(f"the {count} workers did not start within {timeout:g} s")


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


def run(db: jobq.Database, label: str, composite: jobq.Composite, quiet: bool) -> jobq.Job:
    """Put the composite and show its parts' progress until it completes."""
    job = db.queue().put(composite)
    if quiet:
        job.wait(timeout=600)
        return job.refresh()
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, transient=False) as bars:
        tasks: dict[int, int] = {}
        while job.refresh().status not in ("callbacks", "completed"):
            parts = (
                job.parts if job.annotations.get("jobq.composite", {}).get("postprocess") else []
            )
            for number, part in enumerate(parts, 1):
                if part.id not in tasks:
                    size = part.args[0] if part.args else 100_000
                    tasks[part.id] = bars.add_task(f"{label} part {number}", total=size)
                progress = part.progress or {}
                bars.update(tasks[part.id], completed=progress.get("done", 0))
            time.sleep(0.25)
        for part in job.parts:
            if part.id in tasks:
                bars.update(tasks[part.id], completed=part.args[0])
    return job


def seconds(job: jobq.Job) -> float:
    assert job.active_start is not None and job.active_end is not None
    return (job.active_end - job.active_start).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20_000_000, help="samples per estimate")
    parser.add_argument("--db", default=None, help="database URL (default: a temporary SQLite)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    options = parser.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="jobq-pi-")
    db_url = options.db or f"sqlite:///{tmp.name}/pi.db"
    db = jobq.connect(db_url)
    half = options.samples // 2
    workers = start_workers(db_url, 2)
    try:
        wait_for_workers(db, 2)
        parallel = run(
            db,
            "parallel",
            jobq.parallel(
                Job(generate_sample, half),
                Job(generate_sample, options.samples - half),
                postprocess=process_samples,
            ),
            options.quiet,
        )
        single = run(
            db,
            "one part",
            jobq.serial(Job(generate_sample, options.samples), postprocess=process_samples),
            options.quiet,
        )
        p_time, s_time = seconds(parallel), seconds(single)
        p_pi, s_pi = parallel.wait(), single.wait()
    finally:
        stop_workers(workers)
        db.close()
        tmp.cleanup()
    print(f"parallel, 2 parts of {half:,} samples: pi ~= {p_pi:.5f} in {p_time:.2f} s")
    print(f"one part of {options.samples:,} samples:    pi ~= {s_pi:.5f} in {s_time:.2f} s")
    print(f"one part / parallel: {s_time / p_time:.2f}x")
    return 0


if __name__ == "__main__":
    import pi  # so that the jobs are stored as pi.generate_sample, importable by workers

    sys.exit(pi.main())
