"""`python -m jobq.bench` (also `jobq bench`): run the workloads and print a table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from jobq.bench.features import features_report, features_table, run_features
from jobq.bench.fleet import FleetSizes, fleet_report, fleet_table, run_fleet
from jobq.bench.floor import floor_report, floor_table, run_floor
from jobq.bench.scale import (
    DEFAULT_SCALE_ROWS,
    SCALE_LATENCY_JOBS,
    run_scale,
    scale_report,
    scale_table,
)
from jobq.bench.workloads import (
    DEFAULT_PG_URL,
    METRICS,
    PROFILES,
    BenchError,
    Settings,
    System,
    format_value,
    jobq_system,
    run_systems,
)

DASH = "\u2013"  # en dash, for ranges


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobq bench",
        description=(
            "Measure put, put from threads, put_many, drain (with its CPU per job), latency and a "
            "10 ms sleep workload of jobq on SQLite and PostgreSQL, at every system's defaults "
            "and tuned, optionally beside peer job systems (--peers); with --scale, drain and "
            "latency on an empty database against one filled with many rows."
        ),
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
        "--latency-jobs",
        type=int,
        default=None,
        help="Jobs of the latency workload (200; with --scale 750, to span the worker's pings).",
    )
    parser.add_argument(
        "--sleep-jobs", type=int, default=None, help="Jobs of the 10 ms sleep workload (1000)."
    )
    parser.add_argument(
        "--agent-size",
        type=int,
        default=8,
        help="Jobs at a time of every system's worker in the tuned table (8).",
    )
    parser.add_argument(
        "--put-threads", type=int, default=8, help="Threads of the threaded-put workload (8)."
    )
    parser.add_argument(
        "--profile",
        choices=["defaults", "tuned", "both"],
        default="both",
        help="Tables to print: every system at its documented defaults (the worker as a user "
        "starts it, its output to a log file), tuned (--agent-size at a time, quiet logs), or "
        "both (the default), interleaved in one run.",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="Also run the workloads against the peer job systems installed in this "
        "environment (Huey, pgqueuer, Procrastinate: pip install 'jobq[bench]'), side by side.",
    )
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
        "--scale",
        action="store_true",
        help="Instead of the usual workloads: drain and latency on an empty database and on "
        "one pre-filled with --scale-rows pending (due in 30 days) and completed rows, "
        "side by side (jobq.bench.scale).",
    )
    parser.add_argument(
        "--scale-rows",
        type=int,
        default=DEFAULT_SCALE_ROWS,
        help="Pending rows, and completed rows, of the --scale fill (1000000).",
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="Instead of the usual workloads: jobq with several workers, at its defaults: "
        "mixed (no-op jobs then 200 ms jobs, two workers of size 2), scale-out (1, 2, 4 "
        "worker processes on PostgreSQL) and idle (20 idle workers' CPU and latency) "
        "(jobq.bench.fleet).",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="Instead of the usual workloads: one jobq worker's drain of --jobs no-op jobs "
        "beside the store's work for as many jobs done alone in one thread (claim, fenced "
        "start, outcome), each with its CPU and the database server's: what a worker could "
        "reach on this store, and what the worker adds; and --put-threads threads' puts "
        "through Queue.put beside the store's enqueue alone (jobq.bench.floor).",
    )
    parser.add_argument(
        "--features",
        action="store_true",
        help="Instead of the usual workloads: jobq's single puts and one worker's drain of "
        "--jobs no-op jobs without an option and with each per-job feature (priority, unique "
        "key, rate limit, time limit, keep result), side by side (jobq.bench.features).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Small run for tests: 500 jobs, 1 run, 30 latency jobs, 100 sleep jobs.",
    )
    return parser


def _pg_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def _ratio(jobq: dict[str, Any] | None, peer: dict[str, Any] | None) -> float | None:
    if not jobq or not peer or not peer["median"]:
        return None
    return float(jobq["median"] / peer["median"])


# results[profile][engine][system][metric] = summary
Results = dict[str, dict[str, dict[str, dict[str, dict[str, Any]]]]]
TITLES = {
    "defaults": "every system at its documented defaults",
    "tuned": "every system tuned",
}


def _notes(profile: str, systems: dict[str, list[System]]) -> list[str]:
    """One line per engine and system: its version, its worker's settings, its concurrency."""
    lines = []
    for engine, engine_systems in systems.items():
        for system in engine_systems:
            if system.profile == profile:
                lines.append(
                    f"{engine} / {system.name}: {system.version}; {system.settings}; "
                    f"{system.concurrency} at a time"
                )
    return lines


def _table(
    profile: str,
    results: dict[str, dict[str, dict[str, dict[str, Any]]]],
    not_available: dict[str, dict[str, dict[str, str]]],
    machine: dict[str, Any],
    runs: int,
    settings: Settings,
) -> Table:
    """One profile's rows engine x system x workload; with peers, a column jobq's median over
    the peer's."""
    caption = ", ".join(f"{k} {v}" for k, v in machine.items())
    with_peers = any(len(systems) > 1 for systems in results.values())
    if with_peers:
        caption += (
            ". jobq/peer: jobq's median over the peer's (> 1 is jobq ahead in jobs/s; "
            "< 1 is jobq ahead in ms, µs and MiB)."
        )
    sleep = "default concurrency" if profile == "defaults" else f"{settings.agent_size} at a time"
    table = Table(
        title=f"jobq bench, {profile}: {TITLES[profile]} (median of {runs} run(s))",
        caption=caption,
    )
    table.add_column("engine", no_wrap=True)
    if with_peers:
        table.add_column("system", no_wrap=True)
    table.add_column("workload", no_wrap=True)
    table.add_column("median", justify="right", no_wrap=True)
    table.add_column(f"min{DASH}max", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    if with_peers:
        table.add_column("jobq/peer", justify="right", no_wrap=True)
    for engine, systems in results.items():
        first_engine = True
        for system, metrics in systems.items():
            first_system = True
            missing = not_available.get(engine, {}).get(system, {})
            for metric, (label, unit, _) in METRICS.items():
                if metric not in metrics and metric not in missing:
                    continue
                cells = [engine if first_engine else ""]
                if with_peers:
                    cells.append(system if first_system else "")
                cells.append(label.format(threads=settings.put_threads, sleep=sleep))
                if metric in metrics:
                    s = metrics[metric]
                    cells += [
                        format_value(s["median"]),
                        f"{format_value(s['min'])}{DASH}{format_value(s['max'])}",
                        unit,
                    ]
                else:
                    cells += ["n/a", "", unit]
                if with_peers:
                    ratio = None
                    if system != "jobq":
                        ratio = _ratio(systems.get("jobq", {}).get(metric), metrics.get(metric))
                    cells.append(f"{ratio:.2f}" if ratio is not None else "")
                table.add_row(*cells)
                first_engine = first_system = False
            table.add_section()
    return table


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    jobs = args.jobs or (500 if args.quick else 10000)
    runs = args.runs or (1 if args.quick else 3)
    latency_jobs = args.latency_jobs or (
        30 if args.quick else SCALE_LATENCY_JOBS if args.scale else 200
    )
    sleep_jobs = args.sleep_jobs or (100 if args.quick else 1000)
    if min(jobs, runs, latency_jobs, sleep_jobs, args.agent_size, args.put_threads) <= 0:
        print(
            "jobq bench: --jobs, --runs, --latency-jobs, --sleep-jobs, --agent-size and "
            "--put-threads must be > 0",
            file=sys.stderr,
        )
        return 2
    if args.scale and (args.peers or args.scale_rows <= 0):
        print("jobq bench: --scale needs --scale-rows > 0 and no --peers", file=sys.stderr)
        return 2
    settings = Settings(
        jobs=jobs,
        latency_jobs=latency_jobs,
        agent_size=args.agent_size,
        pg_url=args.pg_url,
        sqlite_synchronous=args.sqlite_synchronous,
        timeout=args.timeout,
        sleep_jobs=sleep_jobs,
        put_threads=args.put_threads,
    )
    console = Console(width=max(Console().width, 132 if args.peers else 100))
    err = Console(stderr=True)
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    machine: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    if "postgres" in engines:
        try:
            machine["postgres"] = _pg_version(args.pg_url)
        except Exception as error:
            if args.engine == "postgres":
                err.print(f"jobq bench: no PostgreSQL at {args.pg_url}: {error}", markup=False)
                return 2
            err.print(
                f"skipping PostgreSQL: no server at {args.pg_url}: {error}",
                style="yellow",
                markup=False,
            )
            engines.remove("postgres")
    if sum((args.scale, args.fleet, args.features, args.floor)) > 1:
        print(
            "jobq bench: --scale, --fleet, --features and --floor are separate runs",
            file=sys.stderr,
        )
        return 2
    if args.scale:
        return _main_scale(args, settings, engines, machine, runs, console, err)
    if args.fleet:
        if args.peers:
            print("jobq bench: --fleet measures jobq alone (no --peers)", file=sys.stderr)
            return 2
        return _main_fleet(args, settings, engines, machine, runs, console, err)
    if args.features:
        if args.peers:
            print("jobq bench: --features measures jobq alone (no --peers)", file=sys.stderr)
            return 2
        return _main_features(args, settings, engines, machine, runs, console, err)
    if args.floor:
        if args.peers:
            print("jobq bench: --floor measures jobq alone (no --peers)", file=sys.stderr)
            return 2
        config = {"jobs": settings.jobs, "runs": runs, "synchronous": args.sqlite_synchronous}
        return _run_mode(
            "--floor",
            lambda engine, progress: run_floor(engine, settings, runs, progress),
            lambda results: floor_table(results, machine, runs, settings.put_threads),
            lambda results: floor_report(results, machine, config),
            engines,
            args.json,
            console,
            err,
        )
    profiles = list(PROFILES) if args.profile == "both" else [args.profile]
    systems: dict[str, list[System]] = {}
    for engine in engines:
        systems[engine] = [jobq_system(engine, profile, settings) for profile in profiles]
        if args.peers:
            from jobq.bench.peers import peer_systems  # peers are imported only under --peers

            def warn(msg: str, engine: str = engine) -> None:
                err.print(f"{engine}: {msg}", style="yellow", markup=False)

            systems[engine] += [
                s for s in peer_systems(engine, settings, warn) if s.profile in profiles
            ]
    results: Results = {profile: {} for profile in profiles}
    try:
        for engine in engines:
            by_profile = run_systems(
                engine,
                systems[engine],
                settings,
                runs,
                lambda msg: err.print(msg, style="dim", markup=False),
            )
            for profile in profiles:
                results[profile][engine] = by_profile[profile]
    except BenchError as error:
        err.print(f"jobq bench failed: {error}", style="red", markup=False)
        return 1
    not_available = {
        engine: {s.name: s.not_available for s in engine_systems if s.not_available}
        for engine, engine_systems in systems.items()
    }
    for profile in profiles:
        console.print(_table(profile, results[profile], not_available, machine, runs, settings))
        for line in _notes(profile, systems):
            console.print(f"  {line}", soft_wrap=True, markup=False)
        console.print()
    if args.json:
        report = _report(args, settings, runs, machine, profiles, systems, results)
        report["not_available"] = not_available
        # One line, last on stdout, so scripts can take the last line.
        print(json.dumps(report))
    return 0


def _report(
    args: argparse.Namespace,
    settings: Settings,
    runs: int,
    machine: dict[str, Any],
    profiles: list[str],
    systems: dict[str, list[System]],
    results: Results,
) -> dict[str, Any]:
    """The JSON report: jobq's figures at defaults under "results" (and "peers" beside them),
    every profile's under "tables", with ratios and each system's settings."""
    first = profiles[0]
    report: dict[str, Any] = {
        "machine": machine,
        "config": {
            "jobs": settings.jobs,
            "runs": runs,
            "latency_jobs": settings.latency_jobs,
            "sleep_jobs": settings.sleep_jobs,
            "agent_size": settings.agent_size,
            "put_threads": settings.put_threads,
            "sqlite_synchronous": settings.sqlite_synchronous,
            "peers": args.peers,
            "profiles": profiles,
        },
        "units": {metric: unit for metric, (_, unit, _) in METRICS.items()},
        # jobq's own figures in the first profile (defaults unless --profile tuned)
        "results": {engine: by_system["jobq"] for engine, by_system in results[first].items()},
        "tables": results,
        "systems": {
            profile: {
                engine: {
                    s.name: {
                        "version": s.version,
                        "settings": s.settings,
                        "concurrency": s.concurrency,
                    }
                    for s in engine_systems
                    if s.profile == profile
                }
                for engine, engine_systems in systems.items()
            }
            for profile in profiles
        },
    }
    if args.peers:
        report["peers"] = {
            engine: {name: m for name, m in by_system.items() if name != "jobq"}
            for engine, by_system in results[first].items()
        }
        report["ratios"] = {
            profile: {
                engine: {
                    name: {
                        metric: r
                        for metric in METRICS
                        if (r := _ratio(by_system["jobq"].get(metric), m.get(metric))) is not None
                    }
                    for name, m in by_system.items()
                    if name != "jobq"
                }
                for engine, by_system in results[profile].items()
            }
            for profile in profiles
        }
    return report


def _cpu_model() -> str:
    """The CPU's model name, from /proc/cpuinfo ("?" elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _run_mode(
    flag: str,
    run: Callable[[str, Callable[[str], None]], Any],
    table: Callable[[list[Any]], Any],
    report: Callable[[list[Any]], dict[str, Any]],
    engines: list[str],
    as_json: bool,
    console: Console,
    err: Console,
) -> int:
    """One of the runs instead of the usual workloads (`flag`): `run(engine, progress)` for
    each engine, its table, and with --json its report (one line, last on stdout, so that
    scripts can take the last line)."""
    try:
        results = [
            run(engine, lambda msg: err.print(msg, style="dim", markup=False)) for engine in engines
        ]
    except BenchError as error:
        err.print(f"jobq bench {flag} failed: {error}", style="red", markup=False)
        return 1
    console.print(table(results))
    if as_json:
        print(json.dumps(report(results)))
    return 0


def _main_scale(
    args: argparse.Namespace,
    settings: Settings,
    engines: list[str],
    machine: dict[str, Any],
    runs: int,
    console: Console,
    err: Console,
) -> int:
    """`--scale`: drain and latency, empty against filled, by engine (jobq.bench.scale)."""
    config = {
        "jobs": settings.jobs,
        "runs": runs,
        "latency_jobs": settings.latency_jobs,
        "agent_size": args.agent_size,
        "sqlite_synchronous": args.sqlite_synchronous,
        "scale_rows": args.scale_rows,
    }
    return _run_mode(
        "--scale",
        lambda engine, progress: run_scale(engine, settings, runs, args.scale_rows, progress),
        lambda results: scale_table(results, machine, runs, args.agent_size),
        lambda results: scale_report(results, machine, config),
        engines,
        args.json,
        console,
        err,
    )


def _main_fleet(
    args: argparse.Namespace,
    settings: Settings,
    engines: list[str],
    machine: dict[str, Any],
    runs: int,
    console: Console,
    err: Console,
) -> int:
    """`--fleet`: mixed, scale-out and idle, by engine (jobq.bench.fleet)."""
    sizes = FleetSizes.quick() if args.quick else FleetSizes()
    config = {"jobs": settings.jobs, "runs": runs, **sizes.__dict__}
    return _run_mode(
        "--fleet",
        lambda engine, progress: run_fleet(engine, settings, runs, sizes, progress),
        lambda results: fleet_table(results, machine, runs),
        lambda results: fleet_report(results, machine, config),
        engines,
        args.json,
        console,
        err,
    )


def _main_features(
    args: argparse.Namespace,
    settings: Settings,
    engines: list[str],
    machine: dict[str, Any],
    runs: int,
    console: Console,
    err: Console,
) -> int:
    """`--features`: each per-job feature's put and drain against none (jobq.bench.features)."""
    config = {"jobs": settings.jobs, "runs": runs}
    return _run_mode(
        "--features",
        lambda engine, progress: run_features(engine, settings, runs, progress),
        lambda results: features_table(results, machine, runs),
        lambda results: features_report(results, machine, config),
        engines,
        args.json,
        console,
        err,
    )


if __name__ == "__main__":
    raise SystemExit(main())
