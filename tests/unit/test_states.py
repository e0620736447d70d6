"""Properties of the transition table (every edge is listed in tests/unit/test_machine_transitions.py)."""

from __future__ import annotations

import pytest

from chalicelib.domain.states import STEP_TRANSITIONS, StepState, can_move, is_forward

S = StepState


def test_table_covers_every_state() -> None:
    assert set(STEP_TRANSITIONS) == set(S)


@pytest.mark.parametrize("state", list(S))
def test_no_state_leads_back_to_pending(state: StepState) -> None:
    assert not can_move(state, S.PENDING)


def test_completed_and_skipped_are_final() -> None:
    assert not STEP_TRANSITIONS[S.COMPLETED] and not STEP_TRANSITIONS[S.SKIPPED]


def test_retry_is_a_new_attempt_that_starts_running() -> None:
    assert is_forward((1, S.FAILED), (2, S.RUNNING))
    assert not is_forward((1, S.FAILED), (1, S.RUNNING)), "a retry must bump the attempt"
    assert not is_forward((1, S.FAILED), (2, S.PENDING)), "a retried step never returns to pending"
    assert not is_forward((2, S.RUNNING), (1, S.RUNNING)), "attempts never go down"
    assert not is_forward((1, S.RUNNING), (3, S.RUNNING)), "attempts never jump"


def test_same_attempt_moves_only_along_the_table() -> None:
    assert is_forward((1, S.PENDING), (1, S.RUNNING))
    assert is_forward((1, S.RUNNING), (1, S.WAITING_FOR_APPROVAL))
    assert not is_forward((1, S.COMPLETED), (1, S.RUNNING))
    assert not is_forward((1, S.RUNNING), (2, S.COMPLETED))
