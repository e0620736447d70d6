"""Every edge of the step transition table, and every operator action from every state."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.domain.machine import (
    Approve,
    CancelExecution,
    ClaimStep,
    ForceAdvance,
    Heartbeat,
    RecordResult,
    Refused,
    Reject,
    RetryStep,
    Review,
    SkipStep,
    decide,
)
from chalicelib.domain.running import settled_dues
from chalicelib.domain.states import STEP_TRANSITIONS, StepState, can_move, is_forward
from tests.unit.machine_kit import ADMIN, MANAGER, OPERATOR, Run, agent_error, definition, step

S = StepState

# The table written out by hand, so a change to STEP_TRANSITIONS has to change this too.
ALLOWED = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.SKIPPED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.WAITING_FOR_APPROVAL),
    (S.RUNNING, S.SKIPPED),
    (S.WAITING_FOR_APPROVAL, S.COMPLETED),
    (S.WAITING_FOR_APPROVAL, S.FAILED),
    (S.WAITING_FOR_APPROVAL, S.SKIPPED),
    (S.FAILED, S.RUNNING),
    (S.FAILED, S.SKIPPED),
}
ALL_PAIRS = list(itertools.product(StepState, StepState))


@pytest.mark.parametrize("before,after", sorted(ALLOWED))
def test_allowed_step_transition(before: StepState, after: StepState) -> None:
    assert can_move(before, after)
    if (before, after) == (S.FAILED, S.RUNNING):
        # the one edge that starts a new attempt, and only a new one
        assert is_forward((1, before), (2, after))
        assert not is_forward((1, before), (1, after))
    else:
        assert is_forward((1, before), (1, after))
        assert not is_forward((1, before), (2, after))


@pytest.mark.parametrize("before,after", [p for p in ALL_PAIRS if p not in ALLOWED])
def test_forbidden_step_transition(before: StepState, after: StepState) -> None:
    assert not can_move(before, after)
    assert not is_forward((1, before), (1, after))
    assert not is_forward((1, before), (2, after))


def test_table_names_every_state_and_terminal_states_have_no_exit() -> None:
    assert set(STEP_TRANSITIONS) == set(StepState)
    assert STEP_TRANSITIONS[S.COMPLETED] == STEP_TRANSITIONS[S.SKIPPED] == frozenset()


@pytest.mark.parametrize(
    "before,after",
    [((2, S.RUNNING), (1, S.RUNNING)), ((1, S.FAILED), (3, S.RUNNING)), ((3, S.COMPLETED), (2, S.FAILED))],
)
def test_attempts_never_go_back_or_jump(before: Any, after: Any) -> None:
    assert not is_forward(before, after)


# ------------------------------------------------------------------ operator actions
def _wf() -> Any:
    return definition(step("a", gate={"type": "review"}), step("b"))


def _pending() -> Run:
    return Run(_wf())


def _running() -> Run:
    run = Run(_wf())
    run.do(ClaimStep("a", 1))
    return run


def _failed() -> Run:
    run = Run(_wf())
    run.run("a", error=agent_error(retryable=False))
    return run


def _queued() -> Run:
    """A retried attempt whose message is not claimed yet (state running, unclaimed)."""
    run = _failed()
    run.do(RetryStep("a", OPERATOR))
    return run


def _waiting() -> Run:
    run = Run(_wf())
    run.run("a", output={"draft": 1})
    return run


def _cancelled() -> Run:
    run = _running()
    run.do(CancelExecution(OPERATOR))
    return run


def _completed() -> Run:
    run = _waiting()
    run.do(Approve("a", MANAGER))
    run.run("b")
    return run


SCENARIOS: dict[str, Callable[[], Run]] = {
    "pending": _pending,
    "queued": _queued,
    "running": _running,
    "waiting": _waiting,
    "failed": _failed,
    "cancelled": _cancelled,
    "completed": _completed,
}
ACTIONS: dict[str, Any] = {
    "retry": RetryStep("a", OPERATOR),
    "edit_and_retry": RetryStep("a", OPERATOR, instructions="input"),
    "skip": SkipStep("a", OPERATOR),
    "force_advance": ForceAdvance("a", ADMIN),
    "approve": Approve("a", MANAGER),
    "reject": Reject("a", MANAGER, "no"),
    "review": Review("a", MANAGER, "ok", {"x": 1}, True),
    "cancel": CancelExecution(OPERATOR),
}
PERMITTED = {
    "retry": {"failed"},
    "edit_and_retry": {"failed"},
    "skip": {"failed"},
    "force_advance": {"pending", "queued", "running", "waiting"},
    "approve": {"waiting"},
    "reject": {"waiting"},
    "review": {"waiting"},
    "cancel": {"pending", "queued", "running", "waiting", "failed"},
}


@pytest.mark.parametrize("scenario,action", list(itertools.product(SCENARIOS, ACTIONS)))
def test_each_action_from_each_state(scenario: str, action: str) -> None:
    run = SCENARIOS[scenario]()
    before = run.state
    if scenario in PERMITTED[action]:
        decision = decide(before, ACTIONS[action], run.now)
        assert decision.events, decision
        assert all(e.actor for e in decision.events if e.type != "execution_completed")
    else:
        with pytest.raises(Refused) as refused:
            decide(before, ACTIONS[action], run.now)
        assert not refused.value.forbidden and not refused.value.not_found
        assert "cannot" in refused.value.message


def test_action_on_a_step_that_is_not_current_is_refused() -> None:
    run = _waiting()
    with pytest.raises(Refused, match="b: it is not the current step"):
        decide(run.state, ForceAdvance("b", ADMIN), run.now)


def test_unknown_step_is_not_found() -> None:
    with pytest.raises(Refused) as refused:
        decide(_failed().state, RetryStep("nope", OPERATOR), _failed().now)
    assert refused.value.not_found


def test_worker_commands_never_refuse_they_record_or_do_nothing() -> None:
    for name, make in SCENARIOS.items():
        run = make()
        claim = decide(run.state, ClaimStep("a", 1), run.now)
        assert not claim.events or name == "pending", name
        result = decide(run.state, RecordResult("a", 1, output=1), run.now)
        expected = "approval_requested" if name == "running" else "late_result_discarded"
        assert [e.type for e in result.events] == [expected], name


def test_a_heartbeats_due_time_is_dropped_once_the_execution_stops_running_and_kept_while_it_runs() -> None:
    run = Run(definition(step("a", timeout_seconds=3600), step("b")))
    claim_a = run.do(ClaimStep("a", 1)).events
    assert [e.due for e in claim_a] == [None]  # a claim writes no entry: the sweep re-arms for it
    run.advance(100)
    beat = run.do(Heartbeat("a", 1)).events
    assert beat[0].due == beat[0].details["lease_until"]
    assert settled_dues(beat, run.state) == beat  # running: the lease's entry is kept
    done_a = run.do(RecordResult("a", 1, output="x")).events
    claim_b = run.do(ClaimStep("b", 1)).events
    done_b = run.do(RecordResult("b", 1, output="y")).events
    assert run.state.status.value == "completed"
    settled = settled_dues(beat + done_a + claim_b + done_b, run.state)  # nothing is left to time out
    assert [e.due for e in settled] == [None] * len(settled)
    assert [e.type for e in settled] == [e.type for e in beat + done_a + claim_b + done_b]
