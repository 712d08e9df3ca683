"""Procrastinate (3.x, PostgreSQL only, asyncio) as a benchmark peer, on its psycopg connector.

How each workload is measured (jobq's definitions, `jobq.bench.workloads`), each run on a fresh
schema (`apply_schema()` into it, reached through the connections' search_path):

- put: one synchronous `task.defer()` per job (one call of `procrastinate_defer_jobs_v1`,
  committed). put_many: one `task.batch_defer(...)` of every job.
- put from 8 threads: the threads share one opened `App`, as a web app's do; its synchronous
  connector hands them connections from its psycopg pool (pool defaults: 4 connections).
- worker: Procrastinate's own command, `procrastinate --app <app> worker`. Defaults profile:
  no other options, so concurrency 1, polling every 5 s besides LISTEN/NOTIFY, jobs kept after they
  finish (`delete_jobs` never), logging at INFO (a line as each job starts and one as it
  ends) to the process's output. Tuned: `procrastinate --app <app> --log-level warning worker
  --concurrency 8` (`--agent-size`). Jobs are `async def` tasks (the library's native
  shape), the sleep job `await asyncio.sleep(0.010)`.
- completion: Procrastinate records each job's transitions in `procrastinate_events` with the
  database time (`at`, the transaction's): 'started' when the worker fetches the job,
  'succeeded' when its end is stored. A job counts as completed when its row's status is
  'succeeded'; drain/sleep rates run from the first 'started' to the last 'succeeded', as
  jobq's from the first `active_start` to the last `completed_at`.
- latency: the job's 'started' time minus the time just before `defer()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

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
    fresh_schema,
    latency_result,
    paced_puts,
    threaded_puts,
    wait_until,
)

ENGINES = ("postgres",)
APP = "jobq.bench.peers.procrastinate_app.app"  # what the worker loads (built from the env)
ENV_DSN, ENV_SCHEMA = "JOBQ_BENCH_PROCRASTINATE_DSN", "JOBQ_BENCH_PROCRASTINATE_SCHEMA"


def make_app(dsn: str, schema: str) -> Any:
    """A Procrastinate App on `schema` of `dsn`, with the benchmark's two tasks."""
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=dsn, kwargs={"options": f"-c search_path={schema}"}
        )
    )

    @app.task(name="noop")
    async def noop() -> None:
        pass

    @app.task(name="sleep10ms")
    async def sleep10ms() -> None:
        await asyncio.sleep(SLEEP_SECONDS)

    return app


def app_from_env() -> Any:
    """For procrastinate_app: the worker's App, from the environment the benchmark sets."""
    return make_app(os.environ[ENV_DSN], os.environ[ENV_SCHEMA])


class _Run:
    """One workload run: a fresh schema with Procrastinate's installed, the producer's opened
    App, a read-only probe, and the worker when started."""

    def __init__(self, settings: Settings, options: list[str]) -> None:
        import psycopg

        self.settings = settings
        self.options = options
        self._stack = contextlib.ExitStack()
        self.schema = self._stack.enter_context(
            fresh_schema(settings.pg_url, prefix="procrastinate_bench", create=True)
        )
        self.app = make_app(settings.pg_url, self.schema)
        self.app.open()
        self._stack.callback(self.app.close)
        self.app.schema_manager.apply_schema()
        self.noop = self.app.tasks["noop"]
        self.sleep = self.app.tasks["sleep10ms"]
        self.probe = psycopg.connect(
            settings.pg_url, autocommit=True, options=f"-c search_path={self.schema}"
        )
        self._stack.callback(self.probe.close)
        self.worker: ChildProcess | None = None

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.worker is not None:
            self.worker.stop()
        self._stack.close()

    def start_worker(self) -> ChildProcess:
        env = child_env(**{ENV_DSN: self.settings.pg_url, ENV_SCHEMA: self.schema})
        self.worker = ChildProcess(
            [sys.executable, "-m", "procrastinate", "--app", APP, *self.options], env
        )
        return self.worker

    def _one(self, sql: str) -> Any:
        row = self.probe.execute(sql).fetchone()
        assert row is not None
        return row[0]

    def completed(self) -> int:
        return int(self._one("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"))

    def wait(self, n: int, timeout: float) -> None:
        assert self.worker is not None
        wait_until(self.completed, self.worker, n, timeout)

    def stop_worker(self) -> float | None:
        assert self.worker is not None
        rss = self.worker.peak_rss_mb()
        self.worker.stop()
        self.worker = None
        return rss

    def span(self) -> float:
        return float(
            self._one(
                "SELECT EXTRACT(EPOCH FROM "
                "(SELECT max(at) FROM procrastinate_events WHERE type = 'succeeded') - "
                "(SELECT min(at) FROM procrastinate_events WHERE type = 'started'))"
            )
        )

    def started_at(self) -> dict[int, float]:
        rows = self.probe.execute(
            "SELECT job_id, EXTRACT(EPOCH FROM at) FROM procrastinate_events WHERE type = 'started'"
        ).fetchall()
        return {int(job_id): float(at) for job_id, at in rows}


# -- the workloads ---------------------------------------------------------------------------
Workload = Callable[[Settings, list[str]], Result]


def _put(settings: Settings, options: list[str]) -> Result:
    with _Run(settings, options) as run:
        started = time.perf_counter()
        for _ in range(settings.jobs):
            run.noop.defer()
        return {"put": settings.jobs / (time.perf_counter() - started)}


def _put_threads(settings: Settings, options: list[str]) -> Result:
    with _Run(settings, options) as run:
        rate = threaded_puts(
            lambda: contextlib.nullcontext(run.noop.defer), settings.jobs, settings.put_threads
        )
        return {"put_threads": rate}


def _put_many(settings: Settings, options: list[str]) -> Result:
    n = settings.jobs
    with _Run(settings, options) as run:
        started = time.perf_counter()
        run.noop.batch_defer(*({} for _ in range(n)))
        return {"put_many": n / (time.perf_counter() - started)}


def _drain(settings: Settings, options: list[str], sleep: bool, n: int) -> tuple[float, Result]:
    with _Run(settings, options) as run:
        task = run.sleep if sleep else run.noop
        task.batch_defer(*({} for _ in range(n)))
        worker = run.start_worker()
        extra = drain_and_measure(run.completed, worker, n, settings.timeout, settings.pg_url)
        rss = run.stop_worker()
        if rss is not None:
            extra["rss_mb"] = rss
        return n / run.span(), extra


def _drain_noop(settings: Settings, options: list[str]) -> Result:
    return drain_result(*_drain(settings, options, False, settings.jobs))


def _sleep(settings: Settings, options: list[str]) -> Result:
    return {"sleep": _drain(settings, options, True, settings.sleep_jobs)[0]}


def _latency(settings: Settings, options: list[str]) -> Result:
    with _Run(settings, options) as run:
        run.start_worker()
        # One warm-up job (not measured): the worker is up and listening.
        run.noop.defer()
        run.wait(1, 60)
        time.sleep(0.2)
        puts = paced_puts(settings.latency_jobs, run.noop.defer)
        run.wait(settings.latency_jobs + 1, settings.timeout)
        rss = run.stop_worker()
        started = run.started_at()
    latencies = [(started[job_id] - put_at) * 1000.0 for job_id, put_at in puts]
    return latency_result(latencies, rss)


def worker_options(profile: str, settings: Settings) -> list[str]:
    """`procrastinate --app APP ...`: `worker` alone at defaults; tuned, `--agent-size` at a
    time, warnings only (`--log-level` is the command's, before `worker`)."""
    if profile == "defaults":
        return ["worker"]
    return ["--log-level", "warning", "worker", "--concurrency", str(settings.agent_size)]


def systems(engine: str, settings: Settings) -> list[System]:
    """Procrastinate's systems (PostgreSQL only), one per profile; ImportError when it is
    missing."""
    from importlib.metadata import version

    import procrastinate  # noqa: F401

    out = []
    for profile in PROFILES:
        options = worker_options(profile, settings)

        def bind(workload: Workload, options: list[str] = options) -> Callable[[Settings], Result]:
            return lambda settings: workload(settings, options)

        out.append(
            System(
                "procrastinate",
                [
                    ("put", bind(_put)),
                    ("put_threads", bind(_put_threads)),
                    ("put_many", bind(_put_many)),
                    ("drain", bind(_drain_noop)),
                    ("latency", bind(_latency)),
                    ("sleep", bind(_sleep)),
                ],
                profile=profile,
                version=f"procrastinate {version('procrastinate')}",
                settings=(
                    "procrastinate worker (concurrency 1, polling 5 s + LISTEN, INFO)"
                    if profile == "defaults"
                    else "procrastinate " + " ".join(options)
                ),
                concurrency="1" if profile == "defaults" else str(settings.agent_size),
            )
        )
    return out
