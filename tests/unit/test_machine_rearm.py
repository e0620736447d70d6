"""``rearm_at``: when the sweep must look at a running execution again, since claims and a
worker's hand-overs write no due entry of their own (``chalicelib/domain/rearm.py``)."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.domain.machine import (
    HANDOVER_GRACE_SECONDS,
    LEASE_SECONDS,
    Approve,
    ClaimStep,
    Heartbeat,
    RecordResult,
    RequeueStep,
    TimeOutStep,
    decide,
)
from chalicelib.domain.rearm import rearm_at
from chalicelib.domain.timefmt import parse_iso
from tests.unit.machine_kit import MANAGER, Run, agent_error, definition, step


def test_a_claimed_step_comes_due_at_its_deadline_and_a_long_one_at_its_lease() -> None:
    run = Run(definition(step("a", timeout_seconds=60), step("b", timeout_seconds=3600)))
    t0 = run.now
    run.do(ClaimStep("a", 1))
    assert rearm_at(run.state) == t0 + timedelta(seconds=60)
    run.advance(59)
    assert decide(run.state, TimeOutStep("a", 1), run.now).noop_reason == "deadline not reached"
    run.advance(1)
    assert [e.type for e in decide(run.state, TimeOutStep("a", 1), run.now).events] == ["step_timed_out"]
    run.do(RecordResult("a", 1, output="x"))
    run.do(ClaimStep("b", 1))  # chained by the worker: no message, no entry
    assert rearm_at(run.state) == run.now + timedelta(seconds=LEASE_SECONDS)


def test_a_lease_a_heartbeat_set_needs_no_re_arm_its_commit_has_the_entry() -> None:
    run = Run(definition(step("a", timeout_seconds=3600)))
    run.do(ClaimStep("a", 1))
    run.advance(100)
    beat = run.do(Heartbeat("a", 1)).events[0]
    assert beat.due == beat.details["lease_until"]
    assert rearm_at(run.state) is None
    run.do(RecordResult("a", 1, error=agent_error(retryable=True)))  # no retry policy: paused
    assert run.state.status.value == "failed" and rearm_at(run.state) is None


def test_a_queued_step_comes_due_a_grace_after_its_hand_over() -> None:
    run = Run(definition(step("a"), step("b")))
    assert rearm_at(run.state) == parse_iso(run.state.started_at) + timedelta(seconds=HANDOVER_GRACE_SECONDS)
    run.do(ClaimStep("a", 1))
    run.advance(5)
    run.do(RecordResult("a", 1, output="x"))  # the worker hands b over through SQS, with no entry
    assert rearm_at(run.state) == run.now + timedelta(seconds=HANDOVER_GRACE_SECONDS)
    run.advance(HANDOVER_GRACE_SECONDS)
    resent = run.do(RequeueStep("b", 1))
    assert resent.dispatch and resent.events[0].due is not None  # a re-send writes its own entry


def test_a_waiting_gate_or_a_finished_execution_needs_no_re_arm() -> None:
    run = Run(definition(step("a", gate={"type": "approval", "approvers": [MANAGER.name]}), step("b")))
    run.do(ClaimStep("a", 1))
    run.do(RecordResult("a", 1, output="x"))
    assert run.state.status.value == "waiting" and rearm_at(run.state) is None
    run.do(Approve("a", MANAGER))
    assert rearm_at(run.state) is not None  # running again: b's hand-over
    run.do(ClaimStep("b", 1))
    run.do(RecordResult("b", 1, output="y"))
    assert run.state.status.value == "completed" and rearm_at(run.state) is None
