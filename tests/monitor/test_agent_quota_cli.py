"""The commands that change agents and quotas while workers run: `agent-add`, `agent-remove`,
`agent-filter`, `agent-size`, `quota-create`, `quota-size`, `quota-remove`, `quotas`."""

from __future__ import annotations

import json

import jobfuncs
from click.testing import CliRunner

import jobq
from jobq.cli import main

from .conftest import UUID, Driver

OTHER = "22222222-2222-4222-8222-222222222222"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def agents(db: jobq.Database, uuid: str = UUID) -> dict[str, tuple[int, str | None]]:
    return {f"{a.queue}/{a.name}": (a.size, a.filter) for a in db.agents(uuid)}


def test_agent_commands(db_url: str, clock_db: jobq.Database, driver: Driver) -> None:
    driver.dispatcher()
    driver.dispatcher(OTHER)
    db = ["--db", db_url]
    code, out = run("agent-add", "", "big", "--dispatcher", UUID, "--size", "1", *db)
    assert code == 0 and "added" in out
    code, out = run(
        "agent-add", "reports", "pdf", "--dispatcher", UUID, "--filter", "jobfuncs:only_double", *db
    )
    assert code == 0, out
    assert agents(clock_db) == {
        "/big": (1, None),
        "/main": (3, None),
        "reports/pdf": (3, "jobfuncs:only_double"),
    }
    # bad input: clear errors, nothing changed
    code, out = run("agent-add", "", "big", "--dispatcher", UUID, *db)
    assert code == 2 and "already has agent 'big'" in out
    code, out = run("agent-add", "", "x", "--dispatcher", UUID, "--size", "-1", *db)
    assert code == 2 and "-1" in out
    code, out = run("agent-add", "", "x", "--dispatcher", UUID, "--filter", "nowhere:f", *db)
    assert code == 2 and "cannot import filter 'nowhere:f'" in out
    code, out = run("agent-add", "", "x", "--dispatcher", "no-such-uuid", *db)
    assert code == 2 and "no dispatcher no-such-uuid" in out
    code, out = run("agent-add", "", "x", *db)
    assert code == 2 and "--dispatcher" in out
    assert len(agents(clock_db)) == 3

    code, out = run("agent-filter", "", "big", "jobfuncs:not_double", "--dispatcher", UUID, *db)
    assert code == 0 and "on 1 dispatcher(s)" in out
    assert agents(clock_db)["/big"] == (1, "jobfuncs:not_double")
    code, out = run("agent-filter", "", "big", "bad path", *db)
    assert code == 2 and "import path" in out
    assert agents(clock_db)["/big"] == (1, "jobfuncs:not_double")
    code, out = run("agent-filter", "", "big", "none", *db)
    assert code == 0 and agents(clock_db)["/big"] == (1, None)
    code, out = run("agent-filter", "", "nope", "none", *db)
    assert code == 2 and "no agent 'nope'" in out

    code, out = run("agent-size", "", "main", "5", *db)  # every dispatcher with that agent
    assert code == 0 and "on 2 dispatcher(s)" in out
    assert agents(clock_db)["/main"] == agents(clock_db, OTHER)["/main"] == (5, None)

    code, out = run("agent-remove", "", "main", "--dispatcher", OTHER, *db)
    assert code == 0 and "removed from 1 dispatcher(s)" in out
    assert agents(clock_db, OTHER) == {}
    code, out = run("agent-remove", "", "main", "--dispatcher", OTHER, *db)
    assert code == 2 and "no agent 'main'" in out
    code, out = run("agent-remove", "reports", "pdf", *db)
    assert code == 0 and set(agents(clock_db)) == {"/big", "/main"}


def test_quota_commands(db_url: str, clock_db: jobq.Database, driver: Driver) -> None:
    db = ["--db", db_url]
    code, out = run("quota-create", "", "db", *db)
    assert code == 0 and "size 1" in out
    code, out = run("quota-create", "", "db", "3", *db)
    assert code == 2 and "quota already exists" in out
    code, out = run("quota-create", "", "zero", "0", *db)
    assert code == 2 and "0" in out
    assert clock_db.queue().quotas.sizes() == {"db": 1}

    driver.dispatcher()
    queue = clock_db.queue()
    jobs = [queue.put(jobq.Job(jobfuncs.add, i, 1), quota_names=["db"]) for i in range(2)]
    driver.claim_only(jobs[0])
    code, out = run("quotas", "--json", *db)
    assert code == 0 and json.loads(out) == [{"queue": "", "name": "db", "size": 1, "held": 1}]
    code, out = run("quotas", *db)
    assert code == 0 and "db" in out

    assert run("quota-size", "", "db", "2", *db)[0] == 0
    assert queue.quotas["db"].size == 2
    code, out = run("quota-remove", "", "db", *db)
    assert code == 0 and "removed" in out
    code, out = run("quota-remove", "", "db", *db)
    assert code == 2 and "no quota 'db'" in out
    assert list(queue.quotas) == [] and len(jobs) == 2
