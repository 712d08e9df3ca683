"""`put(..., keep_result=...)` end to end on both engines: a job put by `jobq put
--keep-result` (a CLI process) is run by a real `jobq worker` process, whose retention loop
(`--prune-interval`) prunes it once its time is up; `jobq job ID` (a CLI process) then says
it expired, when and why, and a job put without keep_result is still there (issue 18.6)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_helpers import run_jobq, spawn_worker, stop_workers, wait_until

import jobq

pytestmark = pytest.mark.slow

WAIT = 60.0


@pytest.fixture
def worker_process(db: jobq.Database, db_url: str, tmp_path: Path) -> Iterator[None]:
    """A `jobq worker` process pruning every half second, stopped (SIGTERM) after the test."""
    proc = spawn_worker(db_url, "--prune-interval", "0.5", log=tmp_path / "worker.log")
    try:
        yield
    finally:
        stop_workers(proc)


def _gone(db: jobq.Database, job_id: int) -> bool:
    try:
        db.get_job(job_id)
    except jobq.JobNotFound:
        return True
    return False


def test_a_worker_prunes_an_expired_job_and_jobq_job_says_it_expired(
    db: jobq.Database, db_url: str, worker_process: None
) -> None:
    put = run_jobq("put", "--db", db_url, "--keep-result", "5S", "jobfuncs:add", "1", "2")
    assert put.returncode == 0, put.stderr
    kept_id = int(put.stdout)
    plain = db.queue().put(jobq.Job(pow, 2, 5))
    assert db.get_job(kept_id).wait(timeout=WAIT) == 3 and plain.wait(timeout=WAIT) == 32

    shown = run_jobq("job", "--db", db_url, str(kept_id), "--json")
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["keep_result"] == {"seconds": 5.0}
    assert summary["expires"] is not None

    wait_until(lambda: _gone(db, kept_id), timeout=WAIT, what="the worker pruning the job")
    with pytest.raises(jobq.JobExpired) as info:
        db.get_job(kept_id)
    when = info.value.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    done = run_jobq("job", "--db", db_url, str(kept_id))
    assert done.returncode != 0
    assert f"job {kept_id} expired at {when}" in done.stderr
    assert "put with keep_result=0:00:05" in done.stderr and "retention pruned it" in done.stderr
    assert plain.refresh().status == jobq.Status.COMPLETED  # kept by the 7 days' retention


def test_jobq_put_refuses_a_bad_keep_result_and_stores_nothing(
    db: jobq.Database, db_url: str
) -> None:
    for value, words in (("0S", "at least 1 second"), ("3651D", "at most 3650 days")):
        put = run_jobq("put", "--db", db_url, "--keep-result", value, "jobfuncs:add", "1", "2")
        assert put.returncode == 2 and words in put.stderr, put.stderr
        assert "--keep-result" in put.stderr
    assert db.store.last_job_id() is None
