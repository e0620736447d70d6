"""What each operator action, gate decision, timeout and automatic retry does to an execution."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.machine import (
    HANDOVER_GRACE_SECONDS,
    MAX_QUEUE_DELAY,
    Actor,
    Approve,
    CancelExecution,
    ClaimStep,
    Dispatch,
    ForceAdvance,
    RecordResult,
    Refused,
    Reject,
    RequeueStep,
    RetryStep,
    Review,
    SkipStep,
    TimeOutStep,
    backoff_seconds,
    decide,
    may_decide,
)
from chalicelib.domain.states import ExecutionStatus as ES
from chalicelib.domain.states import StepState as S
from chalicelib.domain.timefmt import iso, parse_iso
from tests.unit.machine_kit import ADMIN, MANAGER, OPERATOR, VIEWER, Run, agent_error, definition, step


def three() -> Run:
    return Run(definition(step("a"), step("b"), step("c")))


# ------------------------------------------------------------------ retry and edit
def test_retry_starts_a_new_visible_attempt_and_hands_it_over() -> None:
    run = three()
    run.run("a", error=agent_error(retryable=False))
    assert run.state.status == ES.FAILED
    decision = run.do(RetryStep("a", OPERATOR))
    a = run.view("a")
    assert (a.attempt, a.state, a.claimed) == (2, S.RUNNING, False)
    assert decision.dispatch == (Dispatch("a", 2),)
    retried = decision.events[-1]
    assert (retried.type, retried.actor, retried.attempt) == ("step_retried", "olivia", 2)
    assert retried.details["previous_error"]["message"] == "it broke"
    assert retried.due is not None, "a lost retry message must come due in the sweep"
    assert run.state.status == ES.RUNNING
    run.run("a", attempt=2)
    assert run.view("a").state == S.COMPLETED


def test_edit_and_retry_keeps_old_and_new_instructions_and_leaves_definition_alone() -> None:
    run = three()
    run.run("a", error=agent_error(retryable=False))
    run.do(RetryStep("a", OPERATOR, instructions="input.n"))
    edited = run.events[-2]
    assert edited.type == "instructions_edited"
    assert (edited.actor, edited.details["old_instructions"], edited.details["new_instructions"]) == (
        "olivia",
        "prev",
        "input.n",
    )
    assert run.state.instructions_for("a") == "input.n"
    assert run.definition.step("a").instructions == "prev"
    # a second edit records the first edit as the old text
    run.run("a", attempt=2, error=agent_error(retryable=False))
    run.do(RetryStep("a", ADMIN, instructions="input"))
    assert run.events[-2].details["old_instructions"] == "input.n"


def test_retry_with_same_attempt_twice_second_is_refused() -> None:
    run = three()
    run.run("a", error=agent_error(retryable=False))
    state = run.state
    decide(state, RetryStep("a", OPERATOR), run.now)
    run.do(RetryStep("a", OPERATOR))
    with pytest.raises(Refused, match="the step is running"):
        run.do(RetryStep("a", MANAGER))


# ------------------------------------------------------------------------- skip
def test_skip_moves_on_and_next_step_sees_no_previous_output() -> None:
    run = three()
    run.run("a", error=agent_error(retryable=False))
    decision = run.do(SkipStep("a", OPERATOR, "upstream is down"))
    a = run.view("a")
    assert (a.state, a.skip_reason) == (S.SKIPPED, "upstream is down")
    assert a.decision["decision"] == "skipped" and a.decision["by"] == "olivia"
    assert decision.dispatch == (Dispatch("b", 1),)
    context = run.state.context_for("b")
    assert "prev" not in context and "a" not in context["steps"]


def test_skipping_the_last_step_completes_the_execution() -> None:
    run = Run(definition(step("a")))
    run.run("a", error=agent_error(retryable=False))
    run.do(SkipStep("a", OPERATOR))
    assert run.types()[-2:] == ["step_skipped", "execution_completed"]
    assert run.state.status == ES.COMPLETED
    assert run.view("a").skip_reason == "skipped by olivia"


# ----------------------------------------------------------------------- cancel
def test_cancel_stops_running_step_keeps_completed_and_lists_what_was_not_undone() -> None:
    run = Run(
        definition(
            step("a", instructions="input"),
            {"id": "b", "agent": "http", "config": {"url": "https://x.example/"}},
            step("c"),
        )
    )
    run.run("a", output={"note": "CN-1"})
    run.do(ClaimStep("b", 1))
    decision = run.do(CancelExecution(OPERATOR, "customer called"))
    state = run.state
    assert state.status == ES.CANCELLED and state.ended_at == iso(run.now)
    assert [s.state for s in state.steps] == [S.COMPLETED, S.SKIPPED, S.PENDING]
    assert state.step("a").output == {"note": "CN-1"}
    details = decision.events[0].details
    assert details["not_undone"] == [{"step_id": "a", "agent": "transform", "summary": '{"note": "CN-1"}'}]
    assert details["stopped_steps"] == ["b"] and details["reason"] == "customer called"
    # pending steps never run; the running agent's result is discarded and recorded
    assert not decide(state, ClaimStep("c", 1), run.now).events
    late = run.do(RecordResult("b", 1, output={"posted": True})).events
    assert [e.type for e in late] == ["late_result_discarded"]
    assert late[0].details["execution_status"] == "cancelled"
    assert run.state.step("b").state == S.SKIPPED


def test_cancel_of_a_failed_execution_is_allowed() -> None:
    run = three()
    run.run("a", error=agent_error(retryable=False))
    run.do(CancelExecution(OPERATOR))
    assert run.state.status == ES.CANCELLED
    assert run.view("a").state == S.FAILED


# ---------------------------------------------------------------- force-advance
def test_force_advance_of_running_step_skips_it_and_discards_its_late_result() -> None:
    run = three()
    run.do(ClaimStep("a", 1))
    decision = run.do(ForceAdvance("a", ADMIN, "agent hangs"))
    a = run.view("a")
    assert (a.state, a.skip_reason) == (S.SKIPPED, "force-advanced by root")
    assert a.decision == {
        "decision": "force-advanced",
        "by": "root",
        "at": iso(run.now),
        "attempt": 1,
        "comment": "agent hangs",
    }
    assert decision.dispatch == (Dispatch("b", 1),)
    late = run.do(RecordResult("a", 1, output="finally"))
    assert [e.type for e in late.events] == ["late_result_discarded"]
    assert "skipped" in late.events[0].details["reason"]
    assert run.view("a").output is None


def test_force_advance_of_a_gate_is_an_implicit_approval() -> None:
    run = Run(definition(step("a", gate={"type": "approval", "approvers": ["manager-key"]}), step("b")))
    run.run("a", output={"amount": 3})
    run.do(ForceAdvance("a", ADMIN))
    a = run.view("a")
    assert a.state == S.COMPLETED and a.output == {"amount": 3}
    assert a.decision["decision"] == "approved" and a.decision["implicit"] is True and a.decision["by"] == "root"
    assert run.state.context_for("b")["prev"] == {"amount": 3}


def test_force_advance_of_a_pending_step_then_its_message_does_nothing() -> None:
    run = three()
    run.do(ForceAdvance("a", ADMIN))
    assert run.view("a").state == S.SKIPPED
    assert decide(run.state, ClaimStep("a", 1), run.now).noop_reason == "not the current step"


def test_force_advance_needs_admin() -> None:
    run = three()
    with pytest.raises(Refused) as refused:
        run.do(ForceAdvance("a", OPERATOR))
    assert refused.value.forbidden


# ------------------------------------------------------------------------ gates
def gated(kind: str = "approval", approvers: list[str] | None = None) -> Run:
    gate = {"type": kind, **({"approvers": approvers} if approvers is not None else {})}
    run = Run(definition(step("a", gate=gate), step("b")))
    run.run("a", output={"draft": "v1"})
    return run


def test_gate_waits_then_approval_records_who_when_why_and_continues() -> None:
    run = gated(approvers=["manager-key"])
    assert run.state.status == ES.WAITING and run.view("a").state == S.WAITING_FOR_APPROVAL
    run.advance(60)
    decision = run.do(Approve("a", MANAGER, "looks right"))
    a = run.view("a")
    assert a.state == S.COMPLETED
    assert a.decision == {
        "decision": "approved",
        "by": "manager-key",
        "at": iso(run.now),
        "attempt": 1,
        "comment": "looks right",
    }
    assert a.comments == [
        {"by": "manager-key", "at": iso(run.now), "attempt": 1, "decision": "approved", "text": "looks right"}
    ]
    assert decision.dispatch == (Dispatch("b", 1),) and run.state.status == ES.RUNNING


def test_rejection_fails_the_step_with_the_reason_and_allows_retry() -> None:
    run = gated()
    run.do(Reject("a", OPERATOR, "wrong customer"))
    a = run.view("a")
    assert a.state == S.FAILED and run.state.status == ES.FAILED
    assert a.error == {"kind": "rejected", "message": "rejected by olivia: wrong customer"}
    assert a.decision["decision"] == "rejected"
    run.do(RetryStep("a", OPERATOR, instructions="input"))
    run.run("a", attempt=2, output={"draft": "v2"})
    assert run.view("a").state == S.WAITING_FOR_APPROVAL and run.view("a").attempt == 2
    run.do(Approve("a", OPERATOR, "better"))
    assert [c["decision"] for c in run.view("a").comments] == ["rejected", "approved"]
    assert [c["attempt"] for c in run.view("a").comments] == [1, 2]


def test_rejection_is_never_retried_automatically() -> None:
    run = Run(definition(step("a", gate={"type": "approval"}, retry={"max_attempts": 5, "backoff_seconds": 0})))
    run.run("a")
    decision = run.do(Reject("a", OPERATOR, "no"))
    assert not decision.dispatch and run.state.status == ES.FAILED


def test_review_amends_the_output_the_next_step_receives_and_keeps_the_original() -> None:
    run = gated("review")
    run.do(Review("a", OPERATOR, "fixed the total", {"draft": "v1", "total": 10}, amended=True))
    a = run.view("a")
    assert a.output == {"draft": "v1", "total": 10} and a.original_output == {"draft": "v1"}
    assert a.has_original_output and a.decision["decision"] == "reviewed" and a.decision["amended"] is True
    assert run.state.context_for("b")["prev"] == {"draft": "v1", "total": 10}
    assert run.events[-1].details["original_output"] == {"draft": "v1"}


def test_review_without_amendment_keeps_the_output() -> None:
    run = gated("review")
    run.do(Review("a", OPERATOR, "fine"))
    assert run.view("a").output == {"draft": "v1"} and not run.view("a").has_original_output


def test_review_of_an_approval_gate_is_refused() -> None:
    with pytest.raises(Refused, match="its gate is approval"):
        gated("approval").do(Review("a", OPERATOR, "x", 1, amended=True))


@pytest.mark.parametrize(
    "approvers,actor,allowed",
    [
        ([], OPERATOR, True),
        ([], VIEWER, False),
        ([], ADMIN, True),
        (["manager-key"], MANAGER, True),
        (["manager-key"], OPERATOR, False),
        (["admin"], OPERATOR, False),
        (["admin"], ADMIN, True),
        (["operator"], ADMIN, True),
        (["victor"], VIEWER, False),
        (["finance", "manager-key"], MANAGER, True),
    ],
)
def test_who_may_decide_a_gate(approvers: list[str], actor: Actor, allowed: bool) -> None:
    assert may_decide(approvers, actor) is allowed
    run = gated(approvers=approvers)
    if allowed:
        run.do(Approve("a", actor))
        assert run.view("a").decision["by"] == actor.name
    else:
        with pytest.raises(Refused) as refused:
            run.do(Approve("a", actor))
        assert refused.value.forbidden


# --------------------------------------------------------------------- timeouts
def test_default_time_limit_and_timeout_after_the_deadline_only() -> None:
    run = three()
    assert run.definition.step("a").timeout_seconds == 300
    started = run.do(ClaimStep("a", 1)).events[0]
    assert started.details["deadline"] == iso(run.now + timedelta(seconds=300))
    assert started.due is None, "a claim writes no index entry: the sweep re-arms for its deadline"
    run.advance(299)
    assert decide(run.state, TimeOutStep("a", 1), run.now).noop_reason == "deadline not reached"
    run.advance(1)
    run.do(TimeOutStep("a", 1))
    a = run.view("a")
    assert a.state == S.FAILED and a.error["kind"] == "timeout"
    assert a.error["message"] == "step ran past its time limit of 300s"
    assert run.state.status == ES.FAILED
    # the agent that finally answers is too late
    assert run.do(RecordResult("a", 1, output="x")).events[0].type == "late_result_discarded"


def test_timeout_of_a_stale_attempt_does_nothing() -> None:
    run = three()
    run.run("a", error=agent_error(retryable=False))
    run.do(RetryStep("a", OPERATOR))
    run.advance(10_000)
    assert not decide(run.state, TimeOutStep("a", 1), run.now).events


# -------------------------------------------------------------- automatic retry
@pytest.mark.parametrize("base,attempt,expected", [(5, 1, 5), (5, 2, 10), (5, 3, 20), (0, 4, 0), (0.5, 2, 1.0)])
def test_backoff_doubles_after_each_failed_attempt(base: float, attempt: int, expected: float) -> None:
    assert backoff_seconds(base, attempt) == expected


def test_retryable_errors_are_retried_with_growing_delays_and_only_the_last_pauses() -> None:
    run = Run(definition(step("a", retry={"max_attempts": 3, "backoff_seconds": 5}), step("b")))
    first = run.run("a", attempt=1, error=agent_error())
    assert first.dispatch == (Dispatch("a", 2, 5),)
    assert run.state.status == ES.RUNNING
    assert run.view("a").not_before == iso(run.now + timedelta(seconds=5))
    # a message that arrives early is put back with the rest of the delay
    early = decide(run.state, ClaimStep("a", 2), run.now)
    assert not early.events and early.dispatch == (Dispatch("a", 2, 6),)
    run.advance(5)
    second = run.run("a", attempt=2, error=agent_error(kind="integration"))
    assert second.dispatch == (Dispatch("a", 3, 10),)
    run.advance(10)
    last = run.run("a", attempt=3, error=agent_error())
    assert not last.dispatch and run.state.status == ES.FAILED
    assert run.view("a").error["attempts_exhausted"] == 3


def test_non_retryable_error_pauses_at_once() -> None:
    run = Run(definition(step("a", retry={"max_attempts": 3, "backoff_seconds": 1})))
    run.run("a", error=agent_error(retryable=False))
    assert run.state.status == ES.FAILED and run.view("a").attempt == 1


def test_timeouts_are_retried_automatically() -> None:
    run = Run(definition(step("a", timeout_seconds=30, retry={"max_attempts": 2, "backoff_seconds": 0})))
    run.do(ClaimStep("a", 1))
    run.advance(31)
    decision = run.do(TimeOutStep("a", 1))
    assert decision.dispatch == (Dispatch("a", 2, 0),)
    assert (run.view("a").attempt, run.view("a").state) == (2, S.RUNNING)


def test_backoff_longer_than_sqs_allows_is_woken_by_the_sweep() -> None:
    run = Run(definition(step("a", retry={"max_attempts": 2, "backoff_seconds": 3600})))
    decision = run.run("a", error=agent_error())
    failed = decision.events[0]
    assert not decision.dispatch, "SQS cannot hold a message for an hour"
    assert failed.due == failed.details["retry_at"] == iso(run.now + timedelta(seconds=3600))
    assert MAX_QUEUE_DELAY < 3600
    run.advance(3599)
    assert decide(run.state, RequeueStep("a", 2), run.now).noop_reason == "message not overdue yet"
    run.advance(1)
    woken = run.do(RequeueStep("a", 2))
    assert woken.dispatch == (Dispatch("a", 2),)
    assert woken.events[0].details["reason"] == "backoff over"
    run.run("a", attempt=2, output="ok")
    assert run.state.status == ES.COMPLETED


# ---------------------------------------------------------- lost messages
def test_every_hand_over_comes_due_so_a_lost_message_is_resent() -> None:
    run = three()
    run.run("a", error=agent_error(retryable=False))
    retried = run.do(RetryStep("a", OPERATOR)).events[-1]
    assert parse_iso(retried.due) == run.now + timedelta(seconds=HANDOVER_GRACE_SECONDS)
    run.advance(HANDOVER_GRACE_SECONDS - 1)
    assert not decide(run.state, RequeueStep("a", 2), run.now).events
    run.advance(1)
    resent = run.do(RequeueStep("a", 2))
    assert resent.dispatch == (Dispatch("a", 2),)
    assert parse_iso(resent.events[0].due) == run.now + timedelta(seconds=2 * HANDOVER_GRACE_SECONDS)
    # lost again: the next re-send waits twice as long
    run.advance(2 * HANDOVER_GRACE_SECONDS - 1)
    assert not decide(run.state, RequeueStep("a", 2), run.now).events
    run.advance(1)
    assert run.do(RequeueStep("a", 2)).events[0].details["requeues"] == 2
    run.run("a", attempt=2)
    assert run.view("a").state == S.COMPLETED and run.view("a").requeues == 0


def test_a_worker_hand_over_writes_no_entry_and_comes_due_after_its_grace() -> None:
    run = Run(definition(step("a", timeout_seconds=600), step("b")))
    run.do(ClaimStep("a", 1))
    run.advance(10)
    completed = run.do(RecordResult("a", 1, output="x")).events[0]
    assert completed.due is None, "the hot path writes no extra index entry"
    run.advance(HANDOVER_GRACE_SECONDS - 1)  # a message this young is not lost yet, whatever a's deadline
    assert decide(run.state, RequeueStep("b", 1), run.now).noop_reason == "message not overdue yet"
    run.advance(1)
    assert run.do(RequeueStep("b", 1)).dispatch == (Dispatch("b", 1),)


def test_requeue_of_a_claimed_or_finished_step_does_nothing() -> None:
    run = three()
    run.do(ClaimStep("a", 1))
    run.advance(10_000)
    assert not decide(run.state, RequeueStep("a", 1), run.now).events
    run.do(CancelExecution(OPERATOR))
    assert not decide(run.state, RequeueStep("b", 1), run.now).events
