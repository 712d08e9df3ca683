"""`python -m jobq.bench --quick` runs end to end on each engine and reports every workload;
`--peers` measures the installed peer job systems beside jobq."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

import pytest
from worker_helpers import PG_URL, subprocess_env

WORKLOADS = ("put", "put_many", "drain", "latency_p50", "latency_p99", "sleep")
LABELS = (
    "put (one at a time)",
    "put_many (one call)",
    "drain (1 worker)",
    "latency p50",
    "sleep10ms (8 at a time)",
)

pytestmark = pytest.mark.slow


def run_bench(*args: str) -> tuple[dict[str, Any], str, str]:
    """`python -m jobq.bench ARGS --json`: (the JSON report, the table printed before it, the
    progress lines on stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "jobq.bench", *args, "--json", "--pg-url", PG_URL],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1]), proc.stderr


@pytest.mark.timeout(150)
def test_quick_bench_reports_every_workload(engine: str) -> None:
    report, table, _ = run_bench("--quick", "--engine", engine)

    assert report["config"]["jobs"] == 500
    assert report["config"]["sleep_jobs"] == 100
    assert "peers" not in report
    assert list(report["results"]) == [engine]
    results = report["results"][engine]
    for workload in WORKLOADS:
        summary = results[workload]
        assert summary["median"] > 0, (workload, summary)
        assert len(summary["runs"]) == 1
    assert results["latency_p99"]["median"] >= results["latency_p50"]["median"]
    assert results["drain_rss_mb"]["median"] > 0
    # 8 jobs of 10 ms at a time: at most 800 jobs/s
    assert results["sleep"]["median"] < 800 * 1.05
    for label in LABELS:
        assert label in table, table
    assert engine in table
    assert "python" in table and "sqlite" in table
    if engine == "postgres":
        assert report["machine"]["postgres"]


@pytest.mark.timeout(150)
@pytest.mark.skipif(importlib.util.find_spec("huey") is None, reason="huey not installed")
def test_quick_bench_with_peers(engine: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jobq.bench", "--quick", "--peers", "--engine", engine, "--json",
         "--pg-url", PG_URL, "--jobs", "40", "--latency-jobs", "5", "--sleep-jobs", "16"],
        capture_output=True,
        text=True,
        timeout=120,
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
    for system, metrics in peers.items():
        for workload in ("put", "drain", "latency_p50", "latency_p99", "sleep"):
            assert metrics[workload]["median"] > 0, (system, workload)
        assert report["ratios"][engine][system]["drain"] > 0
    if huey in peers:
        # Huey has no bulk enqueue: reported as n/a, not measured
        assert "put_many" not in peers[huey]
        assert "put_many" in report["not_available"][engine][huey]
        assert huey in table
    assert "jobq/peer" in table and "n/a" in table


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


def test_scale_bench_refuses_peers() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jobq.bench", "--scale", "--peers"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
    )
    assert proc.returncode == 2
    assert "--scale" in proc.stderr
