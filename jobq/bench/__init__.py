"""`jobq bench` / `python -m jobq.bench`: throughput, drain rate, CPU and latency on each engine.

Workloads, each on empty tables (a fresh SQLite file, or a fresh PostgreSQL schema dropped
afterwards): `put` (one `queue.put` per job), `put_threads` (puts from 8 threads of one
process sharing one `Database`, a web app's shape, each put durable when it returns),
`put_many` (one call for all jobs), `drain` (a real `jobq worker` subprocess, started after
the jobs are stored, runs them all; timed from the first job's start to the last one's
completion as the database records them; with the CPU per job of the worker and of the
PostgreSQL processes serving it, read from /proc), `latency` (an idle worker; jobs put 20 ms
apart; put-to-start p50 and p99) and `sleep` (like drain, with 1,000 jobs each sleeping
10 ms). The job functions live in `jobq.bench.noop` so worker processes can import them.

Every workload runs in two profiles, interleaved run by run, and prints a table for each:
*defaults*, every worker as a user starts it (`jobq worker --db URL`, no tuning flags; each
peer at its documented defaults), its output going to a log file; and *tuned*, every worker
running `--agent-size` (8) jobs at a time with its logging at WARNING. `--peers` runs the same
workloads against the peer job systems installed as the optional `bench` extra
(`jobq.bench.peers`: Huey, pgqueuer, Procrastinate), interleaved run by run with jobq's.
"""
