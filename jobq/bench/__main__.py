"""`python -m jobq.bench` (also `jobq bench`): run the workloads and print a table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from jobq.bench.workloads import DEFAULT_PG_URL, METRICS, BenchError, Settings, run_engine

DASH = "\u2013"  # en dash, for ranges


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobq bench",
        description="Measure put, put_many, drain and latency of jobq on SQLite and PostgreSQL.",
    )
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("JOBQ_BENCH_PG_URL", DEFAULT_PG_URL),
        help="PostgreSQL URL (env JOBQ_BENCH_PG_URL); each workload uses a fresh schema in it.",
    )
    parser.add_argument("--jobs", type=int, default=None, help="Jobs per workload (10000).")
    parser.add_argument("--runs", type=int, default=None, help="Runs of each workload (3).")
    parser.add_argument(
        "--latency-jobs", type=int, default=None, help="Jobs of the latency workload (200)."
    )
    parser.add_argument("--agent-size", type=int, default=8, help="Worker threads (8).")
    parser.add_argument(
        "--sqlite-synchronous",
        default="full",
        choices=["off", "normal", "full", "extra"],
        help="SQLite URL option synchronous= (jobq's default: full).",
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="Seconds a drain may take (900)."
    )
    parser.add_argument("--json", action="store_true", help="Also print the results as JSON.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Small run for tests: 500 jobs, 1 run, 30 latency jobs.",
    )
    return parser


def _pg_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _table(
    results: dict[str, dict[str, dict[str, Any]]], machine: dict[str, Any], runs: int
) -> Table:
    caption = ", ".join(f"{k} {v}" for k, v in machine.items())
    table = Table(title=f"jobq bench (median of {runs} run(s))", caption=caption)
    table.add_column("engine", no_wrap=True)
    table.add_column("workload", no_wrap=True)
    table.add_column("median", justify="right", no_wrap=True)
    table.add_column(f"min{DASH}max", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    for engine, metrics in results.items():
        first = True
        for metric, (label, unit, _) in METRICS.items():
            if metric not in metrics:
                continue
            s = metrics[metric]
            table.add_row(
                engine if first else "",
                label,
                _fmt(s["median"]),
                f"{_fmt(s['min'])}{DASH}{_fmt(s['max'])}",
                unit,
            )
            first = False
        table.add_section()
    return table


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    jobs = args.jobs or (500 if args.quick else 10000)
    runs = args.runs or (1 if args.quick else 3)
    latency_jobs = args.latency_jobs or (30 if args.quick else 200)
    if jobs <= 0 or runs <= 0 or latency_jobs <= 0 or args.agent_size <= 0:
        print(
            "jobq bench: --jobs, --runs, --latency-jobs and --agent-size must be > 0",
            file=sys.stderr,
        )
        return 2
    settings = Settings(
        jobs=jobs,
        latency_jobs=latency_jobs,
        agent_size=args.agent_size,
        pg_url=args.pg_url,
        sqlite_synchronous=args.sqlite_synchronous,
        timeout=args.timeout,
    )
    console = Console(width=max(Console().width, 100))
    err = Console(stderr=True)
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    machine: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    if "postgres" in engines:
        try:
            machine["postgres"] = _pg_version(args.pg_url)
        except Exception as error:
            if args.engine == "postgres":
                err.print(f"jobq bench: no PostgreSQL at {args.pg_url}: {error}")
                return 2
            err.print(f"[yellow]skipping PostgreSQL: no server at {args.pg_url}: {error}[/yellow]")
            engines.remove("postgres")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        for engine in engines:
            results[engine] = run_engine(
                engine, settings, runs, lambda msg: err.print(msg, style="dim")
            )
    except BenchError as error:
        err.print(f"[red]jobq bench failed: {error}[/red]")
        return 1
    console.print(_table(results, machine, runs))
    if args.json:
        report = {
            "machine": machine,
            "config": {
                "jobs": jobs,
                "runs": runs,
                "latency_jobs": latency_jobs,
                "agent_size": args.agent_size,
                "sqlite_synchronous": args.sqlite_synchronous,
            },
            "units": {metric: unit for metric, (_, unit, _) in METRICS.items()},
            "results": results,
        }
        # One line, last on stdout, so scripts can take the last line.
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
