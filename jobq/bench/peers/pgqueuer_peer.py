"""pgqueuer (1.x, PostgreSQL only, asyncio) as a benchmark peer, on its asyncpg driver.

How each workload is measured (jobq's definitions, `jobq.bench.workloads`), each run on a fresh
schema (`pgqueuer install` into it, reached through the connections' search_path):

- put: one `await queries.enqueue("noop", None)` per job. put_many: one `queries.enqueue`
  call with lists (pgqueuer's bulk form: one INSERT ... SELECT FROM UNNEST).
- worker: a process doing what `pgq run <factory>` does, on uvloop: pgqueuer's INFO logger set
  up as the CLI sets it (`setup_fancy_logger`, to the process's output), then
  `pgqueuer.run(factory, ...)`. Defaults profile: pgqueuer's documented defaults, batch 10,
  no cap on concurrent tasks (`max_concurrent_tasks=None`), dequeue timeout 30 s. Tuned:
  `max_concurrent_tasks=8, batch_size=4` (`--agent-size` jobs at a time; pgqueuer requires the
  batch to be at most half that cap) and WARNING. The CLI itself is not used: in pgqueuer
  1.6.0 with typer 0.29 `pgq run` dies at start-up (`AttributeError: 'str' object has no
  attribute 'name'` in its log set-up). Jobs are `async def` entrypoints, the sleep job
  `await asyncio.sleep(0.010)`.
- put from 8 threads: each thread has its own event loop and asyncpg connection (pgqueuer has
  no synchronous producer), and awaits one `enqueue` at a time.
- completion: pgqueuer records every transition in its `pgqueuer_log` table with the database
  time (`created`): 'picked' when a dequeue claims the job, 'successful' when its completion is
  stored (pgqueuer buffers completions: up to 0.1 s or a batch). A job counts as completed only
  at its 'successful' row; drain/sleep rates run from the first 'picked' to the last
  'successful', as jobq's from the first `active_start` to the last `completed_at`.
- latency: the job's 'picked' time minus the time just before `enqueue`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
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
FACTORY = "jobq.bench.peers.pgqueuer_peer:create_pgqueuer"
ENV_DSN, ENV_SCHEMA = "JOBQ_BENCH_PGQ_DSN", "JOBQ_BENCH_PGQ_SCHEMA"


async def _connect(dsn: str, schema: str) -> Any:
    import asyncpg

    return await asyncpg.connect(dsn, server_settings={"search_path": schema})


@contextlib.asynccontextmanager
async def create_pgqueuer() -> AsyncIterator[Any]:
    """The worker's factory for `pgqueuer run` (database and schema from the environment)."""
    from pgqueuer import PgQueuer
    from pgqueuer.db import AsyncpgDriver

    connection = await _connect(os.environ[ENV_DSN], os.environ[ENV_SCHEMA])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Any) -> None:
        pass

    @pgq.entrypoint("sleep10ms")
    async def sleep10ms(job: Any) -> None:
        await asyncio.sleep(SLEEP_SECONDS)

    try:
        yield pgq
    finally:
        await connection.close()


class _Run:
    """One workload run: a fresh schema with pgqueuer installed, an event loop and a producer
    connection, a read-only probe, and the worker when started."""

    def __init__(self, settings: Settings, options: list[str]) -> None:
        import psycopg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        self.settings = settings
        self.options = options
        self._stack = contextlib.ExitStack()
        self.schema = self._stack.enter_context(
            fresh_schema(settings.pg_url, prefix="pgqueuer_bench", create=True)
        )
        self.loop = self._stack.enter_context(asyncio.Runner())
        self.connection = self.loop.run(_connect(settings.pg_url, self.schema))
        self._stack.callback(lambda: self.loop.run(self.connection.close()))
        self.queries = Queries(AsyncpgDriver(self.connection))
        self.loop.run(self.queries.install())
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

    def enqueue(self, entrypoint: str, n: int) -> list[int]:
        return list(self.loop.run(self.queries.enqueue([entrypoint] * n, [None] * n, [0] * n)))

    def start_worker(self) -> ChildProcess:
        env = child_env(**{ENV_DSN: self.settings.pg_url, ENV_SCHEMA: self.schema})
        self.worker = ChildProcess([sys.executable, "-m", __name__, *self.options], env)
        return self.worker

    def _one(self, sql: str) -> Any:
        row = self.probe.execute(sql).fetchone()
        assert row is not None
        return row[0]

    def completed(self) -> int:
        return int(self._one("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"))

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
                "(SELECT max(created) FROM pgqueuer_log WHERE status = 'successful') - "
                "(SELECT min(created) FROM pgqueuer_log WHERE status = 'picked'))"
            )
        )

    def picked_at(self) -> dict[int, float]:
        rows = self.probe.execute(
            "SELECT job_id, EXTRACT(EPOCH FROM created) FROM pgqueuer_log WHERE status = 'picked'"
        ).fetchall()
        return {int(job_id): float(at) for job_id, at in rows}


# -- the workloads ---------------------------------------------------------------------------
Workload = Callable[[Settings, list[str]], Result]


def _put(settings: Settings, options: list[str]) -> Result:
    async def put_all(run: _Run) -> float:
        started = time.perf_counter()
        for _ in range(settings.jobs):
            await run.queries.enqueue("noop", None)
        return time.perf_counter() - started

    with _Run(settings, options) as run:
        return {"put": settings.jobs / run.loop.run(put_all(run))}


@contextlib.contextmanager
def _thread_producer(pg_url: str, schema: str) -> Iterator[Callable[[], Any]]:
    """A putting thread's own event loop and connection, and its one-job enqueue."""
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    with asyncio.Runner() as loop:
        connection = loop.run(_connect(pg_url, schema))
        try:
            queries = Queries(AsyncpgDriver(connection))
            yield lambda: loop.run(queries.enqueue("noop", None))
        finally:
            loop.run(connection.close())


def _put_threads(settings: Settings, options: list[str]) -> Result:
    with _Run(settings, options) as run:
        rate = threaded_puts(
            lambda: _thread_producer(settings.pg_url, run.schema),
            settings.jobs,
            settings.put_threads,
        )
        return {"put_threads": rate}


def _put_many(settings: Settings, options: list[str]) -> Result:
    n = settings.jobs
    with _Run(settings, options) as run:
        started = time.perf_counter()
        run.enqueue("noop", n)
        return {"put_many": n / (time.perf_counter() - started)}


def _drain(settings: Settings, options: list[str], entrypoint: str, n: int) -> tuple[float, Result]:
    with _Run(settings, options) as run:
        run.enqueue(entrypoint, n)
        worker = run.start_worker()
        extra = drain_and_measure(run.completed, worker, n, settings.timeout, settings.pg_url)
        rss = run.stop_worker()
        if rss is not None:
            extra["rss_mb"] = rss
        return n / run.span(), extra


def _drain_noop(settings: Settings, options: list[str]) -> Result:
    return drain_result(*_drain(settings, options, "noop", settings.jobs))


def _sleep(settings: Settings, options: list[str]) -> Result:
    return {"sleep": _drain(settings, options, "sleep10ms", settings.sleep_jobs)[0]}


def _latency(settings: Settings, options: list[str]) -> Result:
    with _Run(settings, options) as run:
        run.start_worker()
        # One warm-up job (not measured): the worker is up and listening.
        run.enqueue("noop", 1)
        run.wait(1, 60)
        time.sleep(0.2)
        puts = paced_puts(
            settings.latency_jobs,
            lambda: run.loop.run(run.queries.enqueue("noop", None))[0],
        )
        run.wait(settings.latency_jobs + 1, settings.timeout)
        rss = run.stop_worker()
        picked = run.picked_at()
    latencies = [(picked[job_id] - put_at) * 1000.0 for job_id, put_at in puts]
    return latency_result(latencies, rss)


def worker_options(profile: str, settings: Settings) -> list[str]:
    """The worker's LOG_LEVEL BATCH_SIZE MAX_CONCURRENT (0: no cap), by profile."""
    if profile == "defaults":
        return ["INFO", "10", "0"]
    agent = settings.agent_size
    return ["WARNING", str(max(1, agent // 2)), str(agent)]


def systems(engine: str, settings: Settings) -> list[System]:
    """pgqueuer's systems (PostgreSQL only), one per profile; ImportError when pgqueuer or
    asyncpg is missing."""
    from importlib.metadata import version

    import asyncpg  # noqa: F401
    import pgqueuer  # noqa: F401

    out = []
    for profile in PROFILES:
        options = worker_options(profile, settings)

        def bind(workload: Workload, options: list[str] = options) -> Callable[[Settings], Result]:
            return lambda settings: workload(settings, options)

        level, batch, cap = options
        out.append(
            System(
                "pgqueuer",
                [
                    ("put", bind(_put)),
                    ("put_threads", bind(_put_threads)),
                    ("put_many", bind(_put_many)),
                    ("drain", bind(_drain_noop)),
                    ("latency", bind(_latency)),
                    ("sleep", bind(_sleep)),
                ],
                profile=profile,
                version=f"pgqueuer {version('pgqueuer')}, asyncpg {version('asyncpg')}",
                settings=(
                    "pgqueuer.run(factory) as `pgq run` (batch 10, no task cap, INFO)"
                    if profile == "defaults"
                    else f"batch_size={batch}, max_concurrent_tasks={cap}, {level}"
                ),
                concurrency="no cap" if cap == "0" else cap,
            )
        )
    return out


def _worker_main(argv: list[str]) -> None:
    """`python -m jobq.bench.peers.pgqueuer_peer LOG_LEVEL BATCH MAX_CONCURRENT`: the
    benchmark's worker (MAX_CONCURRENT 0: no cap)."""
    import pgqueuer
    from pgqueuer.core.logconfig import LogLevel, setup_fancy_logger

    level, batch, max_concurrent = argv[0], int(argv[1]), int(argv[2])
    setup_fancy_logger(LogLevel[level])
    main = pgqueuer.run(FACTORY, max_concurrent_tasks=max_concurrent or None, batch_size=batch)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
