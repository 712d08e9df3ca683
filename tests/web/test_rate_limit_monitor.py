"""Where rate limits show (issue 18.5), on both engines: `jobq rate-limits`, `jobq status`,
`/api/status` and the dashboard's queues page give each limit, its claims in the window now
and the jobs waiting on it; `rate-limit-set` / `rate-limit-remove` refuse bad input with
exit status 2 and change nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import jobfuncs
from click.testing import CliRunner
from starlette.testclient import TestClient

import jobq
from jobq.cli import main
from jobq.web import create_app

from .test_dashboard import TOKEN, log_in


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def fill(db: jobq.Database) -> None:
    """Rate limit 'smtp' of queue 'mail' (2 per minute) with both claims used, 3 jobs
    waiting."""
    q = db.queue("mail")
    q.rate_limits.create("smtp", limit=2, per=dt.timedelta(minutes=1))
    q.put_many([jobq.Job(jobfuncs.add, i, 1) for i in range(5)], rate_limits=["smtp"])
    claimed = db.store.claim("mail", str(uuid.uuid4()), "main", 5, db.clock.now(), start=True)
    assert len(claimed) == 2


def test_the_cli_lists_and_changes_rate_limits(db: jobq.Database, db_url: str) -> None:
    fill(db)
    code, out = run("rate-limits", "--db", db_url, "--json")
    assert code == 0, out
    (found,) = json.loads(out)
    assert {k: found[k] for k in ("queue", "name", "limit", "used", "waiting")} == {
        "queue": "mail",
        "name": "smtp",
        "limit": 2,
        "used": 2,
        "waiting": 3,
    }
    assert found["frees_at"] is not None
    code, out = run("rate-limits", "--db", db_url)
    assert code == 0 and "smtp" in out and "rate limits" in out
    code, out = run("status", "--db", db_url)
    assert code == 0 and "rate limits" in out and "smtp" in out
    code, out = run("status", "--db", db_url, "--json")
    assert json.loads(out)["mail"]["rate_limits"]["smtp"]["waiting"] == 3

    limits = db.queue("mail").rate_limits
    for bad, says in [
        (["0", "1M"], "0 is not in the range"),
        (["5", "soon"], "bad interval 'soon'"),
        (["5", "0S"], "per must be a period longer than zero"),
    ]:
        code, out = run("rate-limit-set", "mail", "smtp", *bad, "--db", db_url)
        assert code == 2 and says in out, out
    code, out = run("rate-limit-set", "mail", "bad name", "5", "1M", "--db", db_url)
    assert code == 2 and "bad rate limit name 'bad name'" in out
    code, out = run("rate-limit-remove", "mail", "smtp", "--db", db_url)
    assert code == 2 and "named by 3 pending job(s)" in out and "--force" in out
    code, out = run("rate-limit-remove", "mail", "nope", "--db", db_url)
    assert code == 2 and "has no rate limit 'nope'" in out
    assert limits.limits() == {"smtp": (2, dt.timedelta(minutes=1))}  # nothing changed

    code, out = run("rate-limit-set", "mail", "sms", "3", "2S", "--db", db_url)
    assert code == 0 and "created: 3 per 2S" in out
    code, out = run("rate-limit-set", "mail", "smtp", "4", "30S", "--db", db_url)
    assert code == 0 and "set: 4 per 30S" in out
    assert limits.limits() == {
        "sms": (3, dt.timedelta(seconds=2)),
        "smtp": (4, dt.timedelta(seconds=30)),
    }
    code, out = run("rate-limit-remove", "mail", "smtp", "--force", "--db", db_url)
    assert code == 0 and list(limits) == ["sms"]


def test_the_dashboard_and_api_show_rate_limits(db: jobq.Database) -> None:
    with TestClient(create_app(db, token=TOKEN)) as client:
        log_in(client)
        assert "<h2>Rate limits</h2>" not in client.get("/").text  # none: no section
        fill(db)
        page = client.get("/").text
        assert '<table id="rate-limits">' in page
        row = page.split('<table id="rate-limits">')[1].split("</table>")[0]
        assert "smtp" in row and '<span class="paused">2</span>' in row and ">3</td>" in row
        api = client.get("/api/status").json()
        assert api["mail"]["rate_limits"]["smtp"]["used"] == 2
        assert api["mail"]["rate_limits"]["smtp"]["limit"] == 2
