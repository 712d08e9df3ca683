"""The `jobq` monitor commands, and a worker's own statistics and monitor port."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import jobfuncs
from click.testing import CliRunner
from worker_helpers import wait_until

import jobq
from jobq.cli import main
from jobq.monitor.worker_server import WorkerMonitorServer

from .conftest import UUID, Driver


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_monitor_commands(db_url: str, clock_db: jobq.Database, driver: Driver) -> None:
    driver.dispatcher()
    queue = clock_db.queue()
    pending = [queue.put(jobq.Job(jobfuncs.add, i, 1)) for i in range(3)]
    failed = queue.put(jobq.Job(jobfuncs.fail))
    driver.run(failed, 1, 1, error=RuntimeError("boom"))
    db = ["--db", db_url]
    assert run("count", "pending", *db) == (0, "3\n")
    assert run("count", "failed", "callable:fail", *db) == (0, "1\n")
    code, out = run("jobs", "pending", "--json", *db)
    assert code == 0 and json.loads(out) == [j.id for j in pending]
    code, out = run("jobs", "pending", "display:repr", "count:1", "--json", *db)
    assert json.loads(out) == ["jobfuncs.add(0, 1)"]
    code, out = run("jobs", "pending", "failed", *db)
    assert code == 0 and "jobfuncs.add(2, 1)" in out and "failed" in out
    code, out = run("count", "succeeded", "failed", *db)
    assert code == 2 and 'zero or one of "completed"' in out
    code, out = run("jobs", "pending", "start:2M", *db)
    assert code == 2 and "must start with 'since' or 'before'" in out
    code, out = run("job", str(failed.id), "--json", *db)
    assert json.loads(out)["failed"] is True and json.loads(out)["queue"] == ""
    code, out = run("traceback", str(failed.id), "--detail", "brief", *db)
    assert code == 0 and out.strip().splitlines()[-1] == "RuntimeError: boom"
    code, out = run("jobstats", "pending", "failed", "--json", *db)
    assert json.loads(out)["pending"] == 3 and json.loads(out)["failed"] == 1
    code, out = run("nextpending", "--json", *db)
    assert json.loads(out)["id"] == pending[0].id
    code, out = run("lastcompleted", "--json", *db)
    assert json.loads(out)["id"] == failed.id
    code, out = run("status", "--json", *db)
    assert json.loads(out)[""]["len"] == 3 and UUID in json.loads(out)[""]["dispatchers"]
    code, out = run("status", *db)
    assert code == 0 and "queues" in out and UUID in out
    code, out = run("dispatchers", "--json", *db)
    assert [d["uuid"] for d in json.loads(out)] == [UUID]
    assert run("job", "999999", *db)[0] == 2
    # actions
    assert run("pull", str(pending[0].id), *db) == (
        0,
        f"job {pending[0].id} pulled from its queue (now new)\n",
    )
    code, out = run("retry", str(failed.id), *db)
    assert code == 0 and "retried as job" in out
    assert run("fail", str(pending[1].id), *db)[0] == 0
    assert run("pause", "", *db)[0] == 0 and clock_db.store.paused_queues() == {""}
    assert run("resume", "", *db)[0] == 0 and clock_db.store.paused_queues() == set()
    assert run("agent-size", "", "main", "5", *db)[0] == 0
    assert clock_db.store.agents(UUID)[0].size == 5
    assert run("prune", "--older-than", "0S", *db)[0] == 0


def test_worker_statistics_and_monitor_port(db: jobq.Database) -> None:
    queue = db.queue()
    with db.worker(poll_interval=0.05) as worker:
        ok = queue.put(jobq.Job(jobfuncs.add, 1, 2))
        bad = queue.put(jobq.Job(jobfuncs.fail, "nope"))
        assert ok.wait(timeout=20) == 3
        wait_until(lambda: bad.refresh().status == "completed", what="failed job")
        wait_until(lambda: worker.stats.totals()["failed"] == 1, what="stats")
        stats = worker.stats
        assert stats.status_info()["status"] == "RUNNING"
        assert stats.job_info(ok.id).result == "3" and stats.job_info(ok.id).failed is False
        assert stats.job_info(bad.id).failed is True
        statistics = stats.statistics()
        assert statistics["successful"] == 1 and statistics["failed"] == 1
        assert statistics["longest successful"] == ok.id
        assert stats.polls(1)[0].results[""]["main"]["size"] == 3
        server = WorkerMonitorServer(worker, 0).start()
        try:
            url = f"http://127.0.0.1:{server.port}"
            with urllib.request.urlopen(url + "/status", timeout=5) as response:
                data = json.loads(response.read())
            assert data["status"]["status"] == "RUNNING"
            assert {j["id"] for j in data["jobs"]} == {ok.id, bad.id}
            with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
                text = response.read().decode()
            assert f'jobq_worker_succeeded_total{{uuid="{worker.uuid}"}} 1' in text
            code, out = run("worker-status", url, "--json")
            assert code == 0 and json.loads(out)["totals"]["failed"] == 1
            code, out = run("worker-status", url)
            assert code == 0 and "RUNNING" in out and "jobfuncs.add(1, 2)" in out
        finally:
            server.close()
    assert worker.stats.status_info()["status"] == "STOPPED"


def test_requeue_hands_on_the_jobs_of_a_stuck_dispatcher(db_url: str, db: jobq.Database) -> None:
    queue = db.queue()
    stuck = "11111111-2222-3333-4444-555555555555"
    claimed, running = queue.put(jobfuncs.add_one_one), queue.put(jobfuncs.add_one_one)
    now = db.clock.now()
    db.store.activate_dispatcher(stuck, "elsewhere", 1, 5.0, 30.0, now)
    assert len(db.store.claim("", stuck, "main", 2, now)) == 2
    record = db.store.get(running.id)  # type: ignore[arg-type]
    assert record is not None and db.store.start(record.id, record.attempt, stuck, now)

    code, output = run("requeue", "--db", db_url, stuck)
    assert code != 0 and "looks alive" in output  # it still pings: refused
    assert claimed.refresh().status == "assigned"

    code, output = run("requeue", "--db", db_url, stuck, "--force")
    assert code == 0, output
    assert "2 job(s) handed on" in output
    assert claimed.refresh().status == "pending" and running.refresh().status == "pending"
    assert running.retry_data["interruptions"] == 1
    dispatcher = db.store.get_dispatcher(stuck)
    assert dispatcher is not None and dispatcher.activated is None

    code, output = run("requeue", "--db", db_url, "no-such-dispatcher")
    assert code != 0 and "no dispatcher" in output


def test_a_worker_loads_no_table_or_http_library_it_does_not_use() -> None:
    """`jobq worker` prints no tables and serves HTTP only with --monitor-port: rich and
    http.server (about 3 MiB of every worker process) load when a command needs them."""
    code = (
        "import sys, jobq.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich' or m == 'http.server'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
