"""`python -m jobq.bench --fleet`: jobq with more than one worker, at its defaults.

Three workloads, each on a fresh database, per engine (scale-out on PostgreSQL only):

- **mixed**: `MIXED_SHORT` no-op jobs, then `MIXED_LONG` jobs of `MIXED_SECONDS` each, drained
  by two worker processes of `--agent main:2` (otherwise at their defaults). The long jobs'
  span (first start to last completion, database times) is set against the ideal, every one
  of the four threads busy: MIXED_LONG x MIXED_SECONDS / 4. An efficiency under 0.9 means a
  worker sat idle while another held jobs it had not started; the longest a long job waited
  between its claim and its start shows how long one was held.
- **scale-out** (PostgreSQL): `--jobs` no-op jobs drained by `jobq worker --processes N`,
  N = 1, 2, 4: jobs/s, and CPU per job of the workers and of the server. On a machine with
  two cores the curve is bounded by them; it must not fall as workers are added. Beside each,
  the same jobs drained by N processes of `--floor`'s store loop (the store's work for each
  job and nothing else): where the worker's curve falls, the loop's shows whether the store
  and the machine fall with it.
- **idle**: IDLE_WORKERS worker processes at their defaults with nothing to do: the share
  of a core each uses (and the database server's share, PostgreSQL), over `IDLE_SECONDS`
  once every one is activated; then IDLE_LATENCY_JOBS jobs put 20 ms apart while they idle,
  and their put-to-start p50 and p99.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

import jobq
from jobq.bench.floor import bench_store_loop
from jobq.bench.noop import noop, sleep_for
from jobq.bench.workloads import (
    LATENCY_SPACING,
    BenchError,
    CpuMeter,
    Probe,
    Result,
    Settings,
    WorkerProcess,
    drain_jobs,
    format_value,
    fresh_database,
    percentile,
    server_url,
    summarize,
)

MIXED_SHORT = 5000
MIXED_LONG = 40
MIXED_SECONDS = 0.2
MIXED_WORKERS, MIXED_SIZE = 2, 2
SCALE_OUT = (1, 2, 4)
IDLE_WORKERS = 20
IDLE_SECONDS = 10.0
IDLE_LATENCY_JOBS = 50
DASH = "\u2013"  # en dash, for ranges

# metric -> (label, unit, higher is better)
FLEET_METRICS: dict[str, tuple[str, str, bool]] = {
    "mixed_efficiency": ("mixed: long jobs, ideal / span", "ratio", True),
    "mixed_long_span": ("mixed: long jobs' span", "s", False),
    "mixed_makespan": ("mixed: all jobs' span", "s", False),
    "mixed_longest_hold": ("mixed: longest a long job was held unstarted", "s", False),
    **{
        f"scale_{n}": (f"scale-out: drain, {n} worker process(es)", "jobs/s", True)
        for n in SCALE_OUT
    },
    **{
        f"scale_{n}_cpu_worker_us": (f"  CPU per job, {n}: workers", "µs", False) for n in SCALE_OUT
    },
    **{
        f"scale_{n}_cpu_server_us": (f"  CPU per job, {n}: db server", "µs", False)
        for n in SCALE_OUT
    },
    **{
        f"scale_loop_{n}": (f"scale-out: store loop, {n} process(es)", "jobs/s", True)
        for n in SCALE_OUT
    },
    **{
        f"scale_loop_{n}_cpu_worker_us": (f"  CPU per job, {n}: loops", "µs", False)
        for n in SCALE_OUT
    },
    **{
        f"scale_loop_{n}_cpu_server_us": (f"  CPU per job, {n}: db server", "µs", False)
        for n in SCALE_OUT
    },
    "idle_worker_percent": ("idle: CPU per idle worker", "% core", False),
    "idle_server_percent": ("idle: db server CPU, all workers", "% core", False),
    "idle_latency_p50": ("idle: latency p50", "ms", False),
    "idle_latency_p99": ("idle: latency p99", "ms", False),
}


@dataclass
class FleetSizes:
    """The workloads' sizes (`--quick` makes them small)."""

    short: int = MIXED_SHORT
    long: int = MIXED_LONG
    idle_workers: int = IDLE_WORKERS
    idle_seconds: float = IDLE_SECONDS
    idle_latency_jobs: int = IDLE_LATENCY_JOBS

    @classmethod
    def quick(cls) -> FleetSizes:
        return cls(short=300, long=8, idle_workers=3, idle_seconds=2.0, idle_latency_jobs=10)


@dataclass
class FleetResult:
    engine: str
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "metrics": self.metrics}


@contextlib.contextmanager
def _workers(url: str, count: int, options: list[str]) -> Iterator[list[WorkerProcess]]:
    """`count` worker processes on `url`, each waited for until activated; stopped after."""
    workers: list[WorkerProcess] = []
    jobq.connect(url).close()  # the schema, before the probe reads it
    probe = Probe(url)
    try:
        for _ in range(count):
            workers.append(WorkerProcess(url, options))
        for worker in workers:
            worker.wait_active(probe, timeout=120)
        yield workers
    finally:
        probe.close()
        for worker in workers:
            worker.stop()


def bench_mixed(url: str, settings: Settings, sizes: FleetSizes) -> Result:
    """Short jobs, then long ones, drained by two workers of size 2 (module docstring)."""
    with jobq.connect(url) as db:
        probe = Probe(url, only_new=True)
        first_id = probe.after_id
        queue = db.queue()
        queue.put_many([jobq.Job(noop) for _ in range(sizes.short)])
        longs = queue.put_many([jobq.Job(sleep_for, MIXED_SECONDS) for _ in range(sizes.long)])
    last_short_id = min(job.id or 0 for job in longs) - 1
    total = sizes.short + sizes.long
    try:
        options = ["--agent", f"main:{MIXED_SIZE}"]
        with _workers(url, MIXED_WORKERS, options) as workers:
            deadline = time.monotonic() + settings.timeout
            while probe.count_completed() < total:
                for worker in workers:
                    worker.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError(f"mixed: not every job completed in {settings.timeout} s")
                time.sleep(0.05)
        long_span = probe.run_span(after_id=last_short_id)
        makespan = probe.run_span(after_id=first_id)
        longest_hold = probe.longest_hold(after_id=last_short_id)
    finally:
        probe.close()
    ideal = sizes.long * MIXED_SECONDS / (MIXED_WORKERS * MIXED_SIZE)
    return {
        "mixed_efficiency": ideal / long_span,
        "mixed_long_span": long_span,
        "mixed_makespan": makespan,
        "mixed_longest_hold": longest_hold,
    }


def bench_scale_out(url_for: Callable[[], Any], settings: Settings) -> Result:
    """No-op jobs drained by 1, 2 and 4 worker processes (`--processes N`), each beside as
    many processes of the store loop alone (`jobq.bench.floor`)."""
    result: Result = {}
    for n in SCALE_OUT:
        with url_for() as url:
            rate, extra = drain_jobs(url, settings, ["--processes", str(n)], noop, settings.jobs)
        result[f"scale_{n}"] = rate
        for key in ("cpu_worker_us", "cpu_server_us"):
            if key in extra:
                result[f"scale_{n}_{key}"] = extra[key]
        with url_for() as url:
            loop = bench_store_loop(url, settings, processes=n)
        result[f"scale_loop_{n}"] = loop["rate"]
        for key in ("cpu_worker_us", "cpu_server_us"):
            if key in loop:
                result[f"scale_loop_{n}_{key}"] = loop[key]
    return result


def bench_idle(url: str, settings: Settings, sizes: FleetSizes) -> Result:
    """Idle workers' CPU, then put-to-start latency while they idle (module docstring)."""
    with _workers(url, sizes.idle_workers, []) as workers:
        time.sleep(1.0)  # past start-up: imports, first pings, agent set-up
        meter = CpuMeter([w.pid for w in workers], server_url(url, settings))
        try:
            before = meter.mark()
            began = time.monotonic()
            time.sleep(sizes.idle_seconds)
            after = meter.mark()
            elapsed = time.monotonic() - began
        finally:
            meter.close()
        worker_s, server_s = CpuMeter.used(before, after)
        result: Result = {"idle_worker_percent": worker_s / elapsed / len(workers) * 100}
        if server_url(url, settings) is not None:
            result["idle_server_percent"] = server_s / elapsed * 100
        latencies = _idle_latencies(url, sizes.idle_latency_jobs, settings.timeout)
    result["idle_latency_p50"] = percentile(latencies, 0.50)
    result["idle_latency_p99"] = percentile(latencies, 0.99)
    return result


def _idle_latencies(url: str, count: int, timeout: float) -> list[float]:
    """Put `count` no-op jobs LATENCY_SPACING apart; ms from each put to its stored start."""
    with jobq.connect(url) as db:
        queue = db.queue()
        puts = []
        origin = time.monotonic()
        for i in range(count):
            delay = origin + i * LATENCY_SPACING - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            put_at = db.clock.now()
            puts.append((queue.put(jobq.Job(noop)), put_at))
        latencies = []
        deadline = time.monotonic() + timeout
        for job, put_at in puts:
            while job.refresh().status != "completed":
                if time.monotonic() > deadline:
                    raise BenchError(f"idle: job {job.id} did not complete in {timeout} s")
                time.sleep(0.02)
            assert job.active_start is not None
            latencies.append((job.active_start - put_at).total_seconds() * 1000.0)
    return latencies


def run_fleet(
    engine: str,
    settings: Settings,
    runs: int,
    sizes: FleetSizes,
    progress: Callable[[str], None],
) -> FleetResult:
    """The fleet workloads `runs` times on `engine`; medians by metric."""
    collected: dict[str, list[float]] = {}

    def fresh() -> Any:
        return fresh_database(engine, settings)

    for run in range(1, runs + 1):
        steps: list[tuple[str, Callable[[], Result]]] = []

        def mixed() -> Result:
            with fresh() as url:
                return bench_mixed(url, settings, sizes)

        def idle() -> Result:
            with fresh() as url:
                return bench_idle(url, settings, sizes)

        steps = [("mixed", mixed), ("idle", idle)]
        if engine == "postgres":
            steps.insert(1, ("scale-out", lambda: bench_scale_out(fresh, settings)))
        for name, step in steps:
            progress(f"{engine}: run {run}/{runs}: fleet: {name}")
            for metric, value in step().items():
                collected.setdefault(metric, []).append(value)
    return FleetResult(engine, {m: summarize(v) for m, v in collected.items()})


def fleet_table(results: list[FleetResult], machine: dict[str, Any], runs: int) -> Table:
    """Rows engine x metric: median and range."""
    caption = (
        f"mixed: {MIXED_WORKERS} workers of main:{MIXED_SIZE}, long jobs of {MIXED_SECONDS} s "
        f"after no-op jobs; scale-out: jobq worker --processes N, and N processes of the "
        f"store loop alone (--floor's); idle: workers at their defaults. "
        + ", ".join(f"{k} {v}" for k, v in machine.items())
    )
    table = Table(title=f"jobq bench --fleet (median of {runs} run(s))", caption=caption)
    for column in ("engine", "workload"):
        table.add_column(column, no_wrap=True)
    table.add_column("median", justify="right", no_wrap=True)
    table.add_column(f"min{DASH}max", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    for result in results:
        first = True
        for metric, (label, unit, _) in FLEET_METRICS.items():
            summary = result.metrics.get(metric)
            if summary is None:
                continue
            table.add_row(
                result.engine if first else "",
                label,
                format_value(summary["median"]),
                f"{format_value(summary['min'])}{DASH}{format_value(summary['max'])}",
                unit,
            )
            first = False
        table.add_section()
    return table


def fleet_report(
    results: list[FleetResult], machine: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    """The JSON report of `--fleet --json`."""
    return {
        "machine": machine,
        "config": config,
        "units": {metric: unit for metric, (_, unit, _) in FLEET_METRICS.items()},
        "fleet": {result.engine: result.to_json() for result in results},
    }
