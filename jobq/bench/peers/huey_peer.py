"""Huey (3.x) as a benchmark peer: `SqliteHuey` on SQLite, `SqlHuey` on PostgreSQL.

Huey ships no PostgreSQL storage in its core; its `huey.contrib.sql_huey.SqlHuey` stores tasks
through peewee (here with psycopg 3, `psycopg3://` URLs) in any SQL database, PostgreSQL
included, claiming with `FOR UPDATE SKIP LOCKED`. That is the PostgreSQL storage measured.

How each workload is measured (jobq's definitions, `jobq.bench.workloads`):

- put: one `task()` call per job (one INSERT, committed). put_many: n/a, Huey has no bulk
  enqueue (`task.map()` enqueues one at a time).
- worker, defaults profile: Huey's consumer as documented, `huey_consumer <app>`: one worker
  thread (`-w 1`, `-k thread`), logging at INFO (a line as each task starts and one as it
  ends) to its output, and its default polling: an idle worker sleeps 0.1 s, growing by x1.15
  per empty poll up to 10 s (`-d 0.1 -b 1.15 -m 10`; Huey's SQL storages have no wake-up
  signal). Tuned profile: `-w 8 -k thread -q` (`--agent-size` threads, warnings only).
- put from 8 threads: the threads share the producer's Huey, as a web app's do (each thread
  gets its own connection: SqliteHuey's and peewee's connections are per thread).
- CPU per job: the consumer process (and, on PostgreSQL, the server's backends for its
  connections, `jobq.bench.workloads.CpuMeter`).
- completion: Huey keeps no completion record or timestamps except a task's result, stored in
  its `kv` table when the task finishes. So each job returns (time it started, time it
  finished) as its result; a job counts as completed only when its result row is in storage
  (`storage.result_store_size()`), and drain/sleep rates run from the first returned start to
  the last returned finish. This slightly favours Huey against jobq, whose span runs from the
  claim's commit to the completion's commit.
- latency: the job's returned start time minus the time just before `task()`.
- durability: SqliteHuey with `fsync=True` (synchronous=FULL, WAL) for jobq's default
  `--sqlite-synchronous full`; PostgreSQL with the server's default synchronous_commit.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jobq.bench.noop import SLEEP_SECONDS
from jobq.bench.workloads import (
    PROFILES,
    ChildProcess,
    Result,
    Settings,
    System,
    child_env,
    drain_and_measure,
    drain_result,
    fresh_directory,
    fresh_schema,
    latency_result,
    paced_puts,
    threaded_puts,
    wait_until,
)

ENGINES = ("sqlite", "postgres")
APP = "jobq.bench.peers.huey_app.huey"  # what the consumer loads (built from the env below)
ENV_STORAGE, ENV_TARGET, ENV_FSYNC = (
    "JOBQ_BENCH_HUEY_STORAGE",
    "JOBQ_BENCH_HUEY_TARGET",
    "JOBQ_BENCH_HUEY_FSYNC",
)


# -- the jobs: each returns (started, finished), Huey's only stored trace of a run ----------
def timed_noop() -> tuple[float, float]:
    started = time.time()
    return started, time.time()


def timed_sleep10ms() -> tuple[float, float]:
    started = time.time()
    time.sleep(SLEEP_SECONDS)
    return started, time.time()


def make_huey(storage: str, target: str, fsync: str) -> tuple[Any, Any, Any]:
    """(huey, noop task, sleep task) on SQLite file or peewee URL `target`."""
    if storage == "sqlite":
        from huey import SqliteHuey

        fsync_flag = {"true": True, "false": False}.get(fsync)
        huey = SqliteHuey(name="bench", filename=target, fsync=fsync_flag, results=True)
    else:
        from huey.contrib.sql_huey import SqlHuey

        huey = SqlHuey(name="bench", database=target, results=True)
    return (
        huey,
        huey.task(name="noop")(timed_noop),
        huey.task(name="sleep10ms")(timed_sleep10ms),
    )


# -- storage and consumer --------------------------------------------------------------------
def _fsync(settings: Settings) -> str:
    # SQLite synchronous: full/extra -> fsync=True (FULL); off -> False; normal -> SQLite's own.
    return {"full": "true", "extra": "true", "off": "false"}.get(settings.sqlite_synchronous, "")


def _peewee_url(pg_url: str, schema: str) -> str:
    parts = urlsplit(pg_url)
    query = [*parse_qsl(parts.query), ("options", f"-c search_path={schema}")]
    return urlunsplit(parts._replace(scheme="psycopg3", query=urlencode(query)))


@contextlib.contextmanager
def _fresh_storage(engine: str, settings: Settings) -> Iterator[tuple[str, str, str]]:
    """(storage, target, fsync) of empty Huey storage, removed afterwards."""
    if engine == "sqlite":
        with fresh_directory() as tmp:
            yield "sqlite", str(tmp / "huey.db"), _fsync(settings)
    else:
        with fresh_schema(settings.pg_url, prefix="huey_bench", create=True) as schema:
            yield "postgres", _peewee_url(settings.pg_url, schema), ""


class _Run:
    """One workload run: fresh storage, the producer's Huey, and the consumer when started."""

    def __init__(self, engine: str, settings: Settings, options: list[str]) -> None:
        self.settings = settings
        self.options = options
        self.pg_url = settings.pg_url if engine == "postgres" else None
        self._stack = contextlib.ExitStack()
        self.spec = self._stack.enter_context(_fresh_storage(engine, settings))
        self.huey, self.noop, self.sleep = make_huey(*self.spec)
        self._stack.callback(self.huey.storage.close)
        self.consumer: ChildProcess | None = None

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.consumer is not None:
            self.consumer.stop()
        self._stack.close()

    def start_consumer(self) -> ChildProcess:
        storage, target, fsync = self.spec
        env = child_env(**{ENV_STORAGE: storage, ENV_TARGET: target, ENV_FSYNC: fsync})
        self.consumer = ChildProcess(
            [
                sys.executable, "-m", "huey.bin.huey_consumer", APP, *self.options,
            ],
            env,
        )  # fmt: skip
        return self.consumer

    def completed(self) -> int:
        return int(self.huey.storage.result_store_size())

    def wait(self, n: int, timeout: float) -> None:
        assert self.consumer is not None
        wait_until(self.completed, self.consumer, n, timeout)

    def wait_measured(self, n: int, timeout: float) -> Result:
        assert self.consumer is not None
        return drain_and_measure(self.completed, self.consumer, n, timeout, self.pg_url)

    def stop_consumer(self) -> float | None:
        assert self.consumer is not None
        rss = self.consumer.peak_rss_mb()
        self.consumer.stop()
        self.consumer = None
        return rss

    def returned(self) -> dict[str, tuple[float, float]]:
        """Task id -> (started, finished), from the results in storage."""
        items = self.huey.storage.result_items()
        return {key: self.huey.serializer.deserialize(value) for key, value in items.items()}


# -- the workloads ---------------------------------------------------------------------------
Workload = Callable[[str, Settings, list[str]], Result]


def _put(engine: str, settings: Settings, options: list[str]) -> Result:
    with _Run(engine, settings, options) as run:
        started = time.perf_counter()
        for _ in range(settings.jobs):
            run.noop()
        return {"put": settings.jobs / (time.perf_counter() - started)}


def _put_threads(engine: str, settings: Settings, options: list[str]) -> Result:
    with _Run(engine, settings, options) as run:
        rate = threaded_puts(
            lambda: contextlib.nullcontext(run.noop), settings.jobs, settings.put_threads
        )
        return {"put_threads": rate}


def _drain(
    engine: str, settings: Settings, options: list[str], sleep: bool
) -> tuple[float, Result]:
    n = settings.sleep_jobs if sleep else settings.jobs
    with _Run(engine, settings, options) as run:
        task = run.sleep if sleep else run.noop
        for _ in range(n):
            task()
        run.start_consumer()
        extra = run.wait_measured(n, settings.timeout)
        rss = run.stop_consumer()
        if rss is not None:
            extra["rss_mb"] = rss
        times = list(run.returned().values())
    span = max(end for _, end in times) - min(start for start, _ in times)
    return n / span, extra


def _drain_noop(engine: str, settings: Settings, options: list[str]) -> Result:
    return drain_result(*_drain(engine, settings, options, sleep=False))


def _sleep(engine: str, settings: Settings, options: list[str]) -> Result:
    return {"sleep": _drain(engine, settings, options, sleep=True)[0]}


def _latency(engine: str, settings: Settings, options: list[str]) -> Result:
    with _Run(engine, settings, options) as run:
        run.start_consumer()
        # One warm-up job (not measured): the consumer is up and has imported the task.
        run.noop()
        run.wait(1, 60)
        time.sleep(0.2)
        puts = paced_puts(settings.latency_jobs, run.noop)
        run.wait(settings.latency_jobs + 1, settings.timeout)
        rss = run.stop_consumer()
        returned = run.returned()
    latencies = [(returned[result.id][0] - put_at) * 1000.0 for result, put_at in puts]
    return latency_result(latencies, rss)


def consumer_options(profile: str, settings: Settings) -> list[str]:
    """`huey_consumer` options: none at defaults; tuned, `--agent-size` threads, quiet."""
    if profile == "defaults":
        return []
    return ["-w", str(settings.agent_size), "-k", "thread", "-q"]


def systems(engine: str, settings: Settings) -> list[System]:
    """Huey's systems on `engine`, one per profile; ImportError when Huey (or peewee, on
    PostgreSQL) is missing."""
    from importlib.metadata import version

    import huey  # noqa: F401

    if engine == "postgres":
        import peewee  # noqa: F401

    name = "huey (SqliteHuey)" if engine == "sqlite" else "huey (SqlHuey)"
    described = "huey " + version("huey")
    if engine == "postgres":
        described += ", peewee " + version("peewee")
    out = []
    for profile in PROFILES:
        options = consumer_options(profile, settings)

        def bind(workload: Workload, options: list[str] = options) -> Callable[[Settings], Result]:
            return lambda settings: workload(engine, settings, options)

        out.append(
            System(
                name,
                [
                    ("put", bind(_put)),
                    ("put_threads", bind(_put_threads)),
                    ("drain", bind(_drain_noop)),
                    ("latency", bind(_latency)),
                    ("sleep", bind(_sleep)),
                ],
                not_available={"put_many": "no bulk enqueue (task.map() puts one at a time)"},
                profile=profile,
                version=described,
                settings=(
                    "huey_consumer APP (-w 1 -k thread, INFO, -d 0.1 -b 1.15 -m 10)"
                    if profile == "defaults"
                    else "huey_consumer APP " + " ".join(options)
                ),
                concurrency="1" if profile == "defaults" else str(settings.agent_size),
            )
        )
    return out


def _app_from_env() -> tuple[Any, Any, Any]:
    """For huey_app: the consumer's Huey, from the environment the benchmark sets."""
    return make_huey(os.environ[ENV_STORAGE], os.environ[ENV_TARGET], os.environ[ENV_FSYNC])
