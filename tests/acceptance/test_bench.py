"""`python -m jobq.bench --quick` runs end to end on each engine and reports every workload in
two tables, every system at its defaults and tuned; `--peers` measures the installed peer job
systems beside jobq, each at its own defaults and tuned."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from worker_helpers import PG_URL, subprocess_env

import jobq
from jobq.bench.floor import one_cpu, store_loop
from jobq.bench.noop import noop
from jobq.bench.workloads import Probe, WorkerProcess

WORKLOADS = (
    "put",
    "put_threads",
    "put_many",
    "drain",
    "drain_cpu_total_us",
    "drain_cpu_worker_us",
    "latency_p50",
    "latency_p99",
    "sleep",
)
PEER_WORKLOADS = tuple(w for w in WORKLOADS if w != "put_many")
LABELS = (
    "put (one at a time)",
    "put from 8 threads",
    "put_many (one call)",
    "drain (1 worker)",
    "drain CPU per job, all",
    "of which worker",
    "latency p50",
)
TITLES = (
    "jobq bench, defaults: every system at its documented defaults",
    "jobq bench, tuned: every system tuned",
)


def sections(table: str) -> tuple[str, str]:
    """The printed output split into the defaults table (with its notes) and the tuned one."""
    defaults, tuned = table.split(TITLES[1])
    assert TITLES[0] in defaults, table
    return defaults, tuned


pytestmark = pytest.mark.slow


def run_bench(*args: str) -> tuple[dict[str, Any], str, str]:
    """`python -m jobq.bench ARGS --json`: (the JSON report, the table printed before it, the
    progress lines on stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "jobq.bench", *args, "--json", "--pg-url", PG_URL],
        capture_output=True,
        text=True,
        timeout=180,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1]), proc.stderr


@pytest.mark.timeout(200)
def test_quick_bench_reports_every_workload(engine: str) -> None:
    report, table, _ = run_bench("--quick", "--engine", engine)

    assert report["config"]["jobs"] == 500
    assert report["config"]["sleep_jobs"] == 100
    assert report["config"]["put_threads"] == 8
    assert report["config"]["profiles"] == ["defaults", "tuned"]
    assert "peers" not in report
    assert list(report["results"]) == [engine]
    assert report["results"] == {engine: report["tables"]["defaults"][engine]["jobq"]}
    for profile in ("defaults", "tuned"):
        results = report["tables"][profile][engine]["jobq"]
        for workload in WORKLOADS:
            summary = results[workload]
            assert summary["median"] > 0, (profile, workload, summary)
            assert len(summary["runs"]) == 1
        assert results["latency_p99"]["median"] >= results["latency_p50"]["median"]
        assert results["drain_rss_mb"]["median"] > 0
        # all the CPU: the worker's, plus on PostgreSQL the server's processes serving it
        cpu = results["drain_cpu_total_us"]["median"]
        if engine == "postgres":
            assert results["drain_cpu_server_us"]["median"] > 0
            assert cpu == pytest.approx(
                results["drain_cpu_worker_us"]["median"] + results["drain_cpu_server_us"]["median"]
            )
        else:
            assert "drain_cpu_server_us" not in results
            assert cpu == pytest.approx(results["drain_cpu_worker_us"]["median"])
    # the sleep workload at the worker's concurrency: the default agent main:3 (300 jobs/s at
    # most), tuned --agent-size 8 (800 jobs/s at most)
    assert report["tables"]["defaults"][engine]["jobq"]["sleep"]["median"] < 300 * 1.05
    assert report["tables"]["tuned"][engine]["jobq"]["sleep"]["median"] < 800 * 1.05
    systems = report["systems"]
    assert systems["defaults"][engine]["jobq"]["concurrency"] == "3"
    assert "INFO" in systems["defaults"][engine]["jobq"]["settings"]
    assert systems["tuned"][engine]["jobq"]["concurrency"] == "8"
    assert "WARNING" in systems["tuned"][engine]["jobq"]["settings"]
    defaults, tuned = sections(table)
    for label in LABELS:
        assert label in defaults and label in tuned, table
    assert "sleep10ms (default concurrency)" in defaults
    assert "sleep10ms (8 at a time)" in tuned
    assert ("of which db server" in defaults) == (engine == "postgres")
    assert f"{engine} / jobq: " in defaults and "agent main:3" in defaults
    assert "--agent main:8 --log-level WARNING" in tuned
    assert engine in table
    assert "python" in table and "sqlite" in table and "cpu " in table
    if engine == "postgres":
        assert report["machine"]["postgres"]


@pytest.mark.timeout(200)
def test_a_missing_peer_is_named_with_the_extra_that_installs_it(tmp_path: Any) -> None:
    """A peer library that cannot be imported: `--peers` goes on with jobq and says how to
    install the peers, the whole hint and the import's error as they are. Before, the console
    read `[bench]` (and any bracket in an error) as markup and printed `pip install 'jobq'`."""
    blocked = tmp_path / "huey"
    blocked.mkdir()
    (blocked / "__init__.py").write_text(
        "raise ImportError(\"No module named 'huey' [blocked by the test]\")\n"
    )
    env = subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "jobq.bench", "--quick", "--peers", "--engine", "sqlite",
         "--profile", "defaults", "--json", "--jobs", "40", "--latency-jobs", "5",
         "--sleep-jobs", "16"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())  # the console wraps long lines
    assert "sqlite: huey: not installed: pip install 'jobq[bench]'" in said, said
    assert "No module named 'huey' [blocked by the test]" in said, said
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["peers"]["sqlite"] == {}
    assert set(report["tables"]["defaults"]["sqlite"]) == {"jobq"}


@pytest.mark.timeout(330)
@pytest.mark.skipif(
    importlib.util.find_spec("huey") is None and not os.environ.get("JOBQ_REQUIRE_PEERS"),
    reason="huey not installed (pip install 'jobq[bench]'; CI sets JOBQ_REQUIRE_PEERS)",
)
def test_quick_bench_with_peers(engine: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jobq.bench", "--quick", "--peers", "--engine", engine, "--json",
         "--pg-url", PG_URL, "--jobs", "40", "--latency-jobs", "5", "--sleep-jobs", "16"],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    table = "\n".join(lines[:-1])

    peers = report["peers"][engine]
    huey = "huey (SqliteHuey)" if engine == "sqlite" else "huey (SqlHuey)"
    if engine == "postgres" and importlib.util.find_spec("peewee") is None:
        assert "not installed" in proc.stderr
    else:
        assert huey in peers, (peers, proc.stderr)
    if engine == "postgres" and all(importlib.util.find_spec(m) for m in ("pgqueuer", "asyncpg")):
        assert "pgqueuer" in peers, (peers, proc.stderr)
    if engine == "postgres" and importlib.util.find_spec("procrastinate"):
        assert "procrastinate" in peers, (peers, proc.stderr)
    assert peers == {k: v for k, v in report["tables"]["defaults"][engine].items() if k != "jobq"}
    defaults, tuned = sections(table)
    for profile, printed in (("defaults", defaults), ("tuned", tuned)):
        by_system = report["tables"][profile][engine]
        assert set(by_system) == {"jobq", *peers}, profile
        for system, metrics in by_system.items():
            for workload in PEER_WORKLOADS:
                if workload.startswith("drain_cpu"):
                    # 40 jobs can take less than the kernel's CPU tick (10 ms): 0 is possible
                    assert metrics[workload]["median"] >= 0, (profile, system, workload)
                else:
                    assert metrics[workload]["median"] > 0, (profile, system, workload)
            server = metrics.get("drain_cpu_server_us", {"median": 0.0})["median"]
            assert ("drain_cpu_server_us" in metrics) == (engine == "postgres"), (profile, system)
            assert metrics["drain_cpu_total_us"]["median"] == pytest.approx(
                metrics["drain_cpu_worker_us"]["median"] + server
            )
            described = report["systems"][profile][engine][system]
            assert described["version"] and described["settings"] and described["concurrency"]
            assert f"{engine} / {system}: {described['version']}" in printed, printed
            assert system in printed
            if system != "jobq":
                ratios = report["ratios"][profile][engine][system]
                for workload in ("drain", "put_threads", "latency_p50"):
                    assert ratios[workload] > 0, (profile, system, workload)
        assert "jobq/peer" in printed and "n/a" in printed
    # each peer's defaults are its documented ones, and the tuned table says what it changed
    if huey in peers:
        assert report["systems"]["defaults"][engine][huey]["concurrency"] == "1"
        assert "-w 8" in report["systems"]["tuned"][engine][huey]["settings"]
    if "pgqueuer" in peers:
        assert (
            "batch 10, no task cap" in report["systems"]["defaults"][engine]["pgqueuer"]["settings"]
        )
        assert (
            "max_concurrent_tasks=8" in report["systems"]["tuned"][engine]["pgqueuer"]["settings"]
        )
    if "procrastinate" in peers:
        assert report["systems"]["defaults"][engine]["procrastinate"]["concurrency"] == "1"
        assert "--concurrency 8" in report["systems"]["tuned"][engine]["procrastinate"]["settings"]
    if huey in peers:
        # Huey has no bulk enqueue: reported as n/a, not measured
        assert "put_many" not in peers[huey]
        assert "put_many" in report["not_available"][engine][huey]


@pytest.mark.timeout(150)
def test_scale_bench_compares_empty_and_filled_tables(engine: str) -> None:
    rows = 2000
    report, table, progress = run_bench(
        "--scale", "--scale-rows", str(rows), "--engine", engine, "--runs", "1",
        "--jobs", "200", "--latency-jobs", "10",
    )  # fmt: skip

    assert report["config"]["scale_rows"] == rows
    assert report["config"]["jobs"] == 200
    assert list(report["scale"]) == [engine]
    scale = report["scale"][engine]
    # counted by status before each filled workload (drain, latency): exactly the fill
    assert scale["counts"] == [{"pending": rows, "completed": rows}] * 2
    assert scale["fill_seconds"] > 0
    for metric in ("drain", "latency_p50", "latency_p99"):
        empty, filled = scale["empty"][metric], scale["filled"][metric]
        assert empty["median"] > 0 and filled["median"] > 0, metric
        assert len(empty["runs"]) == len(filled["runs"]) == 1
        assert scale["ratios"][metric] == pytest.approx(filled["median"] / empty["median"])
        assert isinstance(scale["within"][metric], bool)
    for header in ("empty", "filled", "filled/empty", "within 20%"):
        assert header in table, table
    for label in ("drain (1 worker)", "latency p50", "latency p99"):
        assert label in table, table
    assert engine in table and "filled in" in table
    assert f"filling {rows:,} pending and {rows:,} completed rows" in progress


@pytest.mark.timeout(200)
def test_fleet_bench_reports_mixed_scale_out_and_idle(engine: str) -> None:
    """`--fleet`: several workers at their defaults; every figure is measured (jobq alone)."""
    report, table, progress = run_bench("--fleet", "--quick", "--engine", engine, "--jobs", "200")
    metrics = report["fleet"][engine]["metrics"]
    expected = {
        "mixed_efficiency",
        "mixed_long_span",
        "mixed_makespan",
        "mixed_longest_hold",
        "idle_worker_percent",
        "idle_latency_p50",
        "idle_latency_p99",
    }
    if engine == "postgres":
        expected |= {"idle_server_percent", "scale_1", "scale_2", "scale_4"}
        expected |= {f"scale_{n}_cpu_{who}_us" for n in (1, 2, 4) for who in ("worker", "server")}
        # Beside each worker count, as many processes of the store loop alone.
        expected |= {"scale_loop_1", "scale_loop_2", "scale_loop_4"}
        expected |= {
            f"scale_loop_{n}_cpu_{who}_us" for n in (1, 2, 4) for who in ("worker", "server")
        }
    assert set(metrics) == expected
    # CPU is read in clock ticks (10 ms): idle shares over the quick run's 2 s may be 0, and
    # so may the CPU per job of a quick scale-out drain (200 jobs in well under 100 ms).
    tick_bound = {"idle_worker_percent", "idle_server_percent"}
    tick_bound |= {m for m in metrics if m.startswith("scale_") and "_cpu_" in m}
    tick_bound.add("mixed_longest_hold")  # 0 where every long job started in its claim
    assert all(metrics[m]["median"] >= 0 for m in tick_bound & set(metrics)), metrics
    assert all(s["median"] > 0 for m, s in metrics.items() if m not in tick_bound), metrics
    # The long jobs cannot beat four busy threads: ideal / span is at most 1.
    assert metrics["mixed_efficiency"]["median"] <= 1.0
    assert metrics["mixed_makespan"]["median"] >= metrics["mixed_long_span"]["median"]
    assert metrics["mixed_longest_hold"]["median"] < metrics["mixed_long_span"]["median"]
    assert "jobq bench --fleet" in table and "mixed: long jobs, ideal / span" in table
    assert f"{engine}: run 1/1: fleet: idle" in progress
    if engine == "postgres":
        assert "scale-out: store loop, 4 process(es)" in table, table


@pytest.mark.timeout(200)
def test_features_bench_measures_every_variant_against_plain(engine: str) -> None:
    """`--features`: single puts and one worker's drain with each per-job feature, every
    figure measured, and each set against the plain variant."""
    report, table, progress = run_bench(
        "--features", "--quick", "--engine", engine, "--jobs", "150"
    )
    metrics = report["features"][engine]["metrics"]
    assert set(metrics) == {
        "plain",
        "priority",
        "unique key",
        "rate limit",
        "time limit",
        "keep result",
    }
    for variant, figures in metrics.items():
        assert set(figures) == {"put", "drain", "drain_cpu_us", "drain_cpu_worker_us"}, variant
        assert figures["put"]["median"] > 0 and figures["drain"]["median"] > 0, variant
        # CPU is read in 10 ms clock ticks: a quick drain of 150 jobs may read none.
        assert all(figures[m]["median"] >= 0 for m in ("drain_cpu_us", "drain_cpu_worker_us"))
    assert "jobq bench --features" in table and "vs plain" in table
    assert f"{engine}: run 1/1: features: keep result" in progress


@pytest.mark.timeout(200)
def test_floor_bench_measures_the_worker_beside_the_store_loop_alone(engine: str) -> None:
    """`--floor`: one worker's drain and the store's work for as many jobs done alone in one
    thread, each with its rate and CPU (the server's too on PostgreSQL), and the worker's
    figures set against the loop's."""
    report, table, progress = run_bench(
        "--floor", "--engine", engine, "--jobs", "200", "--runs", "1"
    )
    metrics = report["floor"][engine]["metrics"]
    shapes = {"worker", "worker, one cpu", "store loop", "store loop, no start"}
    assert set(metrics) == shapes  # Linux: affinity
    drain = {"rate", "cpu_total_us", "cpu_worker_us"} | (
        {"cpu_server_us"} if engine == "postgres" else set()
    )
    puts = {"put_rate", "put_cpu_us"}
    for shape, figures in metrics.items():
        expected = drain if shape in ("worker, one cpu", "store loop, no start") else drain | puts
        assert set(figures) == expected, shape
        assert figures["rate"]["median"] > 0, shape
        if "put_rate" in expected:  # both kinds of put are timed (each checks every put)
            assert figures["put_rate"]["median"] > 0, shape
        # CPU is read in 10 ms clock ticks: a quick run of 200 jobs may read none.
        assert all(figures[m]["median"] >= 0 for m in expected - {"rate", "put_rate"}), shape
    assert "jobq bench --floor" in table and "jobq/store" in table
    assert "jobq, one CPU" in table
    assert f"{engine}: run 1/1: floor: worker on one CPU" in progress
    assert "put from 8 threads" in table and "store alone" in table
    assert f"{engine}: run 1/1: floor: store loop" in progress
    assert f"{engine}: run 1/1: floor: store puts" in progress
    assert "store, no start" in table
    assert f"{engine}: run 1/1: floor: store loop without fenced starts" in progress


def test_the_floor_store_loop_without_fenced_starts_claims_each_job_straight_to_active(
    db: jobq.Database,
) -> None:
    """The store loop's second shape does every job's work but its start write: each job is
    active from its claim (its start is its assignment), where the loop with fenced starts
    starts each one later, in a write of its own."""
    for fenced in (True, False):
        jobs = db.queue().put_many([jobq.Job(noop) for _ in range(60)])
        done, _ = store_loop(db, fenced_start=fenced)
        assert done == 60
        records = [db.store.get(job.id) for job in jobs]
        assert all(r is not None and r.status == "completed" for r in records)
        straight = [r.active_start == r.assigned_at for r in records if r is not None]
        assert straight == [not fenced] * 60


@pytest.mark.parametrize(
    ("mode", "extra"),
    [
        ("--scale", "--peers"),
        ("--fleet", "--peers"),
        ("--fleet", "--scale"),
        ("--features", "--peers"),
        ("--features", "--fleet"),
        ("--floor", "--peers"),
        ("--floor", "--features"),
    ],
)
def test_a_bench_mode_refuses_what_it_cannot_combine_with(mode: str, extra: str) -> None:
    """`--scale`, `--fleet`, `--features` and `--floor` each measure jobq alone, one mode at a
    time: a flag they cannot take is a usage error naming the mode."""
    proc = subprocess.run(
        [sys.executable, "-m", "jobq.bench", mode, extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
    )
    assert proc.returncode == 2, proc.stderr
    assert mode in proc.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_a_worker_pinned_by_the_floor_bench_runs_every_thread_on_its_one_cpu(
    db: jobq.Database, db_url: str
) -> None:
    """`--floor`'s "one CPU" worker: set on the process as it starts, so that every thread
    the worker then starts (agents, group commit, heartbeat) inherits it."""

    cpu = one_cpu()
    assert cpu is not None
    probe = Probe(db_url)
    worker = WorkerProcess(db_url, [], cpu)
    try:
        worker.wait_active(probe)
        job = db.queue().put(jobq.Job(noop))
        assert job.wait(timeout=30) is None  # its agent's thread and the group commit's run
        threads = [int(task) for task in os.listdir(f"/proc/{worker.pid}/task")]
        assert len(threads) > 3
        assert {tid: os.sched_getaffinity(tid) for tid in threads} == {
            tid: {cpu} for tid in threads
        }
    finally:
        worker.stop()
        probe.close()
