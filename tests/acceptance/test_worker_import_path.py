"""`jobq worker` (the console script, a real process) imports job code as `python -c` would
from the folder it starts in, plus `--path DIR` / `JOBQ_PATH`, and says at start which pending
jobs name a module it cannot import."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_helpers import execute, wait_until

import jobq

pytestmark = pytest.mark.slow

WAIT = 30.0
JOBQ = str(Path(sys.executable).with_name("jobq"))
REPORTS = "def monthly(month):\n    return f'report for {month}'\n"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Path]:
    """An application folder with `reports.py`, importable from this test process only while
    the test puts its jobs (the worker must find it by itself)."""
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "reports.py").write_text(REPORTS)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("reports", None)


def _env(**extra: str) -> dict[str, str]:
    """This environment without the test folders on PYTHONPATH, and no JOBQ_PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JOBQ_PATH")}
    return {**env, **extra}


def _start(db_url: str, cwd: Path, log: Path, *extra: str, **env: str) -> subprocess.Popen[bytes]:
    ident = str(uuid.uuid4())
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [JOBQ, "worker", "--db", db_url, "--uuid", ident, "--poll-interval", "0.1", *extra],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(**env),
        )

    def activated() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early:\n{log.read_text()}")
        try:
            rows = execute(
                db_url, "SELECT activated FROM jobq_dispatchers WHERE uuid = ?", (ident,)
            )
        except Exception:
            return False
        return bool(rows) and rows[0][0] is not None

    wait_until(activated, timeout=WAIT, what="the worker to activate")
    return proc


def _stop(proc: subprocess.Popen[bytes], log: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(WAIT) == 0, log.read_text()
    return log.read_text()


def _put_report(db: jobq.Database) -> jobq.Job:
    import reports

    return db.queue().put(jobq.Job(reports.monthly, "2030-01"))


def test_worker_imports_job_code_from_the_folder_it_starts_in(
    db: jobq.Database, db_url: str, app: Path, tmp_path: Path
) -> None:
    job = _put_report(db)
    log = tmp_path / "worker.log"
    proc = _start(db_url, app, log)
    try:
        assert job.wait(timeout=WAIT) == "report for 2030-01", log.read_text()
    finally:
        output = _stop(proc, log)
    assert "cannot import" not in output


def test_worker_imports_job_code_from_path_options_and_jobq_path(
    db: jobq.Database, db_url: str, app: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = _put_report(db)
    log = tmp_path / "worker.log"
    proc = _start(db_url, elsewhere, log, "--path", str(app))
    try:
        assert first.wait(timeout=WAIT) == "report for 2030-01", log.read_text()
    finally:
        _stop(proc, log)
    second = _put_report(db)
    log = tmp_path / "worker-env.log"
    proc = _start(db_url, elsewhere, log, JOBQ_PATH=os.pathsep.join([str(tmp_path), str(app)]))
    try:
        assert second.wait(timeout=WAIT) == "report for 2030-01", log.read_text()
    finally:
        _stop(proc, log)


def test_supervised_worker_processes_import_from_the_same_folders(
    db: jobq.Database, db_url: str, app: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    jobs = [_put_report(db) for _ in range(4)]
    log = tmp_path / "supervisor.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [JOBQ, "worker", "--db", db_url, "--processes", "2", "--path", str(app)],
            cwd=elsewhere,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        assert [j.wait(timeout=WAIT) for j in jobs] == ["report for 2030-01"] * 4, log.read_text()

        def both_activated() -> bool:  # a child stopped while still starting exits -15
            try:
                rows = execute(
                    db_url, "SELECT uuid FROM jobq_dispatchers WHERE activated IS NOT NULL"
                )
            except Exception:
                return False
            return len(rows) == 2

        wait_until(both_activated, timeout=WAIT, what="both worker processes to activate")
    finally:
        _stop(proc, log)


def test_worker_warns_at_start_of_pending_jobs_it_cannot_import(
    db: jobq.Database, db_url: str, app: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    later = db.clock.now() + dt.timedelta(hours=1)  # pending, not yet due: nothing runs
    import reports

    jobs = [db.queue().put(jobq.Job(reports.monthly, m), begin_after=later) for m in "ab"]
    log = tmp_path / "worker.log"
    proc = _start(db_url, elsewhere, log)
    output = _stop(proc, log)
    warnings = [line for line in output.splitlines() if "cannot import" in line]
    assert len(warnings) == 1, output
    assert "WARNING" in warnings[0] and "'reports'" in warnings[0]
    assert f"{jobs[0].id}, {jobs[1].id}" in warnings[0]
    assert str(elsewhere) in warnings[0]  # this worker's sys.path
