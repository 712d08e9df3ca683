"""The `jobq` command as a real process (`python -m jobq`) on both engines: usage errors,
where `--db` goes, and that each event it reports is said once."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import jobfuncs
from worker_helpers import subprocess_env, wait_until

import jobq

WAIT = 30.0


def jobq_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobq", *args],
        capture_output=True,
        text=True,
        env=env or subprocess_env(),
        timeout=120,
    )


def test_a_bad_log_level_is_a_usage_error(db_url: str) -> None:
    done = jobq_cli("worker", "--db", db_url, "--log-level", "bogus")
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--log-level'" in done.stderr and "Traceback" not in done.stderr
    done = jobq_cli("worker", "--db", db_url, "--log-level", "bogus", "--processes", "2")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_db_goes_before_or_after_the_subcommand(db: jobq.Database, db_url: str) -> None:
    db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
    elsewhere = "sqlite:////nonexistent-folder/jobq.db"
    assert jobq_cli("--db", db_url, "count", "pending").stdout == "1\n"
    assert jobq_cli("count", "pending", "--db", db_url).stdout == "1\n"
    # the subcommand's value wins over the group's; the group's over JOBQ_DB
    assert jobq_cli("--db", elsewhere, "count", "pending", "--db", db_url).stdout == "1\n"
    env = {**subprocess_env(), "JOBQ_DB": elsewhere}
    assert jobq_cli("--db", db_url, "count", "pending", env=env).stdout == "1\n"
    env = {**subprocess_env(), "JOBQ_DB": db_url}
    assert jobq_cli("count", "pending", env=env).stdout == "1\n"


def test_an_operator_action_is_reported_once(db: jobq.Database, db_url: str) -> None:
    job = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
    done = jobq_cli("fail", str(job.id), "--db", db_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"job {job.id} failed: failed by an operator\n"
    assert done.stderr == ""  # not again from the event log's last-resort handler


def test_a_worker_says_each_event_once(db: jobq.Database, db_url: str, tmp_path: Path) -> None:
    ident = str(uuid.uuid4())
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobq", "worker", "--db", db_url, "--uuid", ident],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
        )
    try:
        ok = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
        bad = db.queue().put(jobq.Job(jobfuncs.fail, "boom"))
        assert ok.wait(timeout=WAIT) == 3
        wait_until(lambda: bad.refresh().status == "completed", timeout=WAIT, what="the failure")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    lines = log.read_text().splitlines()
    records = [line for line in lines if " jobq." in line and "[" in line]
    assert len(records) == len(set(r.split(" ", 2)[2] for r in records)), lines  # no repeats
    assert sum(ident in line for line in lines) == 2, lines  # activated, deactivated
    assert sum("failed with RuntimeError: boom" in line for line in lines) == 1, lines
    assert sum("signal 15: stopping" in line for line in lines) == 1, lines


def test_a_deliberate_cancel_is_logged_at_info(db: jobq.Database, db_url: str) -> None:
    code = (
        "import logging, sys, jobq, jobfuncs\n"
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')\n"
        f"db = jobq.connect({db_url!r})\n"
        "job = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))\n"
        "job.cancel()\n"
        "print(job.id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env()
    )
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert f"INFO job {job_id} cancelled" in done.stderr.splitlines(), done.stderr
    assert "ERROR" not in done.stderr
