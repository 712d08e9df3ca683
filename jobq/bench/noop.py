"""The benchmark's job functions: importable by worker processes."""

from __future__ import annotations

import time

SLEEP_SECONDS = 0.010  # the sleep workload's job


def noop() -> None:
    """Do nothing: measures jobq's overhead only."""


def sleep10ms() -> None:
    """Sleep 10 ms: with 8 at a time, the ideal rate is 800 jobs/s."""
    time.sleep(SLEEP_SECONDS)


def sleep_for(seconds: float) -> None:
    """Sleep `seconds`: the long jobs of the mixed workload (`jobq.bench.fleet`)."""
    time.sleep(seconds)
