"""Priorities end to end on both engines (issue 18.3): jobs put with `jobq put --priority`
(a real CLI process) and the API, shown by `jobq job`, `jobq jobs` and the dashboard, then
drained by a real `jobq worker` process with one thread, which starts them highest priority
first, then oldest first; a high-priority job scheduled for later waits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import jobfuncs
import pytest
from starlette.testclient import TestClient
from worker_helpers import subprocess_env, wait_until

import jobq
from jobq.web import create_app

pytestmark = pytest.mark.slow

WAIT = 60.0
PRIORITIES = [0, 5, -3, 5, 10, 0, -3, 10, 2, 0, 5, -10]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobq", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )


def jobq_cli(*args: str) -> str:
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_worker_of_one_thread_starts_a_mixed_backlog_in_priority_order(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    queue = db.queue()
    ids = {
        queue.put(jobq.Job(jobfuncs.add, i, 0), priority=p).id: p for i, p in enumerate(PRIORITIES)
    }
    for _ in range(2):
        ids[int(jobq_cli("put", "jobfuncs:add", "1", "2", "--priority", "7", "--db", db_url))] = 7
    later = int(
        jobq_cli(
            "put",
            "jobfuncs:add",
            "3",
            "4",
            "--priority",
            "10",
            "--begin-after",
            "+1h",
            "--db",
            db_url,
        )
    )
    refused = run_cli("put", "jobfuncs:add", "1", "2", "--priority", "11", "--db", db_url)
    assert refused.returncode == 2 and "--priority" in refused.stderr, refused.stderr
    assert "-10<=x<=10" in refused.stderr and "Traceback" not in refused.stderr
    assert len(queue) == len(PRIORITIES) + 3  # nothing stored by the refused put

    seven = max(i for i, p in ids.items() if p == 7)
    shown = json.loads(jobq_cli("job", str(seven), "--json", "--db", db_url))
    assert shown["priority"] == 7
    listed = json.loads(jobq_cli("jobs", "pending", "--priority", "7..", "--json", "--db", db_url))
    tens = [i for i, p in ids.items() if p == 10]
    sevens = [i for i, p in ids.items() if p == 7]
    assert listed == [*tens, later, *sevens]  # queue order: by priority, then by time
    assert "priority" in jobq_cli("jobs", "pending", "--db", db_url)
    with TestClient(create_app(db)) as client:
        assert client.get(f"/api/jobs/{seven}").json()["priority"] == 7
        page = client.get("/jobs", params={"q": "pending priority:10"}).text
        assert "<th>priority</th>" in page and f"/jobs/{later}" in page

    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobq",
                "worker",
                "--db",
                db_url,
                "--agent",
                "main:1",
                "--uuid",
                str(uuid.uuid4()),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
        )
    try:
        wait_until(lambda: len(queue) == 1, timeout=WAIT, what="the due backlog to drain")
        for job_id in ids:
            db.get_job(job_id).wait(timeout=WAIT)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    jobs = sorted((db.get_job(i) for i in ids), key=lambda j: j.active_start)  # type: ignore[arg-type, return-value]
    started = [(j.priority, j.id) for j in jobs]
    assert started == sorted(started, key=lambda s: (-s[0], s[1])), log.read_text()
    assert db.get_job(later).status == jobq.Status.PENDING
