"""A composite's state: what it puts next, decided from its jobs' statuses alone (catalogue
§6: parallel, serial, parts added while running)."""

from __future__ import annotations

import pytest

import jobq
from jobq.model.compose import STATE_KEY, CompositeState


def test_round_trips_through_its_annotation() -> None:
    state = CompositeState("serial", [1, 2], 3, {1: [4]}, closed=False)
    again = CompositeState.from_annotations({STATE_KEY: state.to_json()})
    assert again == state
    assert CompositeState.from_annotations({}) is None
    assert CompositeState.from_annotations({STATE_KEY: "not a dict"}) is None


def test_nothing_is_due_before_the_first_run_or_once_closed() -> None:
    assert CompositeState("parallel", [1, 2]).due({1: "new", 2: "new"}) == ([], False)
    closed = CompositeState("parallel", [1], 9, closed=True)
    assert closed.due({1: "completed", 9: "new"}) == ([], False)


def test_parallel_puts_every_new_part_then_the_postprocess() -> None:
    state = CompositeState("parallel", [1, 2, 3], 9)
    assert state.due({1: "new", 2: "new", 3: "pending", 9: "new"}) == ([1, 2], False)
    assert state.due({1: "completed", 2: "active", 3: "completed", 9: "new"}) == ([], False)
    done = {1: "completed", 2: "callbacks", 3: "completed", 9: "new"}
    assert state.due(done) == ([], True)
    assert state.due({**done, 9: "pending"}) == ([], False)  # the postprocess was put already


def test_serial_puts_one_part_at_a_time() -> None:
    state = CompositeState("serial", [1, 2], 9)
    assert state.due({1: "new", 2: "new", 9: "new"}) == ([1], False)
    assert state.due({1: "active", 2: "new", 9: "new"}) == ([], False)
    assert state.due({1: "completed", 2: "new", 9: "new"}) == ([2], False)
    assert state.due({1: "completed", 2: "completed", 9: "new"}) == ([], True)


def test_a_part_is_done_only_with_the_callbacks_it_had_when_put() -> None:
    """Catalogue: "second's callback adds third": a watched callback may still add parts."""
    state = CompositeState("serial", [1, 2], 9, watch={1: [5]})
    assert not state.part_done(1, {1: "completed", 5: "pending"})
    assert state.due({1: "completed", 5: "pending", 2: "new", 9: "new"}) == ([], False)
    assert state.part_done(1, {1: "completed", 5: "completed"})
    assert state.watched() == [1, 2, 5, 9]


def test_kind_follows_the_constructor() -> None:
    assert jobq.parallel().kind == "parallel"
    assert jobq.serial().kind == "serial"


def test_a_stored_job_cannot_be_a_part() -> None:
    job = jobq.Job(print)
    job.id = 7
    with pytest.raises(ValueError, match="already stored"):
        jobq.parallel(job)
