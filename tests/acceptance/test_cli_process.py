"""The `jobq` command as a real process (`python -m jobq`) on both engines: usage errors,
where `--db` goes, and that each event it reports is said once."""

from __future__ import annotations

import datetime as dt
import json
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


def test_cancel_does_what_job_cancel_does_and_pull_pulls(db: jobq.Database, db_url: str) -> None:
    queue = db.queue()
    job = queue.put(jobq.Job(jobfuncs.add, 1, 2))
    callback = job.add_callback(jobq.Job(jobfuncs.failure_type))
    done = jobq_cli("cancel", str(job.id), "--db", db_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"job {job.id} cancelled (completed with CancelledError)\n"
    job.refresh()
    assert job.status == "callbacks" and job.failed  # completed once its callback ran
    assert job.failure.type_name == "jobq.errors.CancelledError"
    assert callback.refresh().status == "pending"  # its callback gets the failure
    again = jobq_cli("cancel", str(job.id), "--db", db_url)
    assert again.returncode == 1 and "can only cancel a job that has not started" in again.stderr
    assert "jobq pull" in jobq_cli("cancel", "--help").stdout  # the old meaning's new name
    other = queue.put(jobq.Job(jobfuncs.add, 2, 2))
    pulled = jobq_cli("pull", str(other.id), "--db", db_url)
    assert pulled.stdout == f"job {other.id} pulled from its queue (now new)\n"
    assert other.refresh().status == "new"
    bad = jobq_cli("cancel", "nope", "--db", db_url)
    assert bad.returncode == 2 and "JOB_ID must be a job id" in bad.stderr


def test_bulk_cancel_and_retry_with_filters(db: jobq.Database, db_url: str) -> None:
    reports = [db.queue("reports").put(jobq.Job(jobfuncs.add, i, 0)) for i in range(3)]
    other = db.queue("other").put(jobq.Job(jobfuncs.add, 9, 9))
    args = ("cancel", "--all-pending", "queue:rep*", "--db", db_url)
    dry = jobq_cli(*args, "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("would cancel 3 job(s)")
    assert {j.refresh().status for j in reports} == {"pending"}  # nothing changed
    refused = jobq_cli(*args)  # no --yes, no terminal: the prompt aborts
    assert refused.returncode == 1 and {j.refresh().status for j in reports} == {"pending"}
    done = jobq_cli(*args, "--yes")
    assert done.returncode == 0 and done.stdout == "cancelled 3 job(s)\n", done.stderr
    assert {j.refresh().status for j in reports} == {"completed"}
    assert other.refresh().status == "pending"
    bad = jobq_cli("cancel", "--all-pending", "failed", "--db", db_url)
    assert bad.returncode == 2 and "filters only" in bad.stderr

    failures = [db.queue("reports").put(jobq.Job(jobfuncs.fail, str(i))) for i in range(2)]
    for job in failures:
        job.fail(RuntimeError("boom"))
    args = ("retry", "--all-failed", "queue:reports", "--db", db_url)
    dry = jobq_cli(*args, "--dry-run", "--json")
    assert json.loads(dry.stdout)["selected"] == sorted(
        (j.id for j in failures), reverse=True
    )  # the cancelled ones are skipped
    done = jobq_cli(*args, "-y", "--json")
    result = json.loads(done.stdout)
    assert sorted(result["done"]) == sorted(j.id for j in failures) and len(result["new"]) == 2
    assert sorted(result["skipped"]) == sorted(j.id for j in reports)
    again = jobq_cli(*args, "-y")
    assert again.stdout == "no job to retry\n"  # each failure is retried once
    assert jobq_cli("count", "pending", "queue:reports", "--db", db_url).stdout == "2\n"


def _keys(value: object) -> set[str]:
    """Every mapping key in a JSON value, but not those of mappings keyed by names."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_human_listings_show_the_default_queue_a_schedule_and_errors(
    db: jobq.Database, db_url: str
) -> None:
    later = db.queue().put(
        jobq.Job(jobfuncs.add, 1, 1), begin_after=db.clock.now() + dt.timedelta(minutes=5)
    )
    failed = db.queue().put(jobq.Job(jobfuncs.add, 2, 2))
    failed.fail(RuntimeError("disk full on /var " + "x" * 100))
    out = jobq_cli("jobs", "pending", "failed", "--db", db_url).stdout
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert "(default)" in rows[str(later.id)] and "''" not in out
    assert "in 4m" in rows[str(later.id)] and "-4m" not in out  # not a negative wait
    assert "error" in out.splitlines()[1]
    assert "RuntimeError: disk full on /var xxx" in rows[str(failed.id)]
    assert "x" * 100 not in out  # truncated
    summary = jobq_cli("job", str(later.id), "--db", db_url).stdout
    assert "(default)" in summary and "in 4m" in summary
    assert "(default)" in jobq_cli("status", "--db", db_url).stdout
    assert (
        json.loads(jobq_cli("job", str(later.id), "--json", "--db", db_url).stdout)["queue"] == ""
    )
    helped = jobq_cli("jobs", "--help").stdout
    assert "ids (default)" not in helped and "A table (default" in helped


def test_json_keys_have_no_spaces(db: jobq.Database, db_url: str) -> None:
    ident = str(uuid.uuid4())
    now = db.clock.now()
    db.store.activate_dispatcher(ident, "host", 1, 5.0, 30.0, now)
    db.store.set_agent(ident, "", "main", 2, None)
    db.queue().quotas.create("db", 1)
    parent = db.queue().put(jobq.Job(jobfuncs.add, 1, 1))
    parent.add_callback(jobq.Job(jobfuncs.zero))
    failed = db.queue().put(jobq.Job(jobfuncs.add, 2, 2))
    failed.fail(RuntimeError("boom"))
    seen: set[str] = set()
    for args in (
        ("status",),
        ("dispatchers",),
        ("jobs", "pending", "display:details"),
        ("jobstats", "pending", "completed"),
        ("job", str(parent.id), "--tree"),
        ("job", str(failed.id)),
        ("nextpending",),
        ("lastcompleted",),
        ("quotas",),
    ):
        done = jobq_cli(*args, "--json", "--db", db_url)
        assert done.returncode == 0, (args, done.stderr)
        value = json.loads(done.stdout)
        if args[0] == "status":
            value = value[""]["dispatchers"]  # keyed by queue name, then uuid
        keys = _keys(value)
        assert not [k for k in keys if " " in k and k != ident], (args, keys)
        seen |= keys
    assert {"last_ping", "since_ping", "waiting_on", "begin_after", "longest_wait"} <= seen


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_worker_status_is_readable(db: jobq.Database, db_url: str, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobq", "worker", "--db", db_url, "--monitor-port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=subprocess_env(),
        )
    try:
        job = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
        assert job.wait(timeout=WAIT) == 3

        def answered() -> subprocess.CompletedProcess[str] | None:
            done = jobq_cli("worker-status", f"127.0.0.1:{port}")
            return done if done.returncode == 0 and "RUNNING" in done.stdout else None

        done = wait_until(answered, timeout=WAIT, what="the worker's monitor port")
        text = done.stdout
        assert "{" not in text and '"' not in text, text  # no JSON inside the tables
        assert "poll interval" in text and "1.00s" in text and "jobfuncs.add(1, 2)" in text
        assert "(default)" in text and "succeeded" in text
        data = json.loads(jobq_cli("worker-status", f"127.0.0.1:{port}", "--json").stdout)
        assert "poll_interval" in data["status"] and "active_jobs" in data
        assert not [k for k in _keys(data) if " " in k]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(WAIT)


def test_put_a_job_by_import_path(db: jobq.Database, db_url: str, tmp_path: Path) -> None:
    done = jobq_cli(
        "put", "jobfuncs:echo", "3", "[1, 2]", "text", "--kw", "flag=true", "--db", db_url
    )
    assert done.returncode == 0, done.stderr
    job = db.get_job(int(done.stdout))
    assert job.queue_name == "" and job.args == (3, [1, 2], "text") and job.kwargs == {"flag": True}
    done = jobq_cli(
        "put", "jobfuncs:add", "1", "2", "--queue", "reports", "--begin-after", "+5m",
        "--json", "--db", db_url,
    )  # fmt: skip
    shown = json.loads(done.stdout)
    later = db.get_job(shown["id"])
    assert later.queue_name == "reports" and shown["queue"] == "reports"
    assert later.begin_after > db.clock.now() + dt.timedelta(minutes=4)
    assert shown["call"] == "jobfuncs.add(1, 2)"
    before = jobq_cli("count", "pending", "--db", db_url).stdout
    for args, message in (
        (("jobfuncs.add", "1"), "use package.module:function"),
        (("no_such_module:f",), "cannot import module 'no_such_module'"),
        (("jobfuncs:no_such",), "module 'jobfuncs' has no 'no_such'"),
        (("jobfuncs:add", "--begin-after", "soon"), "neither +INTERVAL"),
        (("jobfuncs:add", "--kw", "1x=2"), "NAME a Python identifier"),
    ):
        bad = jobq_cli("put", *args, "--db", db_url)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr
    assert jobq_cli("count", "pending", "--db", db_url).stdout == before  # nothing stored


def test_out_of_range_numbers_and_unknown_queues_are_usage_errors(
    db: jobq.Database, db_url: str
) -> None:
    db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
    huge = str(10**20)
    for args in (
        ("job", huge),
        ("cancel", huge),
        ("retry", huge),
        ("jobs", "pending", "--limit", huge),
        ("agent-size", "", "main", huge),
        ("prune", "--older-than", f"{huge}D"),
        ("jobs", "completed", f"end:since{huge}D"),
        ("pause", "no-such-queue"),
        ("resume", "no-such-queue"),
    ):
        done = jobq_cli(*args, "--db", db_url)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "Error:" in done.stderr, (args, done.stderr)
    assert "no queue named 'no-such-queue'" in done.stderr
    assert jobq_cli("status", "--db", db_url).stdout.count("no-such-queue") == 0  # not created
    created = jobq_cli("pause", "--create", "later", "--db", db_url)
    assert created.returncode == 0 and db.store.paused_queues() == {"later"}


def test_put_with_a_unique_key_priority_time_limit_and_result_expiry(
    db: jobq.Database, db_url: str
) -> None:
    """`jobq put` takes every option of `Queue.put` an operator needs: a held unique key
    prints the holder's id (and `"created": false`), and bad values change nothing."""
    options = ("--unique-key", "report:7", "--priority", "5", "--timeout", "30")
    first = jobq_cli(
        "put", "jobfuncs:add", "1", "2", *options, "--keep-result", "1H", "--json", "--db", db_url
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    shown = json.loads(first.stdout)
    assert shown["created"] is True and shown["put_outcome"] == "created"
    assert shown["priority"] == 5
    again = jobq_cli("put", "jobfuncs:add", "3", "4", *options, "--json", "--db", db_url)
    assert again.returncode == 0, again.stderr
    held = json.loads(again.stdout)
    assert held["id"] == shown["id"] and held["created"] is False
    assert held["put_outcome"] == "existing"
    job = db.get_job(shown["id"])
    assert job.args == (1, 2) and job.priority == 5 and job.unique_key == "report:7"
    assert job.keep_result == dt.timedelta(hours=1)
    assert len(db.queue()) == 1
    for args, message in (
        (("--unique-key", "k" * 513), "the limit is 512"),
        (("--unique-while", "pending"), "needs a unique_key"),
        (("--priority", "11"), "-10<=x<=10"),
        (("--keep-result", "soon"), "keep-result"),
    ):
        bad = jobq_cli("put", "jobfuncs:add", "1", "2", *args, "--db", db_url)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr
    assert len(db.queue()) == 1  # nothing stored by the refused puts


def test_listings_show_calls_with_brackets_as_they_are(db: jobq.Database, db_url: str) -> None:
    """A call's text is data, not rich markup: `[/oops]` made `jobq job` and `jobq jobs`
    end in a MarkupError traceback, and `[bold]` vanished into a style."""
    text = "[/oops] and [bold]loud[/bold]"
    job = db.queue().put(jobq.Job(jobfuncs.echo, text))
    job.add_callback(jobq.Job(jobfuncs.echo, "[red]callback[/red]"))
    shown = {
        "job": jobq_cli("job", str(job.id), "--tree", "--db", db_url),
        "jobs": jobq_cli("jobs", "pending", "--db", db_url),
    }
    for command, done in shown.items():
        assert done.returncode == 0, (command, done.stderr)
        assert "Traceback" not in done.stderr, (command, done.stderr)
        said = "".join(done.stdout.split())  # tables wrap and pad
        assert "".join(text.split()) in said, (command, done.stdout)
    assert "[red]callback[/red]" in shown["job"].stdout  # the tree's callback, as put


def test_a_queue_named_with_brackets_shows_once_as_it_is(db: jobq.Database, db_url: str) -> None:
    """A queue's name in `jobq dispatchers` and `jobq status` as it was given: neither read
    as markup nor escaped twice (`\\[x]`, as the agents' column once showed it)."""
    wide = {**subprocess_env(), "COLUMNS": "250"}  # no cell wrapped
    with db.worker(queues=["[x]"]).start():
        done = {
            "dispatchers": jobq_cli("dispatchers", "--db", db_url, env=wide),
            "status": jobq_cli("status", "--db", db_url, env=wide),
        }
    for command, shown in done.items():
        assert shown.returncode == 0, (command, shown.stderr)
        assert "\\[" not in shown.stdout, (command, shown.stdout)
    assert "[x]/main 0/3" in done["dispatchers"].stdout, done["dispatchers"].stdout
    assert "[x]" in done["status"].stdout and "main 0/3" in done["status"].stdout
