"""`python -m jobq.bench --scale`: claim and complete cost must not grow with the table.

For each engine, the drain workload (`--jobs` no-op jobs, one worker) and the latency
workload (put-to-start p50 and p99) run twice per run: on an empty database (fresh, as in the
plain bench) and on a database pre-filled with `--scale-rows` N pending jobs and N completed
jobs. The pending rows are in the workloads' queue but scheduled 30 days ahead, so they stay
pending and every claim must skip them through its index; the completed rows finished within
the last 24 hours, so retention (7 days by default) prunes none of them during the run.
The latency workload puts SCALE_LATENCY_JOBS (750) jobs 20 ms apart by default, 15 s: it spans
the worker's pings (every 5 s), and so the sweep each ping does, which must not grow with the
table either (on SQLite it scanned the whole table until schema 4: p99 474 ms filled).

The fill writes jobq's tables with the benchmark's own SQL (as the probe reads them): one
pending job (`begin_after` = now + 30 days) is put through the API and one completed job is
run inline (`jobq.testing.inline`), then each is copied N - 1 times with fresh times by one
`INSERT ... SELECT` (PostgreSQL: `generate_series`; SQLite: a recursive CTE), so every
NOT NULL column and the `call` payload are the store's own. After the fill the benchmark runs
ANALYZE, as autovacuum (or an operator's `PRAGMA optimize`) would on a real table that grew:
on PostgreSQL `VACUUM (ANALYZE) jobq_jobs` (an insert-only table is auto-vacuumed too, which
sets hint bits and the visibility map) and a `CHECKPOINT`; on SQLite `ANALYZE`, a WAL
checkpoint and an fsync. So the fill's statistics and write-back do not weigh on the filled
workloads. The fill time (and the ANALYZE time apart) is measured and printed.

Before every filled workload the benchmark counts the rows by status and fails unless they
are exactly N pending and N completed (the JSON reports these counts); afterwards it deletes
the workload's own rows, so each run sees the same table. A workload is "within 20%" when the
filled figure is no more than 20% worse than the empty one (drain rate at least 0.8 times,
latency at most 1.2 times); being faster on the filled table passes.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rich.table import Table

import jobq
from jobq.bench.noop import noop
from jobq.bench.workloads import (
    METRICS,
    BenchError,
    Result,
    Settings,
    bench_drain,
    bench_latency,
    format_value,
    fresh_database,
    jobq_worker_options,
    raw_connection,
    summarize,
)

DEFAULT_SCALE_ROWS = 1_000_000
SCALE_LATENCY_JOBS = 750  # 15 s of jobs 20 ms apart: three pings of the worker
TOLERANCE = 0.20  # filled may be at most this much worse than empty
PENDING_AHEAD = dt.timedelta(days=30)  # the pending rows' begin_after, from now
PENDING_SPACING = dt.timedelta(milliseconds=1)  # between consecutive pending rows
COMPLETED_WITHIN = dt.timedelta(hours=24)  # the completed rows finished in this past window
RUN_TIME = dt.timedelta(milliseconds=1)  # each completed row ran this long

SCALE_WORKLOADS: list[tuple[str, Callable[[str, Settings, list[str]], Result]]] = [
    ("drain", bench_drain),
    ("latency", bench_latency),
]
SCALE_METRICS = ("drain", "latency_p50", "latency_p99")


@dataclass
class Fill:
    """What `fill` stored: N pending and N completed rows, ids up to `last_id`."""

    rows: int
    last_id: int
    fill_seconds: float
    analyze_seconds: float


@dataclass
class ScaleResult:
    """One engine's scale figures: summaries by metric, empty and filled."""

    engine: str
    fill: Fill
    empty: dict[str, dict[str, Any]] = field(default_factory=dict)
    filled: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: list[dict[str, int]] = field(default_factory=list)  # verified before each run

    def ratio(self, metric: str) -> float | None:
        """Filled median over empty median."""
        empty, filled = self.empty.get(metric), self.filled.get(metric)
        if not empty or not filled or not empty["median"]:
            return None
        return float(filled["median"] / empty["median"])

    def within(self, metric: str) -> bool | None:
        """Whether the filled figure is at most TOLERANCE worse than the empty one."""
        ratio = self.ratio(metric)
        if ratio is None:
            return None
        higher_is_better = METRICS[metric][2]
        return ratio >= 1 - TOLERANCE if higher_is_better else ratio <= 1 + TOLERANCE

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.fill.rows,
            "fill_seconds": self.fill.fill_seconds,
            "analyze_seconds": self.fill.analyze_seconds,
            "counts": self.counts,
            "empty": self.empty,
            "filled": self.filled,
            "ratios": {m: r for m in SCALE_METRICS if (r := self.ratio(m)) is not None},
            "within": {m: w for m in SCALE_METRICS if (w := self.within(m)) is not None},
        }


# -- the fill --------------------------------------------------------------------------------
def _columns(conn: Any, engine: str) -> list[str]:
    """jobq_jobs' columns but id, as the database has them (the schema may change)."""
    if engine == "sqlite":
        return [row[1] for row in conn.execute("PRAGMA table_info(jobq_jobs)") if row[1] != "id"]
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'jobq_jobs' "
        "ORDER BY ordinal_position"
    ).fetchall()
    return [row[0] for row in rows if row[0] != "id"]


def _copy_sql(engine: str, columns: list[str], times: dict[str, str]) -> str:
    """INSERT of :n copies of row :template, the `times` columns set to '<base> + i * <step>'
    (named parameters), every other column copied."""
    exprs = []
    for column in columns:
        if column in times:
            base, step = times[column].split()
            if engine == "sqlite":  # integer microseconds
                exprs.append(f":{base} + g.i * :{step}")
            else:
                exprs.append(f"%({base})s::timestamptz + g.i * %({step})s::interval")
        else:
            exprs.append(f"t.{column}")
    insert = f"INSERT INTO jobq_jobs ({', '.join(columns)}) SELECT {', '.join(exprs)} "
    if engine == "sqlite":
        return (
            "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < :n) "
            + insert
            + "FROM jobq_jobs AS t, g WHERE t.id = :template"
        )
    return (
        insert + "FROM jobq_jobs AS t CROSS JOIN generate_series(1, %(n)s) AS g(i) "
        "WHERE t.id = %(template)s"
    )


def _param(engine: str, value: dt.datetime | dt.timedelta) -> Any:
    """A time or interval as the engine stores it (SQLite: integer microseconds)."""
    if engine == "postgres":
        return value
    if isinstance(value, dt.timedelta):
        return value // dt.timedelta(microseconds=1)
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def fill(url: str, rows: int) -> Fill:
    """Store `rows` pending jobs due in 30 days and `rows` jobs completed in the last 24 hours
    in the (empty) database at `url`, then ANALYZE; timed."""
    if rows < 1:
        raise ValueError("rows must be >= 1")
    engine = "sqlite" if url.startswith("sqlite") else "postgres"
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    with jobq.connect(url) as db:
        queue = db.queue()
        from jobq.testing import inline

        with inline(db):  # a real completed row: claimed, run and stored by jobq's runner
            done = queue.put(jobq.Job(noop))
        if done.status != "completed" or done.id is None:
            raise BenchError(f"the completed template job is {done.status}, not completed")
        pending = queue.put(jobq.Job(noop), begin_after=now + PENDING_AHEAD)
        assert pending.id is not None
    window_start = now - COMPLETED_WITHIN
    step = COMPLETED_WITHIN / rows
    params = {
        "n": rows - 1,
        "future": _param(engine, now + PENDING_AHEAD),
        "pending_step": _param(engine, PENDING_SPACING),
        "start": _param(engine, window_start - RUN_TIME),
        "end": _param(engine, window_start),
        "step": _param(engine, step),
    }
    conn = raw_connection(url, read_only=False)
    try:
        columns = _columns(conn, engine)
        pending_sql = _copy_sql(
            engine, columns, {c: "future pending_step" for c in ("sort_at", "begin_after")}
        )
        started_at = ("created", "sort_at", "begin_after", "assigned_at", "active_start")
        completed_times = {c: "start step" for c in started_at}
        completed_times |= {c: "end step" for c in ("active_end", "completed_at")}
        completed_sql = _copy_sql(engine, columns, completed_times)
        if rows == 1:
            pass  # the two template rows are the fill
        elif engine == "sqlite":
            conn.execute("PRAGMA synchronous=OFF")  # this connection only; checkpointed below
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(pending_sql, {**params, "template": pending.id})
            conn.execute(completed_sql, {**params, "template": done.id})
            conn.execute("COMMIT")
        else:
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = off")
                conn.execute(pending_sql, {**params, "template": pending.id})
                conn.execute(completed_sql, {**params, "template": done.id})
        filled = time.perf_counter()
        _settle(conn, url, engine)
        analyzed = time.perf_counter()
        (last_id,) = conn.execute("SELECT max(id) FROM jobq_jobs").fetchone()
    finally:
        conn.close()
    return Fill(rows, int(last_id), filled - started, analyzed - filled)


def _settle(conn: Any, url: str, engine: str) -> None:
    """ANALYZE the filled table, as autovacuum would a real table that grew, and put the
    fill's writes on disk, so that neither its statistics nor its write-back (a checkpoint,
    the OS flushing dirty pages) skews the filled workloads."""
    if engine == "sqlite":
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        path = urlsplit(url).path[1:]
        with open(path, "rb+") as file:  # the fill ran with synchronous=OFF
            os.fsync(file.fileno())
        return
    import psycopg

    # VACUUM also sets the hint bits and visibility map autovacuum would have set by now.
    conn.execute("VACUUM (ANALYZE) jobq_jobs")
    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        pass  # needs superuser or pg_checkpoint: the server's own checkpoint will come


def count_by_status(url: str) -> dict[str, int]:
    """How many rows of each status the database at `url` holds."""
    conn = raw_connection(url)
    try:
        rows = conn.execute("SELECT status, count(*) FROM jobq_jobs GROUP BY status").fetchall()
    finally:
        conn.close()
    return {str(status): int(n) for status, n in rows}


def verify_fill(url: str, rows: int) -> dict[str, int]:
    """The counts by status; BenchError unless exactly `rows` pending and `rows` completed."""
    counts = count_by_status(url)
    if counts != {"pending": rows, "completed": rows}:
        raise BenchError(f"filled database holds {counts}, not {rows} pending and completed")
    return counts


def remove_jobs_after(url: str, last_id: int) -> None:
    """Delete the jobs a workload stored (ids above the fill's), restoring the filled table."""
    conn = raw_connection(url, read_only=False)
    try:
        placeholder = "?" if url.startswith("sqlite") else "%s"
        conn.execute(f"DELETE FROM jobq_jobs WHERE id > {placeholder}", (last_id,))
    finally:
        conn.close()


# -- the runs --------------------------------------------------------------------------------
def run_scale(
    engine: str, settings: Settings, runs: int, rows: int, progress: Callable[[str], None]
) -> ScaleResult:
    """Drain and latency `runs` times on `engine`, each run on an empty database and on the
    filled one (filled once, restored after each workload); medians by metric."""
    empty: dict[str, list[float]] = {}
    filled: dict[str, list[float]] = {}
    # The worker as the main table's tuned profile runs it: --agent-size threads, quiet logs.
    options = jobq_worker_options("tuned", settings)
    with fresh_database(engine, settings) as filled_url:
        progress(f"{engine}: filling {rows:,} pending and {rows:,} completed rows")
        done = fill(filled_url, rows)
        progress(
            f"{engine}: filled in {done.fill_seconds:.1f} s, ANALYZE {done.analyze_seconds:.1f} s"
        )
        result = ScaleResult(engine, done)
        for run in range(1, runs + 1):
            for name, workload in SCALE_WORKLOADS:
                progress(f"{engine}: run {run}/{runs}: {name}: empty database")
                with fresh_database(engine, settings) as url:
                    _collect(empty, workload(url, settings, options))
                progress(f"{engine}: run {run}/{runs}: {name}: filled database")
                result.counts.append(verify_fill(filled_url, rows))
                try:
                    _collect(filled, workload(filled_url, settings, options))
                finally:
                    remove_jobs_after(filled_url, done.last_id)
    result.empty = {metric: summarize(values) for metric, values in empty.items()}
    result.filled = {metric: summarize(values) for metric, values in filled.items()}
    return result


def _collect(into: dict[str, list[float]], result: Result) -> None:
    for metric, value in result.items():
        into.setdefault(metric, []).append(value)


# -- the report ------------------------------------------------------------------------------
def scale_table(
    results: list[ScaleResult], machine: dict[str, Any], runs: int, agent_size: int
) -> Table:
    """Rows engine x workload: empty and filled medians, their ratio, within 20% or not."""
    percent = f"{TOLERANCE:.0%}"
    fills = "; ".join(
        f"{r.engine}: {r.fill.rows:,} pending + {r.fill.rows:,} completed rows filled in "
        f"{r.fill.fill_seconds:.1f} s, ANALYZE {r.fill.analyze_seconds:.1f} s"
        for r in results
    )
    caption = f"{fills}. Within {percent}: filled at most {percent} worse than empty. " + ", ".join(
        f"{k} {v}" for k, v in machine.items()
    )
    table = Table(title=f"jobq bench --scale (median of {runs} run(s))", caption=caption)
    table.add_column("engine", no_wrap=True)
    table.add_column("workload", no_wrap=True)
    table.add_column("empty", justify="right", no_wrap=True)
    table.add_column("filled", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    table.add_column("filled/empty", justify="right", no_wrap=True)
    table.add_column(f"within {percent}", justify="center", no_wrap=True)
    for result in results:
        first = True
        for metric in SCALE_METRICS:
            if metric not in result.empty or metric not in result.filled:
                continue
            label, unit, _ = METRICS[metric]
            ratio, within = result.ratio(metric), result.within(metric)
            table.add_row(
                result.engine if first else "",
                label.format(agent=agent_size),
                format_value(result.empty[metric]["median"]),
                format_value(result.filled[metric]["median"]),
                unit,
                f"{ratio:.2f}" if ratio is not None else "",
                "" if within is None else ("yes" if within else "[red]no[/red]"),
            )
            first = False
        table.add_section()
    return table


def scale_report(
    results: list[ScaleResult], machine: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    """The JSON report of `--scale --json`."""
    return {
        "machine": machine,
        "config": {**config, "tolerance": TOLERANCE},
        "units": {metric: METRICS[metric][1] for metric in SCALE_METRICS},
        "scale": {result.engine: result.to_json() for result in results},
    }
