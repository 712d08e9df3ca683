"""False deaths with real processes: a worker paused (SIGSTOP, the server in reach) or cut
off from PostgreSQL (a partition, the server out of reach) for longer than the death
interval loses its job to a sibling, and when it comes back it must not complete it."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from jobfuncs import insert_when_file_exists
from netproxy import PartitionProxy
from worker_helpers import (
    app_rows,
    create_app_table,
    spawn_worker,
    stop_workers,
    wait_until,
)

import jobq

pytestmark = pytest.mark.fault  # the fault suite: pytest -m fault

# Only PostgreSQL has connections and a network to lose (and SQLite's single-writer lock
# is held by a paused writer: docs/differences.md).
POSTGRES_ONLY = pytest.mark.parametrize("engine", ["postgres"], indirect=True)

WAIT = 30.0


def spawn(db_url: str, log: Path) -> subprocess.Popen[bytes]:
    return spawn_worker(
        db_url, "--poll-interval", "0.1", "--ping-interval", "0.2", "--death-interval", "1.0",
        "--grace", "1", "--log-level", "WARNING", log=log,
    )  # fmt: skip


Action = Callable[[subprocess.Popen[bytes]], None]


def run_false_death(
    db: jobq.Database, db_url: str, tmp_path: Path, victim_url: str, lose: Action, regain: Action
) -> str:
    """The victim runs the job; `lose()` takes it away for longer than the death interval;
    a sibling takes the job over and completes it; `regain()` brings the victim back."""
    create_app_table(db_url)
    flag = tmp_path / "go"
    job = db.queue().put(jobq.Job(insert_when_file_exists, str(flag), "written"))
    victim_log = tmp_path / "victim.log"
    victim = spawn(victim_url, victim_log)
    sibling = None
    try:
        wait_until(lambda: job.refresh().status == "active", timeout=WAIT, what="job active")
        lose(victim)
        sibling = spawn(db_url, tmp_path / "sibling.log")
        wait_until(lambda: job.refresh().attempt == 2, timeout=WAIT, what="job handed on")
        flag.touch()
        assert job.wait(timeout=WAIT) == "written"
        regain(victim)
        wait_until(
            lambda: "was reassigned" in victim_log.read_text(),
            timeout=60,
            what="the victim's fenced attempt to complete",
        )
        wait_until(
            lambda: "not activated prior to ping" in victim_log.read_text(),
            timeout=WAIT,
            what="the victim's reactivation",
        )
    finally:
        stop_workers(victim, sibling)
    job.refresh()
    assert job.attempt == 2 and job.status == "completed" and job.result == "written"
    assert app_rows(db_url) == ["written"]  # the victim's transaction never committed
    return victim_log.read_text()


@POSTGRES_ONLY
def test_a_paused_worker_never_completes_a_job_taken_from_it(
    engine: str, db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    def pause(victim: subprocess.Popen[bytes]) -> None:
        victim.send_signal(signal.SIGSTOP)

    def resume(victim: subprocess.Popen[bytes]) -> None:
        victim.send_signal(signal.SIGCONT)

    run_false_death(db, db_url, tmp_path, db_url, pause, resume)


@POSTGRES_ONLY
def test_a_partitioned_worker_never_completes_a_job_taken_from_it(
    engine: str, db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    proxy = PartitionProxy.to_server_of(db_url)
    try:
        log = run_false_death(
            db,
            db_url,
            tmp_path,
            proxy.url(db_url),
            lambda _: proxy.cut(),
            lambda _: proxy.heal(),
        )
    finally:
        proxy.close()
    assert "was reassigned" in log
