"""`python -m jobq.chaos`: run the crash harness (see the package docstring)."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid as uuid_module
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

import jobq
from jobq.chaos import jobs as chaos_jobs

DEFAULT_PG = os.environ.get("JOBQ_CHAOS_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Worker:
    uuid: str
    process: subprocess.Popen[bytes]


@dataclass
class Report:
    engine: str
    jobs: int = 0
    kills: int = 0
    restarts_same_uuid: int = 0
    recoveries: int = 0
    worst_kill_to_rerun: float = 0.0
    longest_stall: float = 0.0  # the longest time no job completed while some were left
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


class Harness:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.random = random.Random(args.seed)
        self.schema = None
        if args.engine == "sqlite":
            self.url = f"sqlite:///{folder / 'chaos.db'}"
        else:
            self.schema = f"jobq_chaos_{uuid_module.uuid4().hex[:10]}"
            self.url = f"{args.pg_url}?schema={self.schema}"
        self.db = jobq.connect(self.url)
        self.workers: list[Worker] = []
        self.kills: list[tuple[float, int]] = []  # (time, pid)
        self.report = Report(args.engine)
        self._left = -1  # jobs not completed at the last look, and since when
        self._left_since = time.monotonic()

    # -- the application table, outside jobq's own -----------------------------------------
    def _raw(self) -> Any:
        if self.args.engine == "sqlite":
            return sqlite3.connect(str(self.folder / "chaos.db"), timeout=60)
        conn = psycopg.connect(self.args.pg_url, autocommit=True)
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self._raw()
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()

    def setup(self) -> list[tuple[str, jobq.Job, jobq.Job | None]]:
        conn = self._raw()
        key = "INTEGER PRIMARY KEY" if self.args.engine == "sqlite" else "SERIAL PRIMARY KEY"
        conn.execute(f"CREATE TABLE chaos_runs (id {key}, kind TEXT, job_key BIGINT)")
        conn.commit()
        conn.close()
        queue = self.db.queue()
        planned: list[tuple[str, jobq.Job, jobq.Job | None]] = []
        pause = self.args.pause
        for i in range(self.args.jobs):
            roll = i % 20
            if roll < 3:
                planned.append(("fail", jobq.Job(chaos_jobs.fail_work, i, pause), None))
            elif roll < 7:
                planned.append(("callback", jobq.Job(chaos_jobs.work, i, pause), None))
            elif roll < 9:
                planned.append(("returns", jobq.Job(chaos_jobs.returns_job, i, pause), None))
            elif roll < 13:
                planned.append(("quick", jobq.Job(chaos_jobs.quick, i, pause), None))
            else:
                planned.append(("work", jobq.Job(chaos_jobs.work, i, pause), None))
        queue.put_many([job for _, job, _ in planned])
        with_callbacks = []
        for kind, job, _ in planned:
            callback = job.add_callback(chaos_jobs.note) if kind == "callback" else None
            with_callbacks.append((kind, job, callback))
        self.report.jobs = len(planned)
        return with_callbacks

    # -- workers ---------------------------------------------------------------------------
    def spawn(self, uuid: str) -> Worker:
        env = {**os.environ, "JOBQ_CHAOS_LOG": str(self.folder)}
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        command = [
            sys.executable, "-m", "jobq", "worker", "--db", self.url, "--uuid", uuid,
            "--agent", f"main:{self.args.agent_size}", "--poll-interval", "0.2",
            "--ping-interval", str(self.args.ping), "--death-interval", str(self.args.death),
            "--grace", "1", "--log-level", "CRITICAL",
        ]  # fmt: skip
        process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        return Worker(uuid, process)

    def done(self) -> bool:
        """Whether every job completed; each look also times how long the count of jobs left
        has not moved (the queue's liveness: see `check_stalls`)."""
        rows = self._query("SELECT count(*) FROM jobq_jobs WHERE status <> 'completed'")
        left = int(rows[0][0])
        now = time.monotonic()
        if left != self._left:
            self._left, self._left_since = left, now
        elif left:
            self.report.longest_stall = max(self.report.longest_stall, now - self._left_since)
        return left == 0

    def run(self) -> Report:
        planned = self.setup()
        started = time.monotonic()
        self.workers = [self.spawn(str(uuid_module.uuid4())) for _ in range(self.args.workers)]
        deadline = started + self.args.timeout
        while self.report.kills < self.args.kills and time.monotonic() < deadline:
            time.sleep(self.random.uniform(0.1, self.args.kill_every))
            if self.done():
                break
            index = self.random.randrange(len(self.workers))
            victim = self.workers[index]
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
            self.kills.append((time.time(), victim.process.pid))
            self.report.kills += 1
            if self.random.random() < 0.5:
                self.report.restarts_same_uuid += 1
                self.workers[index] = self.spawn(victim.uuid)
            else:
                time.sleep(self.random.uniform(0, 0.5))
                self.workers[index] = self.spawn(str(uuid_module.uuid4()))
        while not self.done() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.report.seconds = time.monotonic() - started
        for worker in self.workers:
            worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.process.wait(30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
        self.check(planned)
        self.check_stalls()
        return self.report

    def check_stalls(self) -> None:
        """A fault may slow the queue, never stop it: once the death interval has handed a
        killed worker's jobs on, some job completes within `--stall-bound` seconds, through
        every kill and after the last one."""
        if self.report.longest_stall > self.args.stall_bound:
            self.report.problems.append(
                f"queue stalled: no job completed for {self.report.longest_stall:.1f} s "
                f"while {self._left} were left (bound {self.args.stall_bound} s)"
            )

    # -- the checks ----------------------------------------------------------------------------
    def check(self, planned: list[tuple[str, jobq.Job, jobq.Job | None]]) -> None:
        problems = self.report.problems
        runs = Counter(tuple(row) for row in self._query("SELECT kind, job_key FROM chaos_runs"))
        rows = self._query("SELECT id, status, completed_at FROM jobq_jobs")
        completed_at: dict[int, float] = {}
        for job_id, status, completed in rows:
            if status != "completed":
                problems.append(f"job {job_id} ended {status}, not completed")
                continue
            if isinstance(completed, int):  # SQLite stores microseconds
                completed_at[job_id] = completed / 1e6
            else:
                completed_at[job_id] = completed.timestamp()
        for kind, job, callback in planned:
            job.refresh()
            aborted = job.failure is not None and job.failure.check(jobq.AbortedError)
            if kind == "fail":
                if not (job.failed and (job.failure.check(ValueError) or aborted)):  # type: ignore[union-attr]
                    problems.append(f"job {job.id} should have failed, got {job.result!r}")
                if runs[("work", job.id)]:
                    problems.append(f"failed job {job.id} left {runs[('work', job.id)]} row(s)")
                continue
            if aborted:
                continue  # interrupted ten times: a legitimate outcome, with no row
            if job.failed:
                problems.append(f"job {job.id} ({kind}) failed: {job.failure}")
                continue
            if kind == "quick":
                if job.result != job.args[0]:
                    problems.append(f"job {job.id} returned {job.result!r}")
                continue
            if kind == "returns":
                if job.result != job.args[0] * 10:
                    problems.append(f"job {job.id} returned {job.result!r}")
                if runs[("outer", job.id)] != 1:
                    problems.append(f"outer job {job.id}: {runs[('outer', job.id)]} rows, not 1")
                continue
            if runs[("work", job.id)] != 1:
                problems.append(f"job {job.id}: {runs[('work', job.id)]} work rows, not 1")
            if callback is not None:
                callback.refresh()
                if callback.status != "completed" or callback.failed:
                    problems.append(f"callback {callback.id} of {job.id}: {callback.status}")
                if runs[("callback", job.id)] != 1:
                    problems.append(
                        f"callback of {job.id} ran {runs[('callback', job.id)]} times, not once"
                    )
        self._check_starts(completed_at)

    def _check_starts(self, completed_at: dict[int, float]) -> None:
        starts: dict[int, list[tuple[int, float, int]]] = defaultdict(list)
        for log in self.folder.glob("starts-*.log"):
            for line in log.read_text().splitlines():
                pid_text, job_text, attempt_text, at_text = line.split()
                starts[int(job_text)].append((int(attempt_text), float(at_text), int(pid_text)))
        interrupted = self._interruptions()
        self.report.recoveries = len(interrupted)
        for job_id, interruptions in interrupted.items():
            if interruptions > len(starts.get(job_id, ())):
                self.report.problems.append(
                    f"job {job_id} counts {interruptions} interruption(s) but started "
                    f"{len(starts.get(job_id, ()))} time(s)"
                )
        for job_id, seen in starts.items():
            end = completed_at.get(job_id)
            if end is not None and any(at > end + 0.001 for _, at, _ in seen):
                self.report.problems.append(f"job {job_id} started after it completed")
        killed: dict[int, float] = {pid: at for at, pid in self.kills}
        worst = 0.0
        for seen in starts.values():
            seen.sort(key=lambda s: s[1])
            for (_, at, pid), (_, next_at, _) in itertools.pairwise(seen):
                kill_at = killed.get(pid)
                if kill_at is not None and at <= kill_at <= next_at:
                    worst = max(worst, next_at - kill_at)
        self.report.worst_kill_to_rerun = worst

    def _interruptions(self) -> dict[int, int]:
        """Each job's interruption count (retry data), to check none counted for a run that
        never began."""
        counts = {}
        for job_id, retry_data in self._query("SELECT id, retry_data FROM jobq_jobs"):
            count = json.loads(retry_data or "{}").get("interruptions", 0)
            if count:
                counts[int(job_id)] = int(count)
        return counts

    def close(self) -> None:
        self.db.close()
        if self.schema:
            with psycopg.connect(self.args.pg_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobq.chaos", description=__doc__)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--kill-every", type=float, default=1.0, help="max seconds between kills")
    parser.add_argument("--agent-size", type=int, default=4)
    parser.add_argument("--pause", type=float, default=0.02, help="max seconds a job sleeps")
    parser.add_argument("--ping", type=float, default=0.2)
    parser.add_argument("--death", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--stall-bound",
        type=float,
        default=None,
        help="most seconds with no job completing while jobs are left (default: 5 death "
        "intervals + 10 s)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print the report as JSON too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.stall_bound is None:
        args.stall_bound = 5 * args.death + 10.0
    with tempfile.TemporaryDirectory(prefix="jobq-chaos-") as folder:
        harness = Harness(args, Path(folder))
        try:
            report = harness.run()
        finally:
            harness.close()
    print(
        f"{report.engine}: {report.jobs} jobs, {report.kills} kills "
        f"({report.restarts_same_uuid} restarted with the same UUID), {report.recoveries} jobs "
        f"recovered (interrupted, run again), "
        f"worst kill-to-rerun {report.worst_kill_to_rerun:.2f} s, "
        f"longest stall {report.longest_stall:.2f} s, "
        f"{report.seconds:.1f} s in all: "
        + ("OK, every job reached exactly one outcome" if not report.problems else "PROBLEMS")
    )
    for problem in report.problems[:50]:
        print("  -", problem)
    if args.json:
        print(json.dumps(report.__dict__))
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
