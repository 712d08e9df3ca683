"""Whatever one job or row holds, that job fails with a clear reason and every worker goes on
(real `jobq worker` processes, both engines): a retry policy that cannot be built, met by the
runner or by a sibling's sweep of a SIGKILLed worker's job, and a row whose JSON columns are
damaged. And a process refused for a live dispatcher's `--uuid` changes nothing."""

from __future__ import annotations

import itertools
import json
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
from jobfuncs import PolicyThatRaises, PolicyWithoutArguments, add, sleep_then
from worker_helpers import execute, subprocess_env, wait_until

import jobq

pytestmark = [pytest.mark.slow, pytest.mark.fault]

WAIT = 30.0
LATER_JOBS = 30


class Worker:
    """A `jobq worker` process on the test database, waited for until it activates (unless
    `refused`: it is then expected to say its UUID is taken)."""

    def __init__(
        self, db_url: str, log: Path, *extra: str, ident: str | None = None, refused: bool = False
    ) -> None:
        self.db_url = db_url
        self.uuid = ident or str(uuid.uuid4())
        self.log = log
        command = [sys.executable, "-m", "jobq", "worker", "--db", db_url, "--uuid", self.uuid]
        command += ["--poll-interval", "0.1", "--ping-interval", "0.5", "--death-interval", "2"]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*command, *extra], stdout=out, stderr=subprocess.STDOUT, env=subprocess_env()
            )
        if refused:
            wait_until(lambda: "already activated" in self.output(), WAIT, "the refusal")
        else:
            wait_until(self._activated, WAIT, "the worker to activate")

    def _activated(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited early:\n{self.output()}")
        rows = execute(
            self.db_url, "SELECT activated, pid FROM jobq_dispatchers WHERE uuid = ?", (self.uuid,)
        )
        return bool(rows) and rows[0][0] is not None and rows[0][1] == self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(WAIT)
        return self.output()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(WAIT)


def _later_jobs_all_run(db: jobq.Database) -> None:
    jobs = db.queue().put_many([jobq.Job(add, i, 1) for i in range(LATER_JOBS)])
    assert [j.wait(timeout=WAIT) for j in jobs] == [i + 1 for i in range(LATER_JOBS)]


@pytest.mark.parametrize("policy", [PolicyWithoutArguments, PolicyThatRaises])
def test_a_policy_that_cannot_be_built_fails_its_job_and_the_worker_goes_on(
    db: jobq.Database, db_url: str, tmp_path: Path, policy: type[jobq.RetryPolicy]
) -> None:
    worker = Worker(db_url, tmp_path / "worker.log")
    try:
        bad = db.queue().put(jobq.Job(add, 1, 1), retry_policy=policy)
        with pytest.raises(jobq.JobFailed) as failed:
            bad.wait(timeout=WAIT)
        _later_jobs_all_run(db)
    finally:
        output = worker.stop()
    message = failed.value.failure.message
    assert policy.__qualname__ in message and "cannot be built" in message, output
    assert "RetryPolicy's __init__ must accept" in message


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("retry_policy", "jobfuncs:PolicyThatRaises", "could not be handed on"),
        ("annotations", "{not json", "annotations"),
    ],
)
def test_a_killed_workers_poison_job_fails_alone_and_its_siblings_go_on(
    db: jobq.Database, db_url: str, tmp_path: Path, column: str, value: str, expected: str
) -> None:
    doomed = Worker(db_url, tmp_path / "doomed.log", "--agent", "main:1")
    job = db.queue().put(jobq.Job(sleep_then, 60))
    wait_until(lambda: job.refresh().status == "active", WAIT, "the job to start")
    doomed.kill()
    execute(db_url, f"UPDATE jobq_jobs SET {column} = ? WHERE id = ?", (value, job.id))
    siblings = [Worker(db_url, tmp_path / f"sibling{i}.log") for i in range(2)]
    try:
        with pytest.raises(jobq.JobFailed) as failed:
            job.wait(timeout=WAIT)
        _later_jobs_all_run(db)
    finally:
        outputs = [s.stop() for s in siblings]
    assert expected in failed.value.failure.message, outputs
    assert not any("unexpected error in sweep" in o for o in outputs), outputs


def test_a_pending_row_with_damaged_json_fails_alone_and_the_worker_goes_on(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    damaged = db.queue().put(jobq.Job(add, 2, 2))
    execute(
        db_url,
        "UPDATE jobq_jobs SET retry_data = ?, annotations = ? WHERE id = ?",
        ("{broken", "[1, 2", damaged.id),
    )
    worker = Worker(db_url, tmp_path / "worker.log")
    try:
        with pytest.raises(jobq.JobFailed) as failed:
            damaged.wait(timeout=WAIT)
        _later_jobs_all_run(db)
    finally:
        output = worker.stop()
    message = failed.value.failure.message
    assert failed.value.failure.check(jobq.EncodingError), output
    assert "retry_data" in message and "annotations" in message
    assert "unexpected error" not in output


def test_a_process_refused_for_a_live_uuid_changes_nothing(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    live = Worker(db_url, tmp_path / "live.log", "--agent", "main:1")
    try:
        refused = Worker(
            db_url, tmp_path / "refused.log", "--agent", "main:3", ident=live.uuid, refused=True
        )
        refused.stop()
        agents = execute(
            db_url,
            "SELECT name, size FROM jobq_agents WHERE dispatcher_uuid = ?",
            (live.uuid,),
        )
        assert agents == [("main", 1)], refused.output()
        (pid,) = execute(db_url, "SELECT pid FROM jobq_dispatchers WHERE uuid = ?", (live.uuid,))
        assert pid[0] == live.proc.pid
        # The live one still runs one job at a time, as its own --agent says.
        jobs = db.queue().put_many([jobq.Job(sleep_then, 0.5, i) for i in range(3)])
        assert [j.wait(timeout=WAIT) for j in jobs] == [0, 1, 2]
        starts = sorted((j.refresh().active_start, j.active_end) for j in jobs)
        for (_, end), (start, _) in itertools.pairwise(starts):
            assert end is not None and start is not None and start >= end
    finally:
        live.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_that_cannot_claim_says_so_and_is_not_shown_healthy(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    worker = Worker(db_url, tmp_path / "worker.log", "--monitor-port", str(port))

    def status() -> dict[str, object]:
        url = f"http://127.0.0.1:{port}/status"
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.loads(response.read())["status"])

    try:
        wait_until(lambda: status()["status"] == "RUNNING", WAIT, "a healthy worker")
        cascade = "" if db_url.startswith("sqlite") else " CASCADE"
        execute(db_url, f"DROP TABLE jobq_quotas{cascade}")  # every claim now fails
        failing = wait_until(
            lambda: (s := status())["status"] == "FAILING" and s, WAIT, "a FAILING status"
        )
    finally:
        output = worker.stop()
    assert "jobq_quotas" in str(failing["failing"]), failing
    assert "unexpected error in poll" in output and "jobq_quotas" in output


def test_a_damaged_quota_names_column_breaks_no_claim_of_its_queue(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    queue = db.queue()
    queue.quotas.create("exports", size=1)
    damaged = queue.put(jobq.Job(add, 2, 2), quota_names=["exports"])
    execute(db_url, "UPDATE jobq_jobs SET quota_names = ? WHERE id = ?", ('["exports"', damaged.id))
    worker = Worker(db_url, tmp_path / "worker.log")
    try:
        with pytest.raises(jobq.JobFailed) as failed:
            damaged.wait(timeout=WAIT)
        jobs = queue.put_many([jobq.Job(add, i, 1) for i in range(5)], quota_names=["exports"])
        assert [j.wait(timeout=WAIT) for j in jobs] == [1, 2, 3, 4, 5]
    finally:
        output = worker.stop()
    assert "quota_names" in failed.value.failure.message, output
    assert "unexpected error" not in output
