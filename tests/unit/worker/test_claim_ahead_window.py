"""How far ahead an agent of short jobs claims, without a database."""

from __future__ import annotations

import time

import pytest

from jobq.worker.agent import CLAIM_AHEAD_BELOW, CLAIM_AHEAD_MOST, AgentPool, jobs_to_claim_ahead
from jobq.worker.settling import Settling


def test_nothing_ahead_before_any_job_ran_or_for_long_jobs() -> None:
    assert jobs_to_claim_ahead(3, None) == 0
    assert jobs_to_claim_ahead(3, CLAIM_AHEAD_BELOW) == 0
    assert jobs_to_claim_ahead(3, 10.0) == 0


@pytest.mark.parametrize("size", [1, 3, 8])
def test_about_claim_ahead_below_seconds_of_work(size: int) -> None:
    mean = CLAIM_AHEAD_BELOW / 4  # four jobs per thread fit in the window
    assert jobs_to_claim_ahead(size, mean) == 4 * size


@pytest.mark.parametrize("size", [1, 3])
def test_very_short_jobs_are_bounded(size: int) -> None:
    most = CLAIM_AHEAD_MOST * size
    assert jobs_to_claim_ahead(size, 0.0) == most
    assert jobs_to_claim_ahead(size, CLAIM_AHEAD_BELOW / CLAIM_AHEAD_MOST) == most
    just_longer = CLAIM_AHEAD_BELOW / (CLAIM_AHEAD_MOST - 1)
    assert jobs_to_claim_ahead(size, just_longer) < most


def test_a_size_zero_agent_claims_nothing_ahead() -> None:
    assert jobs_to_claim_ahead(0, 0.001) == 0


def test_a_job_whose_outcome_commits_later_counts_as_its_run_and_frees_its_thread() -> None:
    """A job's length, for claiming ahead, is its run: not the group commit's wait for other
    outcomes after it, which its thread does not spend. While its outcome commits it counts
    as done, beyond `size` such jobs."""
    settlings = [Settling() for _ in range(5)]
    pool = AgentPool("main", "", settlings.__getitem__)
    pool.resize(3)
    for index in range(5):
        pool.submit(index)
    deadline = time.monotonic() + 10
    while pool.settling < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.settling == 5 and pool.startable == 3  # every thread is free again
    time.sleep(2 * CLAIM_AHEAD_BELOW)  # the commits take longer than a short job
    for settling in settlings:
        settling.settled()
    assert pool.running == 0
    assert pool.claim_ahead == CLAIM_AHEAD_MOST * 3
    pool.stop()


def test_a_long_run_counts_before_its_outcome_commits() -> None:
    """The claim that a job's end asks for must see that the agent's jobs turned long: its
    length counts as its run ends, not once the group commit has stored its outcome. Before,
    a worker whose jobs turned from short to long claimed a short job's window of long ones
    while their outcomes committed, and held them."""
    long_run = 4 * CLAIM_AHEAD_BELOW
    settlings = [Settling() for _ in range(2)]

    def run(index: int) -> Settling | None:
        if index < 5:
            return None  # short, stored at once
        time.sleep(long_run)
        return settlings[index - 5]

    pool = AgentPool("main", "", run)
    pool.resize(1)
    for index in range(5):
        pool.submit(index)
    deadline = time.monotonic() + 10
    while pool.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.claim_ahead == CLAIM_AHEAD_MOST  # short jobs: the whole window
    pool.submit(5)
    pool.submit(6)
    while pool.settling < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.settling == 2  # both ran; neither outcome is stored yet
    assert pool.claim_ahead == 0
    for settling in settlings:
        settling.settled()
    assert pool.running == 0
    pool.stop()
