"""A failed job's frame locals stay secret (issue 15.2), through real processes on both
engines: by default a `jobq worker` records no locals, so a job's `secret_token = 'hunter2'`
is in no log line, no stored row and no dashboard page; with `--traceback-locals` the locals
are recorded, the secret ones (by name) redacted."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from dashboard_process import Served, dashboard_env, free_port, get
from jobfuncs import fail_holding_a_secret
from worker_helpers import execute, subprocess_env, wait_until

import jobq

pytestmark = pytest.mark.slow

SECRET = "hunter2"
WAIT = 30.0


def _run_worker_until_failed(db: jobq.Database, db_url: str, log: Path, *extra: str) -> jobq.Job:
    """Put a failing job, run a `jobq worker` process until the job has failed, stop it."""
    job = db.queue().put(jobq.Job(fail_holding_a_secret, log.stem))
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "jobq", "worker", "--db", db_url),
                *("--uuid", str(uuid.uuid4()), "--poll-interval", "0.1", *extra),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
        )
    try:
        wait_until(lambda: job.refresh().status == "completed", timeout=WAIT, what="the failure")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(WAIT)
    assert job.failed
    return job


def _every_stored_value(db_url: str) -> str:
    """Every column of every row of every table jobq keeps, as one text."""
    if db_url.startswith("sqlite"):
        tables = execute(db_url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        tables = execute(
            db_url,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()",
        )
    assert any(name == "jobq_jobs" for (name,) in tables)
    return "\n".join(
        repr(row) for (name,) in tables for row in execute(db_url, f'SELECT * FROM "{name}"')
    )


def _dashboard_pages(db_url: str, job: jobq.Job) -> str:
    port = free_port()
    served = Served(["--db", db_url, "--port", str(port)], dashboard_env(), port)
    try:
        pages = [
            get(port, f"/jobs/{job.id}?detail={detail}")
            for detail in ("brief", "default", "verbose")
        ]
        pages.append(get(port, f"/api/jobs/{job.id}"))
    finally:
        served.stop()
    assert all(status == 200 for status, _, _ in pages)
    return "\n".join(body for _, _, body in pages)


def test_by_default_no_frame_locals_are_logged_stored_or_shown(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    job = _run_worker_until_failed(db, db_url, tmp_path / "default.log")
    log = (tmp_path / "default.log").read_text(errors="replace")
    assert "RuntimeError: default failed" in log and "Traceback" in log  # the failure is there
    assert SECRET not in log
    assert "Locals:" not in log and "order_number" not in log
    stored = _every_stored_value(db_url)
    assert "default failed" in stored
    assert SECRET not in stored
    pages = _dashboard_pages(db_url, job)
    assert "default failed" in pages and "--traceback-locals" in pages  # says how to get them
    assert SECRET not in pages


def test_recorded_locals_redact_the_secret_ones(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    job = _run_worker_until_failed(db, db_url, tmp_path / "locals.log", "--traceback-locals")
    log = (tmp_path / "locals.log").read_text(errors="replace")
    assert "order_number = 4711" in log
    assert "secret_token = <redacted>" in log
    assert SECRET not in log
    stored = _every_stored_value(db_url)
    assert "order_number = 4711" in stored and SECRET not in stored
    pages = _dashboard_pages(db_url, job)
    assert "order_number = 4711" in pages and SECRET not in pages


def test_a_bad_redaction_pattern_is_refused_at_start(db_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jobq", "worker", "--db", db_url, "--redact-locals", "(unclosed"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=WAIT,
    )
    assert done.returncode == 2
    assert "not a regular expression" in done.stderr and "Traceback" not in done.stderr
