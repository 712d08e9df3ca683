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
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

import jobq
from jobq.bench.noop import noop, sleep10ms

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
LATENCY_SPACING = 0.020  # seconds between puts in the latency workload


Result = dict[str, float]  # metric -> value, of one run of a workload


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
    put_threads: int = 8


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

    conninfo, _, _, _ = split_url(url)
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

    def run_span(self, after_id: int | None = None) -> float:
        """Seconds from the first job's start to the last job's completion, of the jobs seen
        (or of those after `after_id`)."""
        after = self.after_id if after_id is None else after_id
        if self.engine == "sqlite":  # integer microseconds
            first, last = self._one(
                "SELECT min(active_start), max(completed_at) FROM jobq_jobs WHERE id > %s",
                after,
            )
            return float(last - first) / 1e6
        (span,) = self._one(
            "SELECT EXTRACT(EPOCH FROM max(completed_at) - min(active_start)) FROM jobq_jobs "
            "WHERE id > %s",
            after,
        )
        return float(span)

    def longest_hold(self, after_id: int) -> float:
        """The longest a job after `after_id` waited between its last claim and its start, in
        seconds: how long a worker held it claimed ahead, unstarted."""
        if self.engine == "sqlite":
            (hold,) = self._one(
                "SELECT max(active_start - assigned_at) FROM jobq_jobs WHERE id > %s", after_id
            )
            return float(hold) / 1e6
        (hold,) = self._one(
            "SELECT EXTRACT(EPOCH FROM max(active_start - assigned_at)) FROM jobq_jobs "
            "WHERE id > %s",
            after_id,
        )
        return float(hold)

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

    Its stdout and stderr go to one log file, as a deployed worker's output does: a pipe nobody
    reads could fill and block it, and /dev/null would make logging cost less than it does.
    """

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self._log_dir = Path(tempfile.mkdtemp(prefix="jobq-bench-log-"))
        self.log_path = self._log_dir / "worker.log"
        self._log = self.log_path.open("ab")
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            env=env or child_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, chars: int = 2000) -> str:
        """The end of the worker's log (its stdout and stderr)."""
        try:
            return self.log_path.read_bytes().decode(errors="replace")[-chars:]
        except OSError:
            return ""

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
        self._log.close()
        shutil.rmtree(self._log_dir, ignore_errors=True)


class WorkerProcess(ChildProcess):
    """`python -m jobq worker --db URL [OPTIONS]` on the benchmark database: with no options,
    as a user runs it (agent main:3, log level INFO, poll interval 1 s). With `cpu`, its
    threads run on that CPU alone, as under `taskset -c CPU`: the starting thread's own
    affinity for the moment of the start, which the child inherits as it is forked, before
    it runs anything."""

    def __init__(self, url: str, options: list[str], cpu: int | None = None) -> None:
        argv = [sys.executable, "-m", "jobq", "worker", "--db", url, *options]
        if cpu is None:
            super().__init__(argv)
            return
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})  # this thread's alone (Linux), until the child exists
        try:
            super().__init__(argv)
        finally:
            os.sched_setaffinity(0, allowed)

    def wait_active(self, probe: Probe, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not probe.dispatcher_active(self.pid):
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"worker did not activate within {timeout} s")
            time.sleep(0.05)


# -- CPU from /proc ---------------------------------------------------------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of process `pid`, all its threads (live and exited) included; None when
    it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # from field 3 (state) on
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a supervisor's worker processes, for one)."""
    pids, index = [pid], 0
    while index < len(pids):
        for task in Path(f"/proc/{pids[index]}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids += [int(child) for child in task.read_text().split()]
        index += 1
    return pids


def tcp_ports(pids: list[int]) -> set[int]:
    """Local TCP ports of the sockets processes `pids` hold open (their database connections)."""
    inodes: set[int] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(int(link[8:-1]))
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and int(parts[9]) in inodes:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


class CpuMeter:
    """CPU seconds used by a worker's process tree and, on PostgreSQL, by the server processes
    working for it: the backends of the worker's own connections (found by their client port)
    and the server's background processes (WAL writer, checkpointer, background writer,
    autovacuum; these also serve any other load on the server).

    `sample()` records each process's latest figure, so a backend that closes before the end
    keeps what it used until its last sample; `mark()` samples and returns the figures so far,
    and `used(a, b)` the (worker, server) seconds between two marks.
    """

    SERVER_EVERY = 0.25  # seconds between look-ups of the worker's backends

    def __init__(self, pid: int | list[int], pg_url: str | None) -> None:
        self.roots = [pid] if isinstance(pid, int) else list(pid)  # several workers' trees
        self._conn: Any = None
        if pg_url is not None:
            import psycopg

            self._conn = psycopg.connect(pg_url, autocommit=True)
        self._latest: dict[tuple[str, int], float] = {}
        self._backends: list[int] = []
        self._background: list[int] = []
        self._looked_up = 0.0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _look_up_server(self) -> None:
        rows = self._conn.execute(
            "SELECT pid, backend_type, client_port FROM pg_stat_activity"
        ).fetchall()
        ports = tcp_ports(self._tree())
        self._backends = [
            pid for pid, kind, port in rows if kind == "client backend" and port in ports
        ]
        self._background = [pid for pid, kind, _ in rows if kind != "client backend"]
        self._looked_up = time.monotonic()

    def _tree(self) -> list[int]:
        return [pid for root in self.roots for pid in process_tree(root)]

    def sample(self) -> None:
        groups = [("worker", self._tree())]
        if self._conn is not None:
            if time.monotonic() - self._looked_up >= self.SERVER_EVERY:
                self._look_up_server()
            groups += [("server", self._backends + self._background)]
        for group, pids in groups:
            for pid in pids:
                seconds = process_cpu_seconds(pid)
                if seconds is not None:
                    self._latest[(group, pid)] = seconds

    def mark(self, look_up: bool = True) -> dict[tuple[str, int], float]:
        if look_up:
            self._looked_up = 0.0
        self.sample()
        return dict(self._latest)

    @staticmethod
    def used(
        before: dict[tuple[str, int], float], after: dict[tuple[str, int], float]
    ) -> tuple[float, float]:
        totals = {"worker": 0.0, "server": 0.0}
        for key, seconds in after.items():
            totals[key[0]] += seconds - before.get(key, 0.0)
        return totals["worker"], totals["server"]


def drain_and_measure(
    count: Callable[[], int],
    worker: ChildProcess,
    n: int,
    timeout: float,
    pg_url: str | None,
) -> Result:
    """Wait until `count()` reaches `n`, measuring the CPU the drain used (`CpuMeter`): from
    the first completion seen to the last, per job completed in between, so that start-up
    (imports, connections) is left out; the whole run, per job, when the first look already
    saw more than half the jobs done. µs per job, worker and server apart, and their sum."""
    meter = CpuMeter(worker.pid, pg_url)
    try:
        launched = meter.mark()
        deadline = time.monotonic() + timeout
        while (first := count()) < 1:
            worker.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"no job of {n} completed within {timeout} s")
            time.sleep(0.005)
        started = meter.mark()
        while (done := count()) < n:
            worker.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"only {done} of {n} jobs completed within {timeout} s")
            meter.sample()
            time.sleep(0.05)
        finished = meter.mark()
    finally:
        meter.close()
    if first <= n // 2:
        worker_s, server_s = CpuMeter.used(started, finished)
        jobs = n - first
    else:
        worker_s, server_s = CpuMeter.used(launched, finished)
        jobs = n
    result = {
        "cpu_worker_us": worker_s / jobs * 1e6,
        "cpu_total_us": (worker_s + server_s) / jobs * 1e6,
    }
    if pg_url is not None:
        result["cpu_server_us"] = server_s / jobs * 1e6
    return result


def threaded_puts(
    make_put: Callable[[], contextlib.AbstractContextManager[Callable[[], Any]]],
    n: int,
    threads: int,
) -> float:
    """Jobs/s of `n` puts from `threads` threads of this process, all started together, each
    calling the put that its own `make_put()` context yields (with its own connection, say)
    n / threads times; timed from the start to the last put's return. Every put is durable
    when it returns: each is the job system's own enqueue call, committed."""
    per_thread = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
    ready = threading.Barrier(threads + 1)
    done = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def run(count: int) -> None:
        try:
            with make_put() as put:
                ready.wait()
                try:
                    for _ in range(count):
                        put()
                finally:
                    done.wait()  # the clock stops before any connection closes
        except BaseException as error:
            errors.append(error)
            ready.abort()
            done.abort()

    workers = [threading.Thread(target=run, args=(count,)) for count in per_thread]
    for thread in workers:
        thread.start()
    elapsed = 0.0
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
        started = time.perf_counter()
        done.wait()
        elapsed = time.perf_counter() - started
    for thread in workers:
        thread.join()
    if errors:
        raise BenchError(f"a putting thread failed: {errors[0]!r}")
    return n / elapsed


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
def bench_put(url: str, settings: Settings, options: list[str]) -> Result:
    with jobq.connect(url) as db:
        queue = db.queue()
        started = time.perf_counter()
        for _ in range(settings.jobs):
            queue.put(jobq.Job(noop))
        elapsed = time.perf_counter() - started
    return {"put": settings.jobs / elapsed}


def bench_put_threads(url: str, settings: Settings, options: list[str]) -> Result:
    """Puts from `put_threads` threads sharing one `Database`, as a web app's request threads."""
    with jobq.connect(url) as db:
        queue = db.queue()

        def make_put() -> contextlib.AbstractContextManager[Callable[[], Any]]:
            return contextlib.nullcontext(lambda: queue.put(jobq.Job(noop)))

        return {"put_threads": threaded_puts(make_put, settings.jobs, settings.put_threads)}


def bench_put_many(url: str, settings: Settings, options: list[str]) -> Result:
    with jobq.connect(url) as db:
        queue = db.queue()
        started = time.perf_counter()
        queue.put_many([jobq.Job(noop) for _ in range(settings.jobs)])
        elapsed = time.perf_counter() - started
    return {"put_many": settings.jobs / elapsed}


def server_url(url: str, settings: Settings) -> str | None:
    """The PostgreSQL server's URL for `CpuMeter` when `url` is on PostgreSQL, else None."""
    return None if url.startswith("sqlite") else settings.pg_url


def drain_jobs(
    url: str,
    settings: Settings,
    options: list[str],
    func: Callable[[], None],
    n: int,
    put: Callable[[jobq.Database], None] | None = None,
    cpu: int | None = None,
) -> tuple[float, Result]:
    """(jobs/s from the first stored start to the last stored completion, the worker's peak
    RSS and CPU per job).

    Only the `n` jobs put here are counted and timed: the table may hold other rows. `put`
    stores them (default: one put_many of `func` jobs). `cpu`: the worker runs on that CPU
    alone (`WorkerProcess`)."""
    with jobq.connect(url) as db:
        probe = Probe(url, only_new=True)  # after connect, which creates the schema
        try:
            if put is None:
                db.queue().put_many([jobq.Job(func) for _ in range(n)])
            else:
                put(db)
        except BaseException:
            probe.close()
            raise
    try:
        worker = WorkerProcess(url, options, cpu)
        try:
            extra = drain_and_measure(
                probe.count_completed, worker, n, settings.timeout, server_url(url, settings)
            )
            rss = worker.peak_rss_mb()
            if rss is not None:
                extra["rss_mb"] = rss
        finally:
            worker.stop()
        span = probe.run_span()
    finally:
        probe.close()
    return n / span, extra


def drain_result(rate: float, extra: Result) -> Result:
    """A drain's metrics: its rate, and its CPU per job and peak RSS under `drain_` names."""
    return {"drain": rate} | {f"drain_{name}": value for name, value in extra.items()}


def bench_drain(url: str, settings: Settings, options: list[str]) -> Result:
    return drain_result(*drain_jobs(url, settings, options, noop, settings.jobs))


def bench_sleep(url: str, settings: Settings, options: list[str]) -> Result:
    rate, _ = drain_jobs(url, settings, options, sleep10ms, settings.sleep_jobs)
    return {"sleep": rate}


def format_value(value: float) -> str:
    """A measurement for the tables: thousands separated, two or three significant digits."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio_table(
    title: str,
    caption: str,
    group_column: str,
    ratio_column: str,
    results: Sequence[Any],
    metric_labels: dict[str, tuple[str, str]],
    base_group: str,
    group_label: Callable[[str], str] = str,
) -> Table:
    """Rows engine x group x metric of results whose `metrics` are {group: {metric:
    summary}}: the median, its range, and the ratio of each other group's median to
    `base_group`'s (the `--features` and `--floor` tables)."""
    dash = "\u2013"
    table = Table(title=title, caption=caption)
    for column in ("engine", group_column, "measure"):
        table.add_column(column, no_wrap=True)
    table.add_column("median", justify="right", no_wrap=True)
    table.add_column(f"min{dash}max", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    table.add_column(ratio_column, justify="right", no_wrap=True)
    for result in results:
        base = result.metrics.get(base_group, {})
        first_engine = True
        for group, metrics in result.metrics.items():
            first_group = True
            for metric, (label, unit) in metric_labels.items():
                summary = metrics.get(metric)
                if summary is None:
                    continue
                against = base.get(metric)
                ratio = (
                    f"{summary['median'] / against['median']:.2f}"
                    if group != base_group and against and against["median"]
                    else ""
                )
                table.add_row(
                    result.engine if first_engine else "",
                    group_label(group) if first_group else "",
                    label,
                    format_value(summary["median"]),
                    f"{format_value(summary['min'])}{dash}{format_value(summary['max'])}",
                    unit,
                    ratio,
                )
                first_engine = first_group = False
            table.add_section()
    return table


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


def bench_latency(url: str, settings: Settings, options: list[str]) -> Result:
    db = jobq.connect(url)
    probe = Probe(url, only_new=True)  # the table may hold other rows: count only ours
    worker = WorkerProcess(url, options)
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


JobqWorkload = Callable[[str, Settings, list[str]], Result]
WORKLOADS: list[tuple[str, JobqWorkload]] = [
    ("put", bench_put),
    ("put_threads", bench_put_threads),
    ("put_many", bench_put_many),
    ("drain", bench_drain),
    ("latency", bench_latency),
    ("sleep", bench_sleep),
]

# metric -> (label, unit, higher is better); {threads}: --put-threads, {sleep}: the table's
# concurrency of the sleep workload
METRICS: dict[str, tuple[str, str, bool]] = {
    "put": ("put (one at a time)", "jobs/s", True),
    "put_threads": ("put from {threads} threads", "jobs/s", True),
    "put_many": ("put_many (one call)", "jobs/s", True),
    "drain": ("drain (1 worker)", "jobs/s", True),
    "drain_cpu_total_us": ("drain CPU per job, all", "µs", False),
    "drain_cpu_worker_us": ("  of which worker", "µs", False),
    "drain_cpu_server_us": ("  of which db server", "µs", False),
    "latency_p50": ("latency p50", "ms", False),
    "latency_p99": ("latency p99", "ms", False),
    "sleep": ("sleep10ms ({sleep})", "jobs/s", True),
    "drain_rss_mb": ("drain worker peak RSS", "MiB", False),
    "latency_rss_mb": ("latency worker peak RSS", "MiB", False),
}

# The two tables: every system as installed (its documented defaults), then tuned.
PROFILES = ("defaults", "tuned")


def summarize(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


@dataclass
class System:
    """A job system on one engine in one profile: its workloads (each on fresh storage), what
    it lacks, its version, and its worker's settings in that profile (said in the table)."""

    name: str
    workloads: list[tuple[str, Callable[[Settings], Result]]]
    not_available: dict[str, str] = field(default_factory=dict)  # metric -> why
    profile: str = "defaults"
    version: str = ""
    settings: str = ""  # what the worker runs with, as the table's notes say it
    concurrency: str = ""  # how many jobs its worker runs at a time (the sleep workload's)


def jobq_worker_options(profile: str, settings: Settings) -> list[str]:
    """`jobq worker` options: none at defaults; tuned, `--agent-size` threads and quiet logs."""
    if profile == "defaults":
        return []
    return ["--agent", f"main:{settings.agent_size}", "--log-level", "WARNING"]


def jobq_system(engine: str, profile: str = "defaults", settings: Settings | None = None) -> System:
    from importlib.metadata import version

    agent = settings.agent_size if settings else 8

    def on_fresh_database(workload: JobqWorkload) -> Callable[[Settings], Result]:
        def run(settings: Settings) -> Result:
            with fresh_database(engine, settings) as url:
                return workload(url, settings, jobq_worker_options(profile, settings))

        return run

    if profile == "defaults":
        described, concurrency = "jobq worker --db URL (agent main:3, INFO, poll 1 s)", "3"
    else:
        described = f"jobq worker --agent main:{agent} --log-level WARNING"
        concurrency = str(agent)
    return System(
        "jobq",
        [(name, on_fresh_database(w)) for name, w in WORKLOADS],
        profile=profile,
        version=version("jobq"),
        settings=described,
        concurrency=concurrency,
    )


def run_systems(
    engine: str,
    systems: list[System],
    settings: Settings,
    runs: int,
    progress: Callable[[str], None],
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Every system's workloads `runs` times, interleaved run by run (the profiles too) so that
    a noisy spell of the machine hits every system alike; summaries by profile, system, then
    metric."""
    collected: dict[tuple[str, str], dict[str, list[float]]] = {
        (system.profile, system.name): {} for system in systems
    }
    for run in range(1, runs + 1):
        for system in systems:
            for name, workload in system.workloads:
                progress(f"{engine}: run {run}/{runs}: {system.profile}: {system.name}: {name}")
                for metric, value in workload(settings).items():
                    collected[(system.profile, system.name)].setdefault(metric, []).append(value)
    results: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for (profile, name), metrics in collected.items():
        results.setdefault(profile, {})[name] = {
            metric: summarize(values) for metric, values in metrics.items()
        }
    return results


def run_engine(
    engine: str, settings: Settings, runs: int, progress: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Every jobq workload `runs` times on `engine` at its defaults, each on a fresh database;
    by metric."""
    system = jobq_system(engine, "defaults", settings)
    return run_systems(engine, [system], settings, runs, progress)["defaults"]["jobq"]
