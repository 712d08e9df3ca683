"""A hung database link, with a real worker process (issue 17.3): the worker's connections
are cut and every new one hangs, so a job asking for its connection finds the pool with none
to give within `pool_timeout`. That is a lost connection, retried by the job's policy until
the link comes back, never a failure for good."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from jobfuncs import insert_when_file_exists
from netproxy import PartitionProxy
from worker_helpers import app_rows, create_app_table, spawn_worker, stop_workers, wait_until

import jobq

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

POSTGRES_ONLY = pytest.mark.parametrize("engine", ["postgres"], indirect=True)

WAIT = 30.0


@POSTGRES_ONLY
def test_a_job_whose_pool_gives_no_connection_in_time_is_retried_and_completes(
    engine: str, db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    create_app_table(db_url)
    flag = tmp_path / "go"
    job = db.queue().put(jobq.Job(insert_when_file_exists, str(flag), "written"))
    proxy = PartitionProxy.to_server_of(db_url)
    log = tmp_path / "worker.log"
    worker = spawn_worker(
        proxy.url(db_url) + "&pool_timeout=1",
        "--agent", "main:1", "--poll-interval", "0.1", "--ping-interval", "0.5",
        "--death-interval", "60", "--log-level", "WARNING",
        log=log,
    )  # fmt: skip
    try:
        wait_until(lambda: job.refresh().status == jobq.Status.ACTIVE, WAIT, "the job to start")
        proxy.hang_new()
        proxy.sever()
        # The worker's loops, polling every 0.1 s, find their pooled connections gone and
        # the pool's new ones hang: once they have, the pool has none idle to give.
        time.sleep(1.5)
        flag.touch()  # the job now asks for its connection
        try:
            wait_until(
                lambda: "counts of disconnect" in log.read_text(),
                WAIT,
                "the job's policy to see a lost connection",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}; worker log:\n{log.read_text()}") from None
        assert job.refresh().status == jobq.Status.ACTIVE  # retried in its claim, not failed
        proxy.stop_hanging()
        assert job.wait(timeout=60) == "written", log.read_text()
    finally:
        stop_workers(worker)
        proxy.close()
    record = db.store.get(job.id or 0)
    assert record is not None and record.retry_data.get("disconnect", 0) >= 1
    last = str(record.retry_data.get("last_disconnect"))
    assert "couldn't get a connection after 1.00 sec" in last, last
    assert "is not retrying" not in log.read_text()
    assert app_rows(db_url) == ["written"]
