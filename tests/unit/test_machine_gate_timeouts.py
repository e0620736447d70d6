"""A gate's ``timeout_seconds`` and ``on_timeout``, decided by ``TimeOutGate`` in the pure machine."""

from __future__ import annotations

from chalicelib.domain.machine import Approve, TimeOutGate
from chalicelib.domain.states import ExecutionStatus as ES
from chalicelib.domain.states import StepState as S
from tests.unit.machine_kit import MANAGER, Run, definition, step


def gated(on_timeout: str) -> Run:
    gate = {"type": "approval", "timeout_seconds": 600, "on_timeout": on_timeout}
    run = Run(definition(step("a"), step("g", gate=gate), step("c")))
    run.run("a")
    run.run("g")
    return run


def test_the_waiting_gate_carries_its_due_time_on_the_due_index() -> None:
    run = gated("fail")
    requested = run.events[-1]
    assert requested.type == "approval_requested" and requested.due == requested.details["timeout_at"]
    assert run.view("g").gate_due == requested.due and run.state.status == ES.WAITING


def test_nothing_happens_before_the_time_is_up() -> None:
    run = gated("approve")
    run.advance(599)
    decision = run.do(TimeOutGate("g", 1))
    assert decision.events == () and decision.noop_reason == "gate time-out not reached"


def test_fail_fails_the_step_as_a_timeout_decided_by_the_system_without_retry() -> None:
    run = gated("fail")
    run.advance(600)
    decision = run.do(TimeOutGate("g", 1))
    (event,) = decision.events
    assert (event.type, event.actor) == ("step_timed_out", "system") and decision.dispatch == ()
    g = run.view("g")
    assert g.state == S.FAILED and g.error["kind"] == "timeout" and g.error["retryable"] is False
    assert g.decision["by"] == "system" and run.state.status == ES.FAILED


def test_approve_goes_on_and_reject_fails_both_as_the_system() -> None:
    approved = gated("approve")
    approved.advance(601)
    decision = approved.do(TimeOutGate("g", 1))
    assert [(e.type, e.actor) for e in decision.events] == [("approval_granted", "system")]
    assert decision.dispatch and approved.view("g").state == S.COMPLETED
    rejected = gated("reject")
    rejected.advance(601)
    rejected.do(TimeOutGate("g", 1))
    assert rejected.view("g").error["kind"] == "rejected" and rejected.view("g").decision["by"] == "system"


def test_a_decided_gate_is_left_alone() -> None:
    run = gated("reject")
    run.do(Approve("g", MANAGER))
    run.advance(3600)
    assert run.do(TimeOutGate("g", 1)).noop_reason == "gate is no longer waiting"
