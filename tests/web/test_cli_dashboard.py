"""`jobq dashboard` as a real process (uvicorn on a free port), on both engines: it refuses a
network address without a token, `--insecure` starts it anyway with a warning, with a token an
anonymous read is refused and a Bearer one answers, and its output shows neither the token nor
the database password."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit, urlunsplit

import jobfuncs
from dashboard_process import Served, command, dashboard_env, free_port, get

import jobq

TOKEN = "cli-t0ken-never-printed"
PASSWORD = "s3cretpw"


def with_password(db_url: str) -> str:
    """The PostgreSQL test URL with a password (ignored by the test server's trust auth)."""
    parts = urlsplit(db_url)
    if parts.scheme != "postgresql":
        return db_url
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user or 'postgres'}:{PASSWORD}@{host}"))


def test_a_network_address_without_a_token_refuses_to_start(db_url: str) -> None:
    done = subprocess.run(
        command("--db", db_url, "--host", "0.0.0.0", "--port", str(free_port())),
        env=dashboard_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "refusing to serve the dashboard on 0.0.0.0 without a token" in done.stderr
    assert "--token" in done.stderr and "JOBQ_DASHBOARD_TOKEN" in done.stderr
    assert "--insecure" in done.stderr
    # an empty token is no token
    empty = subprocess.run(
        command("--db", db_url, "--host", "0.0.0.0", "--port", str(free_port())),
        env=dashboard_env(JOBQ_DASHBOARD_TOKEN=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode != 0 and "--insecure" in empty.stderr


def test_insecure_starts_it_anyway_and_warns(db: jobq.Database, db_url: str) -> None:
    job = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
    port = free_port()
    served = Served(
        ["--db", db_url, "--host", "0.0.0.0", "--port", str(port), "--insecure"],
        dashboard_env(),
        port,
    )
    try:
        status, _, body = get(port, f"/jobs/{job.id}")
        assert status == 200 and "jobfuncs.add(1, 2)" in body  # open, as asked
    finally:
        output = served.stop()
    assert "WARNING: --insecure" in output and "0.0.0.0" in output


def test_with_a_token_reads_need_it_and_nothing_secret_is_printed(
    db: jobq.Database, db_url: str, engine: str
) -> None:
    job = db.queue().put(jobq.Job(jobfuncs.add, 1, 2))
    url = with_password(db_url)
    port = free_port()
    served = Served(
        ["--db", url, "--port", str(port)], dashboard_env(JOBQ_DASHBOARD_TOKEN=TOKEN), port
    )
    try:
        status, headers, body = get(port, f"/jobs/{job.id}")
        assert status == 303 and headers["location"].startswith("/login?next=")
        assert "jobfuncs" not in body
        status, _, body = get(port, f"/api/jobs/{job.id}")
        assert status == 401 and "jobfuncs" not in body
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, _, body = get(port, f"/jobs/{job.id}", bearer)
        assert status == 200 and "jobfuncs.add(1, 2)" in body
        assert get(port, f"/api/jobs/{job.id}", bearer)[0] == 200
        assert get(port, "/jobs/1", {"Authorization": "Bearer wrong"})[0] == 303
    finally:
        output = served.stop()
    assert f"jobq dashboard on http://127.0.0.1:{port}/" in output and "token required" in output
    assert TOKEN not in output
    assert PASSWORD not in output
    if engine == "postgres":
        assert "postgres:***@127.0.0.1" in output
    assert os.environ.get("JOBQ_DASHBOARD_TOKEN") != TOKEN  # the test's own env is untouched
