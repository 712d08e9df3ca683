"""Priorities end to end on both engines (issue 18.3): jobs put with `jobq put --priority`
(a real CLI process) and the API, shown by `jobq job`, `jobq jobs` and the dashboard, then
drained by a real `jobq worker` process with one thread, which starts them highest priority
first, then oldest first; a high-priority job scheduled for later waits."""

from __future__ import annotations

import json
from pathlib import Path

import jobfuncs
import pytest
from starlette.testclient import TestClient
from worker_helpers import jobq_output, run_jobq, spawn_worker, stop_workers, wait_until

import jobq
from jobq.web import create_app

pytestmark = pytest.mark.slow

WAIT = 60.0
PRIORITIES = [0, 5, -3, 5, 10, 0, -3, 10, 2, 0, 5, -10]


def test_a_worker_of_one_thread_starts_a_mixed_backlog_in_priority_order(
    db: jobq.Database, db_url: str, tmp_path: Path
) -> None:
    queue = db.queue()
    ids = {
        queue.put(jobq.Job(jobfuncs.add, i, 0), priority=p).id: p for i, p in enumerate(PRIORITIES)
    }
    for _ in range(2):
        ids[
            int(jobq_output("put", "jobfuncs:add", "1", "2", "--priority", "7", "--db", db_url))
        ] = 7
    later = int(
        jobq_output(
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
    refused = run_jobq("put", "jobfuncs:add", "1", "2", "--priority", "11", "--db", db_url)
    assert refused.returncode == 2 and "--priority" in refused.stderr, refused.stderr
    assert "-10<=x<=10" in refused.stderr and "Traceback" not in refused.stderr
    assert len(queue) == len(PRIORITIES) + 3  # nothing stored by the refused put

    seven = max(i for i, p in ids.items() if p == 7)
    shown = json.loads(jobq_output("job", str(seven), "--json", "--db", db_url))
    assert shown["priority"] == 7
    listed = json.loads(
        jobq_output("jobs", "pending", "--priority", "7..", "--json", "--db", db_url)
    )
    tens = [i for i, p in ids.items() if p == 10]
    sevens = [i for i, p in ids.items() if p == 7]
    assert listed == [*tens, later, *sevens]  # queue order: by priority, then by time
    assert "priority" in jobq_output("jobs", "pending", "--db", db_url)
    with TestClient(create_app(db)) as client:
        assert client.get(f"/api/jobs/{seven}").json()["priority"] == 7
        page = client.get("/jobs", params={"q": "pending priority:10"}).text
        assert "<th>priority</th>" in page and f"/jobs/{later}" in page

    log = tmp_path / "worker.log"
    proc = spawn_worker(db_url, "--agent", "main:1", log=log)
    try:
        wait_until(lambda: len(queue) == 1, timeout=WAIT, what="the due backlog to drain")
        for job_id in ids:
            db.get_job(job_id).wait(timeout=WAIT)
    finally:
        stop_workers(proc)
    jobs = sorted((db.get_job(i) for i in ids), key=lambda j: j.active_start)  # type: ignore[arg-type, return-value]
    started = [(j.priority, j.id) for j in jobs]
    assert started == sorted(started, key=lambda s: (-s[0], s[1])), log.read_text()
    assert db.get_job(later).status == jobq.Status.PENDING
