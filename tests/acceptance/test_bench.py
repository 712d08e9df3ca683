"""`python -m jobq.bench --quick` runs end to end on each engine and reports every workload;
`--peers` measures the installed peer job systems beside jobq."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

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


@pytest.mark.timeout(150)
def test_quick_bench_reports_every_workload(engine: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jobq.bench", "--quick", "--engine", engine, "--json",
         "--pg-url", PG_URL],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    table = "\n".join(lines[:-1])

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
