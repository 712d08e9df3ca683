"""The crash harness: real worker processes, SIGKILLed at random, and a count of outcomes.

`python -m jobq.chaos --engine sqlite --workers 3 --jobs 2000 --kills 20` puts a mix of jobs
(plain, failing, with callbacks, returning jobs, each writing a row in its own transaction;
and quick jobs without writes, whose outcomes commit after their threads move on),
runs worker subprocesses, SIGKILLs random ones at random moments (restarting them, with the
same UUID or a new one), and checks that every job reached exactly one outcome, that every
transactional write and every callback happened exactly once, that no job started after
its completion or counts an interruption for a run that never began, and that the queue never
stalled (no job completing for longer than `--stall-bound` while jobs were left). It prints
jobs, kills, recoveries, the longest stall and the worst time from a kill to a job of the
killed worker running again.
"""
