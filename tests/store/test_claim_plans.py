"""Claims read the pending index only up to "now": a backlog of jobs scheduled for later
costs a claim nothing (`jobq bench --scale` measures it with a million such rows).

Each claim query is planned by the engine itself and the plan must bound its scan of the
pending index by `sort_at`; without that, a claim with fewer due jobs than its limit reads
every scheduled entry (27 ms with 1M rows on PostgreSQL, 62 ms on SQLite, holding the write
lock). Likewise, PostgreSQL's batch completion reads only its own dispatchers' active jobs,
and the reads of held jobs (each ping's sweep, quota counts) use a partial index. Last, no
query outside monitoring reads the whole jobs table, on either engine."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

import jobq
from jobq.store._monitor import filter_params
from jobq.store._schema import load_queries
from jobq.store.base import JobQuery

CLAIMS = ["claim", "claim_callbacks", "claim_candidates", "claim_quota_candidates"]


def params(db: jobq.Database) -> dict[str, Any]:
    store = db.store
    return {
        "queue": "",
        "dispatcher": "d",
        "agent": "main",
        "now": store.driver.to_db_time(dt.datetime.now(dt.UTC)),  # type: ignore[attr-defined]
        "stamp": store.driver.to_db_time(dt.datetime.now(dt.UTC)),  # type: ignore[attr-defined]
        "start": 3,  # the first 3 start, the rest are claimed ahead
        "start_ids": store.driver.to_db_list([1, 2, 3]),  # type: ignore[attr-defined]
        "limit": 8,
        "active_only": True,
        "full": store.driver.to_db_list([]),  # type: ignore[attr-defined]
        "exhausted": store.driver.to_db_list([]),  # type: ignore[attr-defined]
    }


# A read of every row of the jobs table in a plan, on each engine ("j" is its alias).
WHOLE_TABLE = {
    "sqlite": r"\bSCAN (?:jobq_jobs|j)\b(?! USING)",
    "postgres": r"Seq Scan on jobq_jobs",
}


def explain(store: Any, text: str, values: dict[str, Any]) -> list[str]:
    """The engine's own plan of `text`, one line per step; PostgreSQL plans as for a big
    table (sequential scans off), SQLite answers EXPLAIN QUERY PLAN."""
    with store._transaction() as ex:
        if store.engine == "sqlite":
            ex.cursor.execute("EXPLAIN QUERY PLAN " + text, values)
            return [str(row[3]) for row in ex.cursor.fetchall()]
        ex.cursor.execute("SET LOCAL enable_seqscan = off")
        ex.cursor.execute("EXPLAIN " + text, values)
        return [row["QUERY PLAN"] for row in ex.cursor.fetchall()]


def listing_plan(store: Any, query: str, state: str, **values: Any) -> str:
    """The plan of monitoring query `query` for a listing of jobs in `state`, unfiltered."""
    params = filter_params(store.driver, JobQuery(states=(state,))) | values
    return "\n".join(explain(store, load_queries(store.engine)[query], params))


@pytest.mark.parametrize("query", CLAIMS)
def test_each_claim_reads_the_pending_index_only_up_to_now(db: jobq.Database, query: str) -> None:
    lines = explain(db.store, load_queries(db.store.engine)[query], params(db))
    plan = "\n".join(lines)
    if db.store.engine == "sqlite":
        scans = re.findall(r"jobq_jobs USING .*", plan)
    else:
        scans = [
            lines[i + 1]
            for i, line in enumerate(lines)
            if "jobq_jobs_pending" in line and i + 1 < len(lines)
        ]
    pending = [scan for scan in scans if "PRIMARY KEY" not in scan and "pkey" not in scan]
    assert pending, plan
    for scan in pending:
        # The index is (queue, lane, priority DESC, sort_at, id): sort_at bounds the scan only
        # after equalities on lane and priority (a condition on sort_at alone is a filter over
        # every entry). The other reads are the probes finding the next (lane, priority)
        # level (LIMIT 1 each; the test at a million rows below counts what they read).
        bounded = re.search(r"lane ?= ?\S+.*priority ?= ?\S+.*sort_at ?<", scan)
        probe = re.search(r"priority ?< ?\S+\)+$|lane ?[>=] ?[^ )]+\)+$|\(queue ?= ?[^ ]+\)$", scan)
        assert bounded or probe, f"{query} scans pending jobs unbounded by now:\n{plan}"


def test_a_plain_completion_reads_only_its_own_dispatchers_active_jobs(db: jobq.Database) -> None:
    """PostgreSQL completes a batch of plain jobs in one UPDATE (store_results_plain): every
    read of the jobs table must be bounded by an index condition (the batch's dispatchers),
    not a walk over every worker's active jobs (2,020 of 50 workers: 2.9 ms a flush)."""
    if db.store.engine != "postgres":
        pytest.skip("SQLite completes each job by its primary key")
    text = load_queries("postgres")["store_results_plain"]
    rows = '[{"id": 1, "attempt": 1, "dispatcher": "d", "result": null, "result_repr": "None",'
    rows += ' "failed": false, "failure": null, "retry_data": "{}", "now": "2026-01-01T00:00Z"}]'
    lines = explain(db.store, text, {"rows": rows, "dispatchers": ["d"]})
    plan = "\n".join(lines)
    reads = [i for i, line in enumerate(lines) if re.search(r"Scan .*on jobq_jobs\b", line)]
    assert reads, plan
    for i in reads:
        assert i + 1 < len(lines) and "Index Cond" in lines[i + 1], plan


SWEEPS = ["dispatcher_jobs", "orphan_jobs", "quota_holders", "quota_slots_held"]


@pytest.mark.parametrize("query", SWEEPS)
def test_reads_of_held_jobs_use_an_index_not_the_whole_table(db: jobq.Database, query: str) -> None:
    """Every ping sweeps a worker's own jobs and orphaned ones, and every quota claim counts
    the slots held: each must read a partial index of held jobs, never every row (SQLite
    scanned the whole table for the sweep until the queries named the index's own terms:
    150 ms a ping with a million completed rows)."""
    engine = db.store.engine
    values = params(db) | {"uuid": "d"}
    plan = "\n".join(explain(db.store, load_queries(engine)[query], values))
    whole = re.findall(WHOLE_TABLE[engine], plan)
    used = re.findall(
        r"USING INDEX jobq_jobs_(?:dispatcher|quota_holders)"
        if engine == "sqlite"
        else r"(?:Index|Bitmap Index) Scan .*jobq_jobs_(?:dispatcher|quota_holders)",
        plan,
    )
    assert used and not whole, f"{query} reads more than the jobs held:\n{plan}"


@pytest.mark.parametrize("query", ["start_job", "start_jobs"])
def test_a_start_checks_for_held_front_jobs_in_their_own_index(
    db: jobq.Database, query: str
) -> None:
    """A fenced start of a job claimed ahead looks for a front-lane job its dispatcher holds
    unstarted; that look reads the index of such jobs, not every job the dispatcher holds
    (through the dispatcher index it read them all on each start, inside SQLite's write lock:
    about 160 µs a start with a thousand held, 20 µs with the index)."""
    engine = db.store.engine
    queries = load_queries(engine)
    if query not in queries:
        pytest.skip(f"{engine} starts a batch as one transaction of start_job statements")
    now = db.store.driver.to_db_time(dt.datetime.now(dt.UTC))  # type: ignore[attr-defined]
    values = {"id": 1, "attempt": 1, "dispatcher": "d", "now": now}
    if query == "start_jobs":
        values = {
            "rows": '[{"id": 1, "attempt": 1, "dispatcher": "d", "now": "2026-01-01T00:00Z"}]'
        }
    plan = "\n".join(explain(db.store, queries[query], values))
    assert "jobq_jobs_held_front" in plan, plan
    assert not re.findall(WHOLE_TABLE[engine], plan), plan


def _pg_rows_read(node: dict[str, Any]) -> tuple[int, list[str]]:
    """Rows a PostgreSQL plan (EXPLAIN ANALYZE, JSON) read of the jobs table, summed over its
    nodes (returned and removed by a filter, times loops), and its hashed subplans."""
    rows, hashed = 0, []
    if node.get("Relation Name") == "jobq_jobs":
        per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        rows += per_loop * node["Actual Loops"]
    for text in (node.get("Filter", ""), node.get("Index Cond", "")):
        hashed += re.findall(r"hashed SubPlan \d+", text)
    for child in node.get("Plans", []):
        more, also = _pg_rows_read(child)
        rows += more
        hashed += also
    return rows, hashed


def _start_work(store: Any, values: dict[str, Any]) -> tuple[int, str]:
    """The work of one fenced start (`start_job`), rolled back: on PostgreSQL the rows of the
    jobs table its plan read, on SQLite the virtual machine instructions it ran."""
    try:
        _run_start(store, load_queries(store.engine)["start_job"], values)
    except _Rollback as done:
        _, work, plan = done.result
        return work, plan
    raise AssertionError("unreachable")


def _run_start(store: Any, text: str, values: dict[str, Any]) -> None:
    with store._transaction() as ex:
        if store.engine == "sqlite":
            steps = [0]

            def count() -> int:
                steps[0] += 10
                return 0

            conn = ex.cursor.connection
            conn.set_progress_handler(count, 10)
            try:
                assert ex.cursor.execute(text, values).rowcount == 1
            finally:
                conn.set_progress_handler(None, 10)
            plan = "\n".join(
                str(r[3]) for r in ex.cursor.execute("EXPLAIN QUERY PLAN " + text, values)
            )
            raise _Rollback(([], steps[0], plan))
        ex.cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + text, values)
        tree = ex.cursor.fetchone()["QUERY PLAN"]
        rows, hashed = _pg_rows_read(tree[0]["Plan"])
        assert not hashed, f"a check planned as a hashed subplan reads a whole index: {tree}"
        raise _Rollback(([], rows, str(tree)))


def test_a_fenced_start_reads_its_own_job_whatever_its_dispatcher_holds(
    db: jobq.Database,
) -> None:
    """A job claimed ahead starts with one fenced write naming its id and its dispatcher.
    With a thousand jobs held by that dispatcher and 2,000 more pending, on a table whose
    statistics are as fresh as a new database's, the start reads its own row and one probe of
    each index it checks: on PostgreSQL the dispatcher index, smaller than the primary key,
    was read for every job the dispatcher held, and the front-lane check was planned as a
    hashed subplan that read the pending index end to end, on every start. SQLite's work is
    the same as with ten held (its plan finds the job by rowid)."""
    store: Any = db.store
    if store.engine == "postgres":  # no autoanalyze mid-test: the statistics stay fresh
        with store._transaction() as ex:
            ex.raw("ALTER TABLE jobq_jobs SET (autovacuum_enabled = off)")
    db.queue().put_many([jobq.Job(print) for _ in range(3000)])
    now = db.clock.now()
    store.activate_dispatcher("d", "host", 1, 5.0, 60.0, now)

    def work(record: Any) -> tuple[int, str]:
        values = {"id": record.id, "attempt": record.attempt, "dispatcher": "d"}
        return _start_work(store, values | {"now": store.driver.to_db_time(now)})

    few = store.claim("", "d", "main", 10, now, active_only=False, start=False)
    held_few, _ = work(few[5])  # rolled back: the job stays held
    many = few + store.claim("", "d", "main", 990, now, active_only=False, start=False)
    assert len(many) == 1000
    held_many, plan = work(many[500])
    if store.engine == "postgres":
        # The job's row (updated: read at least once) and its queue's, each by itself.
        assert 1 <= held_many <= 4, plan
    else:
        assert held_many <= held_few * 1.2, plan
        assert "USING INTEGER PRIMARY KEY" in plan, plan


def test_a_listing_of_completed_jobs_reads_the_completed_index_backwards(
    db: jobq.Database,
) -> None:
    """`jobq jobs completed` and `lastcompleted` stop after their limit along the completed
    index instead of sorting every completed row (1.3 s with 2M rows on SQLite, 1.1 s on
    PostgreSQL; 14 and 25 ms through the index)."""
    store: Any = db.store
    plan = listing_plan(store, "monitor_completed_jobs", "completed", limit=20, offset=0)
    if store.engine == "sqlite":
        assert "USING INDEX jobq_jobs_completed" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort of the rows read
    else:
        assert re.search(r"Index Scan Backward using jobq_jobs_completed", plan), plan


def _typical_params(store: Any) -> dict[str, Any]:
    """A value of the usual type for every parameter of the store's own queries."""
    now = dt.datetime.now(dt.UTC)
    return {
        "active_only": True,
        "agent": "main",
        "annotations": "{}",
        "attempt": 1,
        "begin_after": store.driver.to_db_time(now),
        "begin_by": 1.5,
        "call": b"\x00",
        "call_repr": "f()",
        "channel": "jobq",
        "dispatcher": "d",
        "dispatchers": ["d"],
        "failed": False,
        "failure": None,
        "failure_log_level": 40,
        "first": 1,
        "full": store.driver.to_db_list([]),
        "exhausted": store.driver.to_db_list([]),
        "id": 1,
        "ids": store.driver.to_db_list([1, 2]),
        "inner": 2,
        "job_class": None,
        "keep_result": None,
        "lane": 1,
        "last": 2,
        "limit": 8,
        "now": store.driver.to_db_time(now),
        "offset": 0,
        "parent_id": 1,
        "priority": 0,
        "put_by": None,
        "queue": "",
        "quota_names": "[]",
        "quoted": '"smtp"',
        "rate_limits": '["smtp"]',
        "result": b"\x00",
        "stamp": store.driver.to_db_time(now),
        "result_repr": "None",
        "retry_data": "{}",
        "retry_policy": None,
        "rows": "[]",
        "sort_at": store.driver.to_db_time(now),
        "start": 3,
        "start_ids": store.driver.to_db_list([1]),  # type: ignore[attr-defined]
        "status": "pending",
        "uuid": "d",
        "unique_key": "k",
        "unique_while": "pending,active",
        "until": store.driver.to_db_time(now),
        "job_id": 1,
    }


def test_no_query_of_the_worker_or_the_api_reads_the_whole_jobs_table(db: jobq.Database) -> None:
    """Every query the store sends outside monitoring is planned by the engine itself, as for
    a big table, and none may read every row of the jobs table: their cost must not grow with
    it (the sweep of every ping once did, on SQLite). Monitoring reads (`monitor_*`) filter
    and count by any field an operator names and are left out."""
    store: Any = db.store
    values = _typical_params(store)
    checked = []
    for name, text in sorted(load_queries(store.engine).items()):
        if name.startswith(("_", "monitor_")) or "jobq_jobs" not in text:
            continue
        if name == "insert_job_row":  # SQLite's, positional parameters: an insert reads nothing
            continue
        plan = "\n".join(explain(store, text, values))
        whole = re.findall(WHOLE_TABLE[store.engine], plan)
        assert not whole, f"{name} reads the whole jobs table:\n{plan}"
        checked.append(name)
    assert {"claim", "store_result", "dispatcher_jobs", "orphan_jobs"} <= set(checked)


def test_a_listing_of_held_jobs_reads_the_dispatcher_index(db: jobq.Database) -> None:
    """`jobq jobs active` reads the jobs held by workers from their index, not every row
    (0.21 s with 2M rows on SQLite; 3 ms through the index)."""
    store: Any = db.store
    plan = listing_plan(store, "monitor_held_jobs", "active", limit=20, offset=0)
    if store.engine == "sqlite":
        assert "USING INDEX jobq_jobs_dispatcher" in plan, plan
    else:
        assert re.search(r"(?:Index|Bitmap Index) Scan .*jobq_jobs_dispatcher", plan), plan


def test_a_listing_of_pending_jobs_reads_each_queue_along_the_pending_index(
    db: jobq.Database,
) -> None:
    """`jobq jobs pending` and `nextpending` find the queues with pending jobs by one probe
    each, then read each queue's pending index in order up to the limit, instead of sorting
    every pending row (0.5 s with 1M pending rows)."""
    store: Any = db.store
    queues_plan = listing_plan(store, "monitor_pending_queues", "pending")
    assert not re.findall(WHOLE_TABLE[store.engine], queues_plan), queues_plan
    plan = listing_plan(store, "monitor_pending_jobs", "pending", pending_queue="", first=20)
    if store.engine == "sqlite":
        assert "USING INDEX jobq_jobs_pending" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort of the rows read
        assert "USING INDEX jobq_jobs_pending" in queues_plan, queues_plan
    else:
        assert re.search(r"Index Scan using jobq_jobs_pending", plan), plan
        assert "Sort" not in plan, plan
        assert re.search(r"Index Only Scan using jobq_jobs_pending", queues_plan), queues_plan


# -- priorities at a million pending rows -----------------------------------------------------
# Queue "": 2 jobs put back (lane 0, priority -5), 399,998 due jobs of priorities -10..8, and
# 600,000 jobs of priorities 9 and 10 scheduled 30 days ahead; queue "cb": 1,000 callbacks
# due at the front (priorities 0 and 5). Times are one microsecond apart, in id order.
MILLION_FILL = {
    "sqlite": """
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1001000)
INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, call, call_repr, created,
    priority, parent_id)
SELECT CASE WHEN i > 1000000 THEN 'cb' ELSE '' END, 'pending',
    CASE WHEN i <= 2 OR i > 1000000 THEN 0 ELSE 1 END,
    CASE WHEN i <= 400000 OR i > 1000000 THEN :past + i ELSE :future + i END,
    CASE WHEN i <= 400000 OR i > 1000000 THEN :past + i ELSE :future + i END,
    X'00', 'f()', :past,
    CASE WHEN i <= 2 THEN -5 WHEN i <= 400000 THEN (i % 19) - 10 WHEN i <= 1000000
        THEN 9 + i % 2 ELSE 5 * (i % 2) END,
    CASE WHEN i > 1000000 THEN 1 END
FROM c""",
    "postgres": """
INSERT INTO jobq_jobs (queue, status, lane, sort_at, begin_after, call, call_repr, created,
    priority, parent_id)
SELECT CASE WHEN i > 1000000 THEN 'cb' ELSE '' END, 'pending',
    CASE WHEN i <= 2 OR i > 1000000 THEN 0 ELSE 1 END,
    CASE WHEN i <= 400000 OR i > 1000000 THEN %(past)s + i * interval '1 microsecond'
        ELSE %(future)s + i * interval '1 microsecond' END,
    CASE WHEN i <= 400000 OR i > 1000000 THEN %(past)s + i * interval '1 microsecond'
        ELSE %(future)s + i * interval '1 microsecond' END,
    '\\x00'::bytea, 'f()', %(past)s,
    CASE WHEN i <= 2 THEN -5 WHEN i <= 400000 THEN (i %% 19) - 10 WHEN i <= 1000000
        THEN 9 + i %% 2 ELSE 5 * (i %% 2) END,
    CASE WHEN i > 1000000 THEN 1 END
FROM generate_series(1, 1001000) AS i""",
}


def _pg_reads(node: dict[str, Any]) -> tuple[int, list[str]]:
    """Entries a PostgreSQL plan (EXPLAIN ANALYZE, JSON) read from the pending index, summed
    over its nodes (rows returned and removed by a filter, times loops), and the kinds of
    the nodes that read the jobs table without an index or sorted more than a claim's rows."""
    reads, bad = 0, []
    if node.get("Index Name") == "jobq_jobs_pending":
        per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        reads += per_loop * node["Actual Loops"]
    # (A bitmap scan of the pending index reads its whole range: counted in `reads`.)
    if node.get("Relation Name") == "jobq_jobs" and node["Node Type"] == "Seq Scan":
        bad.append(node["Node Type"])
    if node["Node Type"] == "Sort" and node["Actual Rows"] > 8:
        bad.append(f"Sort of {node['Actual Rows']} rows")
    for child in node.get("Plans", []):
        more, worse = _pg_reads(child)
        reads += more
        bad += worse
    return reads, bad


def _run_counted(store: Any, text: str, values: dict[str, Any]) -> tuple[list[Any], int, str]:
    """Run a claim query and roll it back: (its rows, the work it did, its plan). The work is
    what it read of the pending index on PostgreSQL (EXPLAIN ANALYZE), the virtual machine
    instructions it ran on SQLite (a progress handler counting every 100)."""
    with store._transaction() as ex:
        if store.engine == "sqlite":
            conn = ex.cursor.connection
            steps = [0]

            def count() -> int:
                steps[0] += 100
                return 0

            plan = "\n".join(
                str(r[3]) for r in ex.cursor.execute("EXPLAIN QUERY PLAN " + text, values)
            )
            assert "AUTOMATIC" not in plan and "BLOOM" not in plan, plan  # each scans the queue
            conn.set_progress_handler(count, 100)
            try:
                rows = ex.cursor.execute(text, values).fetchall()
            finally:
                conn.set_progress_handler(None, 100)
            result: tuple[list[Any], int, str] = ([dict(r) for r in rows], steps[0], plan)
        else:
            ex.raw("SAVEPOINT explained")  # EXPLAIN ANALYZE runs the claim: undone below
            ex.cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + text, values)
            tree = ex.cursor.fetchone()["QUERY PLAN"]
            ex.raw("ROLLBACK TO SAVEPOINT explained")
            reads, bad = _pg_reads(tree[0]["Plan"])
            assert not bad, f"reads the jobs table whole, or sorts it: {bad}"
            ex.cursor.execute(text, values)
            result = ([dict(r) for r in ex.cursor.fetchall()], reads, str(tree))
        raise _Rollback(result)


class _Rollback(Exception):
    def __init__(self, result: tuple[list[Any], int, str]) -> None:
        self.result = result


def _counted(store: Any, query: str, values: dict[str, Any]) -> tuple[list[Any], int, str]:
    try:
        _run_counted(store, load_queries(store.engine)[query], values)
    except _Rollback as done:
        return done.result
    raise AssertionError("unreachable")


def test_claims_at_a_million_pending_rows_read_only_what_they_take(db: jobq.Database) -> None:
    """With 1M pending rows of mixed priorities, 600,000 of them high-priority jobs scheduled
    for later, every claim statement reads the pending index level by level up to now: on
    PostgreSQL (EXPLAIN ANALYZE) no node reads the jobs table whole or sorts more than the
    rows claimed, and the claims read a few dozen index entries; on SQLite each runs a
    hundredth of the instructions of one count of the queue's pending rows. And they take
    the right jobs: put back first, then the highest priority that is due, oldest first."""
    store: Any = db.store
    engine = store.engine
    now = dt.datetime.now(dt.UTC)
    times = {
        "past": store.driver.to_db_time(now - dt.timedelta(days=1)),
        "future": store.driver.to_db_time(now + dt.timedelta(days=30)),
    }
    store.activate_dispatcher("d", "host", 1, 5.0, 60.0, now)
    with store._transaction() as ex:
        ex.cursor.execute(MILLION_FILL[engine], times)
        ex.raw("ANALYZE")
    values = params(db) | {"active_only": False}
    claimed, work, plan = _counted(store, "claim", values)
    # The two put-back jobs (ids 1, 2), then the oldest due jobs of priority 8 (i % 19 == 18).
    assert [r["id"] for r in claimed if r["lane"] == 0] == [1, 2], plan
    assert sorted(r["id"] for r in claimed if r["lane"] == 1) == [18, 37, 56, 75, 94, 113]
    assert {r["priority"] for r in claimed} == {-5, 8}
    results = {"claim": work}
    for query in ("claim_candidates", "claim_quota_candidates"):
        rows, results[query], plan = _counted(store, query, values)
        assert [r["id"] for r in rows] == [1, 2, 18, 37, 56, 75, 94, 113], (query, plan)
    rows, results["claim_callbacks"], plan = _counted(store, "claim_callbacks", values)
    assert rows == [], plan  # the put-back jobs of "" are not callbacks
    callbacks, results["claim_callbacks cb"], plan = _counted(
        store, "claim_callbacks", values | {"queue": "cb"}
    )
    assert sorted(r["id"] for r in callbacks) == [1000000 + i for i in range(1, 17, 2)], plan
    if engine == "postgres":
        assert all(reads <= 64 for reads in results.values()), results
    else:
        steps = [0]

        def count() -> int:
            steps[0] += 100
            return 0

        with store._transaction() as ex:
            ex.cursor.connection.set_progress_handler(count, 100)
            ex.cursor.execute(
                "SELECT count(*) FROM jobq_jobs WHERE queue = '' AND status = 'pending'"
            ).fetchall()
            ex.cursor.connection.set_progress_handler(None, 100)
        assert all(n * 100 < steps[0] for n in results.values()), (results, steps[0])


def test_the_keep_result_expiry_reads_the_expires_index_in_order(db: jobq.Database) -> None:
    """Retention's delete of expired jobs (put(keep_result=)) reads the partial index of
    those jobs from the oldest expiry up to now, never the completed jobs kept by age; the
    prune by age and the read of an expired job's record use their own indexes."""
    store: Any = db.store
    values = _typical_params(store)
    queries = load_queries(store.engine)
    plan = "\n".join(explain(store, queries["monitor_expired_jobs"], values))
    if store.engine == "sqlite":
        assert re.search(r"SEARCH j USING INDEX jobq_jobs_expires \(expires_at>\? AND", plan), plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert re.search(r"Index Scan using jobq_jobs_expires", plan), plan
        assert "Sort" not in plan, plan
    assert not re.findall(WHOLE_TABLE[store.engine], plan), plan
    values["before"] = values["now"]
    forget = "\n".join(explain(store, queries["monitor_forget_expired"], values))
    assert "jobq_expired_pruned" in forget, forget
    for name in ("monitor_delete_jobs", "monitor_record_expired"):
        lines = "\n".join(explain(store, queries[name], values))
        assert not re.findall(WHOLE_TABLE[store.engine], lines), lines
