"""`python -m jobq.bench --features`: what each per-job feature costs on the hot path.

For each engine and each variant, on a fresh database: `--jobs` single puts of no-op jobs
with the variant's options (jobs/s), then one `jobq worker` at its defaults drains them
(jobs/s, CPU per job of the worker and the database server). The variants, interleaved in
each run so that they share the machine's state:

- **plain**: no option (the baseline every ratio is taken against);
- **priority**: `priority=` cycling through -10..10 (every level of the claim's index in use);
- **unique key**: a distinct `unique_key=` per job (each put makes a job);
- **rate limit**: `rate_limits=["bench"]`, a limit of 1,000,000 claims a second, which never
  binds: the cost of the limit's bookkeeping, not of waiting;
- **time limit**: `timeout=60 s` (the worker's watch of running jobs' limits);
- **keep result**: `keep_result=1 h` (the expiry set at completion).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

import jobq
from jobq.bench.noop import noop
from jobq.bench.workloads import (
    Result,
    Settings,
    drain_jobs,
    fresh_database,
    ratio_table,
    summarize,
)

RATE_LIMIT = "bench"


def _plain(i: int) -> dict[str, Any]:
    return {}


def _priority(i: int) -> dict[str, Any]:
    return {"priority": i % 21 - 10}


def _unique(i: int) -> dict[str, Any]:
    return {"unique_key": f"bench:{i}"}


def _rate_limited(i: int) -> dict[str, Any]:
    return {"rate_limits": [RATE_LIMIT]}


def _timed(i: int) -> dict[str, Any]:
    return {"timeout": dt.timedelta(seconds=60)}


def _kept(i: int) -> dict[str, Any]:
    return {"keep_result": dt.timedelta(hours=1)}


# variant -> the put options of job i
VARIANTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "plain": _plain,
    "priority": _priority,
    "unique key": _unique,
    "rate limit": _rate_limited,
    "time limit": _timed,
    "keep result": _kept,
}
# metric -> (label, unit)
FEATURE_METRICS: dict[str, tuple[str, str]] = {
    "put": ("single puts", "jobs/s"),
    "drain": ("drain (1 worker)", "jobs/s"),
    "drain_cpu_us": ("drain CPU per job, all", "µs"),
    "drain_cpu_worker_us": ("  of which worker", "µs"),
}


@dataclass
class FeatureResult:
    engine: str
    metrics: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # variant, metric

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "metrics": self.metrics}


def bench_variant(
    url: str, settings: Settings, options_of: Callable[[int], dict[str, Any]]
) -> Result:
    """Single puts with the variant's options, timed; then their drain by one worker."""
    timed: dict[str, float] = {}

    def put(db: jobq.Database) -> None:
        queue = db.queue()
        if options_of is _rate_limited:
            queue.rate_limits.create(RATE_LIMIT, limit=1_000_000, per=dt.timedelta(seconds=1))
        started = time.perf_counter()
        for i in range(settings.jobs):
            queue.put(jobq.Job(noop), **options_of(i))
        timed["put"] = settings.jobs / (time.perf_counter() - started)

    rate, extra = drain_jobs(url, settings, [], noop, settings.jobs, put=put)
    return {
        "put": timed["put"],
        "drain": rate,
        "drain_cpu_us": extra["cpu_total_us"],
        "drain_cpu_worker_us": extra["cpu_worker_us"],
    }


def run_features(
    engine: str, settings: Settings, runs: int, progress: Callable[[str], None]
) -> FeatureResult:
    """Every variant `runs` times on `engine`, interleaved; medians by variant and metric."""
    collected: dict[str, dict[str, list[float]]] = {}
    for run in range(1, runs + 1):
        for name, options_of in VARIANTS.items():
            progress(f"{engine}: run {run}/{runs}: features: {name}")
            with fresh_database(engine, settings) as url:
                for metric, value in bench_variant(url, settings, options_of).items():
                    collected.setdefault(name, {}).setdefault(metric, []).append(value)
    return FeatureResult(
        engine,
        {
            name: {metric: summarize(values) for metric, values in metrics.items()}
            for name, metrics in collected.items()
        },
    )


def features_table(results: list[FeatureResult], machine: dict[str, Any], runs: int) -> Table:
    """Rows engine x variant x metric: median, range, and the ratio to the plain variant."""
    caption = (
        "Each variant's single puts of no-op jobs with its option, then their drain by one "
        "jobq worker at its defaults. vs plain: the median over the plain variant's (jobs/s "
        "below 1 and µs above 1 are the feature's cost). "
        + ", ".join(f"{k} {v}" for k, v in machine.items())
    )
    return ratio_table(
        f"jobq bench --features (median of {runs} run(s))",
        caption,
        "variant",
        "vs plain",
        results,
        FEATURE_METRICS,
        "plain",
    )


def features_report(
    results: list[FeatureResult], machine: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    """The JSON report of `--features --json`."""
    return {
        "machine": machine,
        "config": config,
        "units": {metric: unit for metric, (_, unit) in FEATURE_METRICS.items()},
        "features": {result.engine: result.to_json() for result in results},
    }
