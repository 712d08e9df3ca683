"""A job whose code a worker cannot import waits for a worker that can (real `jobq worker`
processes): the worker that cannot puts it back (an ERROR naming the module and its
`sys.path`), counting it with the job; after `--import-retries` such put-backs it fails with
that reason. A callback whose parent's result names a module the worker cannot import waits
the same way, and then gets the parent's real result."""

from __future__ import annotations

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
REPORTS = """\
class Report:
    def __init__(self, month):
        self.month = month


def monthly(month):
    return f'report for {month}'


def build(month):
    return Report(month)
"""
HELPERS = "def title(report):\n    return f'titled {report.month}'\n"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Path]:
    """An application folder with `reports.py`, importable from this test process only (the
    workers find it with --path, or not)."""
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "reports.py").write_text(REPORTS)
    common = tmp_path / "common"
    common.mkdir()
    (common / "helpers.py").write_text(HELPERS)
    sys.path[:0] = [str(folder), str(common)]
    yield folder
    sys.path.remove(str(folder))
    sys.path.remove(str(common))
    sys.modules.pop("reports", None)
    sys.modules.pop("helpers", None)


def _start(db_url: str, cwd: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    ident = str(uuid.uuid4())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JOBQ_PATH")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [JOBQ, "worker", "--db", db_url, "--uuid", ident, "--poll-interval", "0.1", *extra],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
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


def _import_errors(db: jobq.Database, job: jobq.Job) -> int:
    record = db.store.get(job.id or 0)
    assert record is not None
    return int(record.retry_data.get("import_errors", 0))


def test_a_job_a_worker_cannot_import_waits_pending_for_a_worker_that_can(
    db: jobq.Database, db_url: str, app: Path, tmp_path: Path
) -> None:
    import reports

    job = db.queue().put(jobq.Job(reports.monthly, "2030-01"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = tmp_path / "without.log"
    proc = _start(db_url, elsewhere, log)
    try:
        wait_until(lambda: _import_errors(db, job) >= 1, timeout=WAIT, what="a put-back")
    finally:
        output = _stop(proc, log)
    assert job.refresh().status == "pending" and not job.failed, output
    errors = [line for line in output.splitlines() if "putting it back" in line]
    assert errors and "ERROR" in errors[0], output
    assert "'reports'" in errors[0] and str(elsewhere) in errors[0]  # the module, sys.path
    log = tmp_path / "with.log"
    proc = _start(db_url, elsewhere, log, "--path", str(app))
    try:
        assert job.wait(timeout=WAIT) == "report for 2030-01", log.read_text()
    finally:
        _stop(proc, log)


def test_a_job_no_worker_can_import_fails_after_the_bound_naming_the_module(
    db: jobq.Database, db_url: str, app: Path, tmp_path: Path
) -> None:
    import reports

    job = db.queue().put(jobq.Job(reports.monthly, "2030-02"))
    after = db.queue().put(jobq.Job(os.getpid))  # importable anywhere
    log = tmp_path / "without.log"
    proc = _start(db_url, tmp_path, log, "--import-retries", "1")
    try:
        with pytest.raises(jobq.JobFailed) as failed:
            job.wait(timeout=WAIT)
        assert after.wait(timeout=WAIT)  # the worker went on
    finally:
        output = _stop(proc, log)
    failure = failed.value.failure
    assert failure.check(ImportError), output
    assert "'reports'" in failure.message and "2 times" in failure.message
    assert _import_errors(db, job) == 2  # one put-back, then the failure


def test_a_callback_waits_for_a_worker_that_can_decode_its_parents_result(
    db: jobq.Database, db_url: str, app: Path, tmp_path: Path
) -> None:
    import helpers
    import reports

    parent = db.queue().put(jobq.Job(reports.build, "2030-03"))
    with db.worker(poll_interval=0.05):  # this process imports reports
        assert parent.wait(timeout=WAIT).month == "2030-03"
    callback = parent.add_callback(helpers.title)
    common = str(tmp_path / "common")
    log = tmp_path / "without.log"
    proc = _start(db_url, tmp_path, log, "--path", common)
    try:
        wait_until(lambda: _import_errors(db, callback) >= 1, timeout=WAIT, what="a put-back")
    finally:
        output = _stop(proc, log)
    assert callback.refresh().status == "pending" and not callback.failed, output
    log = tmp_path / "with.log"
    proc = _start(db_url, tmp_path, log, "--path", common, "--path", str(app))
    try:
        assert callback.wait(timeout=WAIT) == "titled 2030-03", log.read_text()
    finally:
        _stop(proc, log)


def _retry(db_url: str, job_id: int) -> int:
    """`jobq retry ID` (the command, a real process); returns the copy's id."""
    done = subprocess.run(
        [JOBQ, "retry", "--db", db_url, str(job_id)], capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def _retry_all_failed(db_url: str) -> None:
    """`jobq retry --all-failed -y` (a real process)."""
    done = subprocess.run(
        [JOBQ, "retry", "--all-failed", "-y", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0 and done.stdout == "retried 2 job(s)\n", done


@pytest.mark.parametrize("bulk", [False, True], ids=["one-by-one", "all-failed"])
def test_a_retried_callback_gets_the_result_of_its_parents_retry(
    db: jobq.Database, db_url: str, app: Path, tmp_path: Path, bulk: bool
) -> None:
    import helpers
    import reports

    parent = db.queue().put(jobq.Job(reports.build, "2030-04"))
    callback = parent.add_callback(helpers.title)
    common = str(tmp_path / "common")
    log = tmp_path / "without.log"
    proc = _start(db_url, tmp_path, log, "--path", common, "--import-retries", "0")
    try:
        with pytest.raises(jobq.JobFailed):  # the parent's import error, given to the callback
            callback.wait(timeout=WAIT)
    finally:
        _stop(proc, log)
    assert parent.refresh().failed and parent.failure is not None
    assert parent.failure.check(ImportError)
    log = tmp_path / "with.log"
    proc = _start(db_url, tmp_path, log, "--path", common, "--path", str(app))
    try:
        if bulk:
            _retry_all_failed(db_url)
            parent_copy = db.get_job(int(parent.refresh().annotations["retried_as"]))
            callback_copy = db.get_job(int(callback.refresh().annotations["retried_as"]))
        else:
            parent_copy = db.get_job(_retry(db_url, parent.id or 0))
            callback_copy = db.get_job(_retry(db_url, callback.id or 0))
        assert callback_copy.wait(timeout=WAIT) == "titled 2030-04", log.read_text()
        assert parent_copy.wait(timeout=WAIT).month == "2030-04"
    finally:
        _stop(proc, log)
