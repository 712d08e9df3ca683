"""A hung database link shows up as a pool that gives no connection in time (psycopg_pool's
`PoolTimeout`): that is a lost connection, which the default retry policy retries, not an
error that fails the job for good (issue 17.3). PostgreSQL only: SQLite has no pool."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from jobfuncs import GATES, RUNNING, gated_connection
from worker_helpers import wait_until

import jobq
from jobq.worker.agent import AgentSpec

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

WAIT = 30.0


def _take(db: jobq.Database, held: list[Any], count: int) -> None:
    """Hold `count` of the pool's connections (the worker's own loops use it too)."""
    while len(held) < count:
        try:
            held.append(db.store.attempt_connection())
        except jobq.StoreUnavailable:
            continue


def test_a_job_whose_connection_times_out_in_the_pool_is_retried_not_failed(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has no connection pool")
    caplog.set_level(logging.WARNING, logger="jobq.trace")
    token = str(uuid.uuid4())
    with jobq.connect(db_url + "&pool_size=2&pool_timeout=0.5") as db:  # getconn gives up
        pool = db.store.driver.pool  # type: ignore[attr-defined]
        assert pool.timeout == 0.5
        worker = db.worker(poll_interval=0.1, agents=[AgentSpec("main", 1)]).start()
        held: list[Any] = []
        try:
            job = db.queue().put(jobq.Job(gated_connection, token, 42))
            wait_until(lambda: RUNNING.get(token) == 1, WAIT, "the job to start")
            _take(db, held, pool.max_size)
            GATES[token].set()  # the job now asks the exhausted pool for its connection
            wait_until(
                lambda: any("counts of disconnect" in r.getMessage() for r in caplog.records),
                WAIT,
                "the policy to see a lost connection",
            )
            for conn in held:
                conn.close()
            held.clear()
            assert job.wait(timeout=WAIT) == 42
        finally:
            for conn in held:
                conn.close()
            worker.stop(grace=10)
        record = db.store.get(job.id or 0)
        assert record is not None and record.retry_data.get("disconnect") == 1


def test_a_bad_pool_timeout_is_refused_at_connect(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has no connection pool")
    for bad in ("0", "-1", "soon", "inf"):
        with pytest.raises(jobq.ConfigError, match=f"pool_timeout='{bad}'.*positive number"):
            jobq.connect(f"{db_url}&pool_timeout={bad}")
