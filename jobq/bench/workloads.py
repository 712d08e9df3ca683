"""The benchmark's workloads, its fresh databases, its worker subprocess and its probe.

The probe is a raw, read-only SQL connection of the benchmark's own: the store has no query
for "how many jobs are completed" or "when did the first job start and the last complete",
and the benchmark must not add one to `jobq.store`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jobq
from jobq.bench.noop import noop, sleep10ms

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
LATENCY_SPACING = 0.020  # seconds between puts in the latency workload


class BenchError(RuntimeError):
    """A workload could not finish (worker died, timeout...)."""


@dataclass
class Settings:
    jobs: int
    latency_jobs: int
    agent_size: int
    pg_url: str
    sqlite_synchronous: str
    timeout: float
    sleep_jobs: int = 1000


# -- fresh databases -------------------------------------------------------------------------
def _with_query(url: str, **options: str) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in options.items())


@contextlib.contextmanager
def fresh_database(engine: str, settings: Settings) -> Iterator[str]:
    """The URL of an empty jobq database, removed afterwards."""
    if engine == "sqlite":
        with fresh_directory() as tmp:
            yield f"sqlite:///{tmp / 'bench.db'}?synchronous={settings.sqlite_synchronous}"
        return
    with fresh_schema(settings.pg_url) as schema:
        yield _with_query(settings.pg_url, schema=schema)


@contextlib.contextmanager
def fresh_schema(pg_url: str, prefix: str = "jobq_bench", create: bool = False) -> Iterator[str]:
    """The name of a new PostgreSQL schema (created if `create`), dropped afterwards."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if create:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def fresh_directory() -> Iterator[Path]:
    """A new temporary directory, removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="jobq-bench-")
    try:
        yield Path(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def raw_connection(url: str, read_only: bool = True) -> Any:
    """The benchmark's own SQL connection to a jobq database URL (sqlite3, or autocommit
    psycopg on the URL's schema); read-only on SQLite when `read_only`."""
    if url.startswith("sqlite"):
        from urllib.parse import urlsplit

        path = urlsplit(url).path[1:]
        if read_only:
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        return sqlite3.connect(path, timeout=30, isolation_level=None)
    import psycopg

    from jobq.store.postgres import split_url

    conninfo, _, _ = split_url(url)
    return psycopg.connect(conninfo, autocommit=True)


class Probe:
    """Read-only SQL on the benchmark database (no store query exists for these).

    With `only_new`, it sees only the jobs stored after it was made (ids above the largest
    one then), so a workload can run on a table already holding many rows (`--scale`).
    """

    def __init__(self, url: str, only_new: bool = False) -> None:
        self.engine = "sqlite" if url.startswith("sqlite") else "postgres"
        self._conn: Any = raw_connection(url)
        self.after_id = 0
        if only_new:
            self.after_id = int(self._one("SELECT coalesce(max(id), 0) FROM jobq_jobs")[0])

    def close(self) -> None:
        self._conn.close()

    def _one(self, sql: str, *params: Any) -> tuple[Any, ...]:
        if self.engine == "sqlite":
            return tuple(self._conn.execute(sql.replace("%s", "?"), params).fetchone())
        return tuple(self._conn.execute(sql, params).fetchone())

    def count_completed(self) -> int:
        row = self._one(
            "SELECT count(*) FROM jobq_jobs WHERE status = 'completed' AND id > %s", self.after_id
        )
        return int(row[0])

    def run_span(self) -> float:
        """Seconds from the first job's start to the last job's completion."""
        if self.engine == "sqlite":  # integer microseconds
            first, last = self._one(
                "SELECT min(active_start), max(completed_at) FROM jobq_jobs WHERE id > %s",
                self.after_id,
            )
            return float(last - first) / 1e6
        (span,) = self._one(
            "SELECT EXTRACT(EPOCH FROM max(completed_at) - min(active_start)) FROM jobq_jobs "
            "WHERE id > %s",
            self.after_id,
        )
        return float(span)

    def dispatcher_active(self, pid: int) -> bool:
        row = self._one(
            "SELECT count(*) FROM jobq_dispatchers "
            "WHERE pid = %s AND activated IS NOT NULL AND deactivated IS NULL",
            pid,
        )
        return bool(row[0])


# -- worker subprocesses --------------------------------------------------------------------
def child_env(**extra: str) -> dict[str, str]:
    """This process's environment, with its import path, for worker subprocesses."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **extra}


class ChildProcess:
    """A worker subprocess (any job system's): liveness, peak memory, stop.

    Its stderr goes to a temporary file (a pipe nobody reads could fill and block it).
    """

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            env=env or child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, chars: int = 2000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-chars:]

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"worker {self.argv[2:4]} exited with code {self.proc.returncode}:\n"
                f"{self.stderr_tail()}"
            )

    def peak_rss_mb(self) -> float | None:
        """VmHWM (peak resident set) of the worker, from /proc; None where unavailable."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            return None
        return None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._stderr.close()


class WorkerProcess(ChildProcess):
    """`python -m jobq worker` on the benchmark database."""

    def __init__(self, url: str, agent_size: int) -> None:
        super().__init__(
            [
                sys.executable, "-m", "jobq", "worker", "--db", url,
                "--agent", f"main:{agent_size}", "--poll-interval", "0.5",
                "--log-level", "WARNING",
            ]
        )  # fmt: skip

    def wait_active(self, probe: Probe, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not probe.dispatcher_active(self.pid):
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"worker did not activate within {timeout} s")
            time.sleep(0.05)


def wait_until(
    count: Callable[[], int], worker: ChildProcess, n: int, timeout: float, every: float = 0.05
) -> None:
    """Poll `count()` (completions as the job system's storage records them) until it is `n`."""
    deadline = time.monotonic() + timeout
    while count() < n:
        worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"only {count()} of {n} jobs completed within {timeout} s")
        time.sleep(every)


def wait_completed(probe: Probe, worker: ChildProcess, n: int, timeout: float) -> None:
    wait_until(probe.count_completed, worker, n, timeout)


# -- the workloads ---------------------------------------------------------------------------
Result = dict[str, float]


def bench_put(url: str, settings: Settings) -> Result:
    with jobq.connect(url) as db:
        queue = db.queue()
        started = time.perf_counter()
        for _ in range(settings.jobs):
            queue.put(jobq.Job(noop))
        elapsed = time.perf_counter() - started
    return {"put": settings.jobs / elapsed}


def bench_put_many(url: str, settings: Settings) -> Result:
    with jobq.connect(url) as db:
        queue = db.queue()
        started = time.perf_counter()
        queue.put_many([jobq.Job(noop) for _ in range(settings.jobs)])
        elapsed = time.perf_counter() - started
    return {"put_many": settings.jobs / elapsed}


def _drain(
    url: str, settings: Settings, func: Callable[[], None], n: int
) -> tuple[float, float | None]:
    """(jobs/s from the first stored start to the last stored completion, peak worker RSS).

    Only the `n` jobs put here are counted and timed: the table may hold other rows."""
    with jobq.connect(url) as db:
        probe = Probe(url, only_new=True)  # after connect, which creates the schema
        try:
            db.queue().put_many([jobq.Job(func) for _ in range(n)])
        except BaseException:
            probe.close()
            raise
    try:
        worker = WorkerProcess(url, settings.agent_size)
        try:
            wait_completed(probe, worker, n, settings.timeout)
            rss = worker.peak_rss_mb()
        finally:
            worker.stop()
        span = probe.run_span()
    finally:
        probe.close()
    return n / span, rss


def bench_drain(url: str, settings: Settings) -> Result:
    rate, rss = _drain(url, settings, noop, settings.jobs)
    result = {"drain": rate}
    if rss is not None:
        result["drain_rss_mb"] = rss
    return result


def bench_sleep(url: str, settings: Settings) -> Result:
    rate, _ = _drain(url, settings, sleep10ms, settings.sleep_jobs)
    return {"sleep": rate}


def format_value(value: float) -> str:
    """A measurement for the tables: thousands separated, two or three significant digits."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def paced_puts(n: int, put: Callable[[], Any]) -> list[tuple[Any, float]]:
    """`put()` n times, LATENCY_SPACING apart: (what each returned, time.time() before it)."""
    puts: list[tuple[Any, float]] = []
    origin = time.monotonic()
    for i in range(n):
        delay = origin + i * LATENCY_SPACING - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        put_at = time.time()
        puts.append((put(), put_at))
    return puts


def latency_result(latencies_ms: list[float], rss: float | None) -> Result:
    result = {
        "latency_p50": percentile(latencies_ms, 0.50),
        "latency_p99": percentile(latencies_ms, 0.99),
    }
    if rss is not None:
        result["latency_rss_mb"] = rss
    return result


def bench_latency(url: str, settings: Settings) -> Result:
    db = jobq.connect(url)
    probe = Probe(url, only_new=True)  # the table may hold other rows: count only ours
    worker = WorkerProcess(url, settings.agent_size)
    try:
        queue = db.queue()
        worker.wait_active(probe)
        # One warm-up job (not measured): the worker imports jobq.bench.noop on its first job.
        queue.put(jobq.Job(noop))
        wait_completed(probe, worker, 1, 60)
        time.sleep(0.2)
        puts: list[tuple[jobq.Job, dt.datetime]] = []
        origin = time.monotonic()
        for i in range(settings.latency_jobs):
            delay = origin + i * LATENCY_SPACING - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            put_at = db.clock.now()
            puts.append((queue.put(jobq.Job(noop)), put_at))
        wait_completed(probe, worker, settings.latency_jobs + 1, settings.timeout)
        rss = worker.peak_rss_mb()
    finally:
        worker.stop()
        probe.close()
    try:
        latencies = []
        for job, put_at in puts:
            assert job.id is not None
            started = db.get_job(job.id).active_start
            assert started is not None
            latencies.append((started - put_at).total_seconds() * 1000.0)
    finally:
        db.close()
    return latency_result(latencies, rss)


WORKLOADS: list[tuple[str, Callable[[str, Settings], Result]]] = [
    ("put", bench_put),
    ("put_many", bench_put_many),
    ("drain", bench_drain),
    ("latency", bench_latency),
    ("sleep", bench_sleep),
]

# metric -> (label, unit, higher is better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "put": ("put (one at a time)", "jobs/s", True),
    "put_many": ("put_many (one call)", "jobs/s", True),
    "drain": ("drain (1 worker)", "jobs/s", True),
    "latency_p50": ("latency p50", "ms", False),
    "latency_p99": ("latency p99", "ms", False),
    "sleep": ("sleep10ms ({agent} at a time)", "jobs/s", True),
    "drain_rss_mb": ("drain worker peak RSS", "MiB", False),
    "latency_rss_mb": ("latency worker peak RSS", "MiB", False),
}


def summarize(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


@dataclass
class System:
    """A job system on one engine: its workloads (each on fresh storage) and what it lacks."""

    name: str
    workloads: list[tuple[str, Callable[[Settings], Result]]]
    not_available: dict[str, str] = field(default_factory=dict)  # metric -> why


def jobq_system(engine: str) -> System:
    def on_fresh_database(workload: Callable[[str, Settings], Result]) -> Callable[..., Result]:
        def run(settings: Settings) -> Result:
            with fresh_database(engine, settings) as url:
                return workload(url, settings)

        return run

    return System("jobq", [(name, on_fresh_database(w)) for name, w in WORKLOADS])


def run_systems(
    engine: str,
    systems: list[System],
    settings: Settings,
    runs: int,
    progress: Callable[[str], None],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every system's workloads `runs` times, interleaved run by run so that a noisy spell of
    the machine hits every system alike; summaries by system, then metric."""
    collected: dict[str, dict[str, list[float]]] = {system.name: {} for system in systems}
    for run in range(1, runs + 1):
        for system in systems:
            for name, workload in system.workloads:
                progress(f"{engine}: run {run}/{runs}: {system.name}: {name}")
                for metric, value in workload(settings).items():
                    collected[system.name].setdefault(metric, []).append(value)
    return {
        name: {metric: summarize(values) for metric, values in metrics.items()}
        for name, metrics in collected.items()
    }


def run_engine(
    engine: str, settings: Settings, runs: int, progress: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Every jobq workload `runs` times on `engine`, each on a fresh database; by metric."""
    return run_systems(engine, [jobq_system(engine)], settings, runs, progress)["jobq"]
