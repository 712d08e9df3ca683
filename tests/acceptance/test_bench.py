"""`python -m jobq.bench --quick` runs end to end on each engine and reports every workload."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from worker_helpers import PG_URL, subprocess_env

WORKLOADS = ("put", "put_many", "drain", "latency_p50", "latency_p99")
LABELS = ("put (one at a time)", "put_many (one call)", "drain (1 worker)", "latency p50")

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
    assert list(report["results"]) == [engine]
    results = report["results"][engine]
    for workload in WORKLOADS:
        summary = results[workload]
        assert summary["median"] > 0, (workload, summary)
        assert len(summary["runs"]) == 1
    assert results["latency_p99"]["median"] >= results["latency_p50"]["median"]
    assert results["drain_rss_mb"]["median"] > 0
    for label in LABELS:
        assert label in table, table
    assert engine in table
    assert "python" in table and "sqlite" in table
    if engine == "postgres":
        assert report["machine"]["postgres"]
