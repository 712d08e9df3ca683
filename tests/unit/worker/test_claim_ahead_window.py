"""How far ahead an agent of short jobs claims, without a database or threads."""

from __future__ import annotations

import pytest

from jobq.worker.agent import CLAIM_AHEAD_BELOW, CLAIM_AHEAD_MOST, jobs_to_claim_ahead


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
