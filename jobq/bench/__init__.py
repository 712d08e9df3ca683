"""`jobq bench` / `python -m jobq.bench`: throughput, drain rate and latency on each engine.

Workloads, each on empty tables (a fresh SQLite file, or a fresh PostgreSQL schema dropped
afterwards): `put` (one `queue.put` per job), `put_many` (one call for all jobs), `drain`
(a real `jobq worker` subprocess, started after the jobs are stored, runs them all; timed from
the first job's start to the last one's completion as the database records them), `latency`
(an idle worker; jobs put 20 ms apart; put-to-start p50 and p99) and `sleep` (like drain, with
1,000 jobs each sleeping 10 ms, `--agent-size` (8) at a time: ideally 800 jobs/s). The job
functions live in `jobq.bench.noop` so worker processes can import them.

`--peers` runs the same workloads against the peer job systems installed as the optional
`bench` extra (`jobq.bench.peers`: Huey, pgqueuer), interleaved run by run with jobq's.
"""
