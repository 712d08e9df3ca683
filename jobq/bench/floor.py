"""`python -m jobq.bench --floor`: what the store's work for each job costs alone, beside one
worker's drain of the same number of jobs, and beside puts from several threads.

The store loop is a process of one thread and no worker: it claims up to `WINDOW` jobs (the
claim-ahead window of an agent of size 3), then for each one makes the fenced start and waits
for it, and hands its outcome to the group commit, as a worker's threads do. It does what any
worker on this store must do for each job, without the worker's threads, runner, statistics or
log line, so its CPU per job (its own and the database server's) and its rate bound what a
worker could reach on the same store; the worker's figures beside it show what the rest costs.
The same loop is also run with every job claimed straight to active, without its fenced start:
not what jobq does (the start is where a job claimed ahead finds that it was cancelled or given
to another worker, gives way to a job put back, and has its attempt counted before it runs),
but what that write costs, measured beside the rest.

The same worker is also run with its threads on one CPU (Linux): they take turns on one GIL,
and a worker handing it between two cores pays for each handover (a thread woken on the
other core, the cache lines moved), which this shows against the worker on all of them.

Puts the same way: `put_threads` threads of one process put as many jobs, through `Queue.put`
(as an application calls it) beside the store's `enqueue` of a row encoded once (its SQL and
its group commit, without the job's encoding, the checks or the handle), each with its rate
and the process's CPU per put.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

import jobq
from jobq.bench.noop import noop
from jobq.bench.workloads import (
    BenchError,
    CpuMeter,
    Result,
    Settings,
    child_env,
    drain_jobs,
    fresh_database,
    ratio_table,
    server_url,
    summarize,
    threaded_puts,
)
from jobq.store.base import Outcome

WINDOW = 48  # jobs per claim: an agent of size 3's claim-ahead window (16 a thread)
# metric -> (label, unit)
FLOOR_METRICS: dict[str, tuple[str, str]] = {
    "rate": ("drain", "jobs/s"),
    "cpu_total_us": ("CPU per job, all", "µs"),
    "cpu_worker_us": ("  its process", "µs"),
    "cpu_server_us": ("  db server", "µs"),
    "put_rate": ("put from {threads} threads", "jobs/s"),
    "put_cpu_us": ("  CPU per put, its process", "µs"),
}
SHAPES = {
    "worker": "jobq (defaults)",
    "worker, one cpu": "jobq, one CPU",
    "store loop": "store alone",
    "store loop, no start": "store, no start",
}


def one_cpu() -> int | None:
    """The CPU a worker pinned to one runs on (the last this process may use), or None where
    the system sets no affinity (not Linux)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    return max(os.sched_getaffinity(0))


@dataclass
class FloorResult:
    engine: str
    metrics: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # shape, metric

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "metrics": self.metrics}


def store_loop(db: jobq.Database, fenced_start: bool = True) -> tuple[int, float]:
    """The loop, on the jobs waiting in `db`'s default queue: (jobs done, seconds). Without
    `fenced_start`, each claim starts every job it takes (no start write a job)."""
    store, clock = db.store, db.clock
    me = str(uuid.uuid4())
    store.activate_dispatcher(me, "bench", os.getpid(), 30.0, 60.0, None)
    payload = db.codec.dumps(None)
    committed = threading.Semaphore(0)
    failed: list[BaseException] = []

    def told(error: BaseException | None) -> None:
        if error is not None:
            failed.append(error)
        committed.release()

    done = 0
    started = time.perf_counter()
    while records := store.claim(
        "", me, "main", WINDOW, clock.now(), active_only=True, start=not fenced_start
    ):
        for record in records:
            if fenced_start and not store.start(record.id, record.attempt, me, clock.now()):
                raise BenchError(f"job {record.id} could not be started")
            outcome = Outcome(payload, "None")
            store.store_result_later(record.id, record.attempt, me, outcome, clock.now(), told)
            done += 1
    for _ in range(done):
        committed.acquire()
    if failed:
        raise BenchError(f"{len(failed)} outcomes failed to commit, the first: {failed[0]!r}")
    return done, time.perf_counter() - started


def _child(url: str, fenced_start: bool) -> None:
    """The store loop's process: says "ready", runs the loop when told, prints its result as
    JSON, and waits to be told to end, its connections open until then (for the parent's
    last look at the server's CPU, which finds a connection's server process by its port)."""
    with jobq.connect(url) as db:  # imports and the schema, before the timing begins
        print("ready", flush=True)
        sys.stdin.readline()
        done, seconds = store_loop(db, fenced_start)
        print(json.dumps({"jobs": done, "seconds": seconds}), flush=True)
        sys.stdin.readline()


def bench_store_loop(
    url: str, settings: Settings, processes: int = 1, fenced_start: bool = True
) -> Result:
    """Put `settings.jobs` no-op jobs, then time the store loop on them in `processes`
    processes of its own, all told to go at once, with their CPU and the server's (as a
    worker's drain is measured). The rate is the jobs over the longest loop's seconds."""
    with jobq.connect(url) as db:
        db.queue().put_many([jobq.Job(noop) for _ in range(settings.jobs)])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobq.bench.floor", url, "fenced" if fenced_start else "none"],
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    meter = CpuMeter([proc.pid for proc in procs], server_url(url, settings))
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise BenchError(f"a store loop did not start (exit code {proc.wait(30)})")
        before = meter.mark()
        for proc in procs:
            _tell(proc, "go")
        lines = [_answer(proc) for proc in procs]
        after = meter.mark()  # their connections are still open: the server's share is seen
        for proc, line in zip(procs, lines, strict=True):
            if not line:
                raise BenchError(f"a store loop failed (exit code {proc.wait(30)})")
        results = [json.loads(line) for line in lines]
        for proc in procs:
            _tell(proc, "end")
        for proc in procs:
            proc.wait(30)
    finally:
        meter.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    jobs = sum(result["jobs"] for result in results)
    if jobs != settings.jobs:
        raise BenchError(f"the store loops did {jobs} of {settings.jobs} jobs")
    process_s, server_s = CpuMeter.used(before, after)
    figures = {
        "rate": jobs / max(result["seconds"] for result in results),
        "cpu_worker_us": process_s / jobs * 1e6,
        "cpu_total_us": (process_s + server_s) / jobs * 1e6,
    }
    if server_url(url, settings) is not None:
        figures["cpu_server_us"] = server_s / jobs * 1e6
    return figures


def _tell(proc: subprocess.Popen[str], word: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(word + "\n")
    proc.stdin.flush()


def _answer(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline()


def bench_puts(url: str, settings: Settings, store_alone: bool) -> Result:
    """`settings.jobs` puts from `settings.put_threads` threads sharing one `Database`: each a
    `Queue.put` of a new job, or (`store_alone`) the store's `enqueue` of one row encoded
    before the timing. Jobs/s, and this process's CPU per put (every thread's, `getrusage`)."""
    with jobq.connect(url) as db:
        queue = db.queue()
        queue.put(jobq.Job(noop))  # the queue recorded and a connection open before the clock
        if store_alone:
            store, clock = db.store, db.clock
            row = db.rows.encode("", jobq.Job(noop), clock.now(), None, None, None, None)

            def put() -> Any:
                return store.enqueue([row], clock.now())
        else:

            def put() -> Any:
                return queue.put(jobq.Job(noop))

        before = resource.getrusage(resource.RUSAGE_SELF)
        rate = threaded_puts(
            lambda: contextlib.nullcontext(put), settings.jobs, settings.put_threads
        )
        after = resource.getrusage(resource.RUSAGE_SELF)
        stored = db.store.count_pending("") - 1
    if stored != settings.jobs:
        raise BenchError(f"{settings.jobs} puts returned, but {stored} jobs are stored")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"put_rate": rate, "put_cpu_us": used / settings.jobs * 1e6}


def bench_worker(url: str, settings: Settings, cpu: int | None = None) -> Result:
    """One `jobq worker` at its defaults draining no-op jobs; with `cpu`, on that CPU alone
    (its threads take turns on one GIL: on one core, handing it over costs less)."""
    rate, extra = drain_jobs(url, settings, [], noop, settings.jobs, cpu=cpu)
    return {"rate": rate, **{k: v for k, v in extra.items() if k.startswith("cpu_")}}


def run_floor(
    engine: str, settings: Settings, runs: int, progress: Callable[[str], None]
) -> FloorResult:
    """The worker's drain and the store loop, then puts through `Queue.put` and the store's
    enqueue alone, `runs` times each on `engine`, interleaved."""
    cpu = one_cpu()
    pinned: list[tuple[str, str, Callable[[str, Settings], Result]]] = (
        []
        if cpu is None
        else [("worker, one cpu", "worker on one CPU", lambda url, s: bench_worker(url, s, cpu))]
    )
    steps: list[tuple[str, str, Callable[[str, Settings], Result]]] = [
        ("worker", "worker", bench_worker),
        *pinned,
        ("store loop", "store loop", bench_store_loop),
        (
            "store loop, no start",
            "store loop without fenced starts",
            lambda url, s: bench_store_loop(url, s, fenced_start=False),
        ),
        ("worker", "puts", lambda url, s: bench_puts(url, s, store_alone=False)),
        ("store loop", "store puts", lambda url, s: bench_puts(url, s, store_alone=True)),
    ]
    collected: dict[str, dict[str, list[float]]] = {}
    for run in range(1, runs + 1):
        for shape, name, bench in steps:
            progress(f"{engine}: run {run}/{runs}: floor: {name}")
            with fresh_database(engine, settings) as url:
                for metric, value in bench(url, settings).items():
                    collected.setdefault(shape, {}).setdefault(metric, []).append(value)
    return FloorResult(
        engine,
        {
            name: {metric: summarize(values) for metric, values in metrics.items()}
            for name, metrics in collected.items()
        },
    )


def floor_table(
    results: list[FloorResult], machine: dict[str, Any], runs: int, put_threads: int = 8
) -> Table:
    """Rows engine x shape x metric: median, range, and jobq's figure over the store's."""
    caption = (
        "drain: jobq is one `jobq worker` at its defaults (main:3, INFO) draining no-op jobs "
        "(one CPU: the same, its threads on one CPU, as under `taskset -c N`, Linux only); "
        "the store alone is one thread of a process without a worker doing the store's work "
        f"for each of as many jobs (a claim of up to {WINDOW}, a fenced start waited for, the "
        "outcome to the group commit); no fenced start: the same with every job claimed "
        "straight to active (not jobq's behaviour: what its start write costs; its "
        "jobq/store figure is its own over the store loop's). "
        f"Puts: {put_threads} threads of one process, each "
        "`Queue.put(Job(noop))` (jobq) or the store's enqueue of a row encoded once (store "
        "alone). jobq/store: jobq's median over the store's. "
        + ", ".join(f"{k} {v}" for k, v in machine.items())
    )
    labels = {
        metric: (label.format(threads=put_threads), unit)
        for metric, (label, unit) in FLOOR_METRICS.items()
    }
    return ratio_table(
        f"jobq bench --floor (median of {runs} run(s))",
        caption,
        "shape",
        "jobq/store",
        results,
        labels,
        "store loop",
        SHAPES.__getitem__,
    )


def floor_report(
    results: list[FloorResult], machine: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    """The JSON report of `--floor --json`."""
    return {
        "machine": machine,
        "config": config,
        "units": {metric: unit for metric, (_, unit) in FLOOR_METRICS.items()},
        "floor": {result.engine: result.to_json() for result in results},
    }


if __name__ == "__main__":
    _child(sys.argv[1], fenced_start=sys.argv[2] == "fenced")
