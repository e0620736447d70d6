"""What operators may do to an execution: retry (with edited instructions), skip,
force-advance, cancel, and decide a gate (approve, reject, review); with the role and
separation-of-duties rules they need.

These are ``decide``'s rules for the commands people send (``machine.py`` routes each
command here or to ``running.py``); ``permissions.py`` dry-runs them to tell a caller
which actions it may take now. Pure: no clock reads, no AWS.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chalicelib.domain.commands import (
    Approve,
    CancelExecution,
    Decision,
    Dispatch,
    ForceAdvance,
    Reject,
    RetryStep,
    Review,
    SkipStep,
)
from chalicelib.domain.fold import Actor, Event, ExecutionState, Refused, StepView
from chalicelib.domain.running import HANDOVER_GRACE_SECONDS, Handler, advance, later, summary
from chalicelib.domain.side_effects import RetryMode
from chalicelib.domain.side_effects import summary as side_effects_summary
from chalicelib.domain.states import ExecutionStatus, StepState
from chalicelib.domain.vocabulary import ROLE_RANK, EventType, Role

__all__ = ["OPERATOR_RULES", "may_decide", "not_undone", "starter"]

ES, SS, ET = ExecutionStatus, StepState, EventType


def _operator_step(state: ExecutionState, step_id: str, verb: str, allowed: set[StepState]) -> StepView:
    step = state.step(step_id)
    if state.status in (ES.COMPLETED, ES.CANCELLED):
        raise Refused(f"cannot {verb} {step_id}: the execution is {state.status.value}")
    needs = " or ".join(sorted(s.value for s in allowed))
    if step.state not in allowed:
        raise Refused(f"cannot {verb} {step_id}: the step is {step.state.value}, not {needs}")
    if state.current is not step:
        raise Refused(f"cannot {verb} {step_id}: it is not the current step")
    return step


def _needs_role(actor: Actor, role: Role) -> None:
    """Roles are part of the rules, so a dry run (``permissions``) sees them too."""
    if ROLE_RANK.get(actor.role, -1) < ROLE_RANK[role]:
        raise Refused(f"this needs the {role} role; key '{actor.name}' has the {actor.role} role", forbidden=True)


def _retry(state: ExecutionState, c: RetryStep, at: str, now: datetime) -> Decision:
    _needs_role(c.actor, Role.OPERATOR)
    step = _operator_step(state, c.step_id, "retry", {SS.FAILED})
    attempt = step.attempt + 1
    events: list[Event] = []
    if c.instructions is not None:
        events.append(
            Event(
                ET.INSTRUCTIONS_EDITED,
                at,
                c.step_id,
                attempt,
                c.actor.name,
                details={"old_instructions": state.instructions_for(c.step_id), "new_instructions": c.instructions},
            )
        )
    events.append(
        Event(
            ET.STEP_RETRIED,
            at,
            c.step_id,
            attempt,
            c.actor.name,
            due=later(now, HANDOVER_GRACE_SECONDS),
            details={
                "previous_error": step.error,
                "edited": c.instructions is not None,
                # the operator's choice for the calls earlier attempts made, kept in the history
                "side_effects": RetryMode(c.side_effects).value,
                "side_effects_before": side_effects_summary(step.side_effects),
            },
        )
    )
    return Decision(events=tuple(events), dispatch=(Dispatch(c.step_id, attempt),))


def _skip(state: ExecutionState, c: SkipStep, at: str, now: datetime) -> Decision:
    _needs_role(c.actor, Role.OPERATOR)
    step = _operator_step(state, c.step_id, "skip", {SS.FAILED})
    reason = c.reason or f"skipped by {c.actor.name}"
    return advance(
        state,
        step,
        Event(
            ET.STEP_SKIPPED,
            at,
            c.step_id,
            step.attempt,
            c.actor.name,
            details={
                "reason": reason,
                "comment": c.reason,
                "previous_error": step.error,
                "side_effects_before": side_effects_summary(step.side_effects),
            },
        ),
        now,
    )


def _force(state: ExecutionState, c: ForceAdvance, at: str, now: datetime) -> Decision:
    _needs_role(c.actor, Role.ADMIN)
    step = _operator_step(state, c.step_id, "force-advance", {SS.PENDING, SS.RUNNING, SS.WAITING_FOR_APPROVAL})
    gate = step.state == SS.WAITING_FOR_APPROVAL
    details = {
        "previous_state": step.state.value,
        "implicit_approval": gate,
        "comment": c.comment,
        "reason": f"force-advanced by {c.actor.name}",
        "side_effects_before": side_effects_summary(step.side_effects),
    }
    return advance(
        state, step, Event(ET.STEP_FORCE_ADVANCED, at, c.step_id, step.attempt, c.actor.name, details=details), now
    )


def _cancel(state: ExecutionState, c: CancelExecution, at: str, now: datetime) -> Decision:
    _needs_role(c.actor, Role.OPERATOR)
    if state.status in (ES.COMPLETED, ES.CANCELLED):
        raise Refused(f"cannot cancel: the execution is {state.status.value}")
    return Decision(
        events=(
            Event(
                ET.EXECUTION_CANCELLED,
                at,
                actor=c.actor.name,
                details={
                    "reason": c.reason,
                    "previous_status": state.status.value,
                    "not_undone": not_undone(state),
                    "stopped_steps": [s.id for s in state.steps if s.state in (SS.RUNNING, SS.WAITING_FOR_APPROVAL)],
                    # what the steps did elsewhere (failed and running ones too): cancelling undoes none of it
                    "side_effects_not_undone": [
                        {"step_id": s.id, "summary": side_effects_summary(s.side_effects)}
                        for s in state.steps
                        if side_effects_summary(s.side_effects)
                    ],
                },
            ),
        )
    )


def not_undone(state: ExecutionState) -> list[dict[str, Any]]:
    """Completed steps whose side effects stay: agent and a short summary of each output."""
    return [
        {"step_id": s.id, "agent": state.step_def(s.id).agent, "summary": summary(s.output)}
        for s in state.steps
        if s.state == SS.COMPLETED
    ]


def _gate_step(state: ExecutionState, step_id: str, actor: Actor, verb: str, gate_types: set[str]) -> StepView:
    step = _operator_step(state, step_id, verb, {SS.WAITING_FOR_APPROVAL})
    gate = state.step_def(step_id).gate
    if gate is None or gate.type not in gate_types:
        raise Refused(f"cannot {verb} {step_id}: its gate is {gate.type if gate else 'absent'}")
    if not may_decide(gate.approvers, actor):
        raise Refused(
            f"key '{actor.name}' is not an approver of {step_id} (approvers: {', '.join(gate.approvers)})",
            forbidden=True,
        )
    if gate.separate_from_starter and actor.name == starter(state):
        raise Refused(
            f"separation of duties: the gate of {step_id} is separate_from_starter, and key "
            f"'{actor.name}' started this execution; another approver must {verb} it",
            forbidden=True,
        )
    return step


def starter(state: ExecutionState) -> str | None:
    """The key that started the execution (a manual start over REST, /tools or MCP); None for
    events and schedules, which no key started."""
    by = state.trigger.get("by")
    return by if isinstance(by, str) else None


def may_decide(approvers: Sequence[str], actor: Actor) -> bool:
    """An approver is named by key name or by role; a role admits every higher role."""
    if ROLE_RANK.get(actor.role, -1) < ROLE_RANK[Role.OPERATOR]:
        return False
    if not approvers:
        return True
    for entry in approvers:
        if entry == actor.name:
            return True
        if entry in ROLE_RANK and ROLE_RANK[actor.role] >= ROLE_RANK[entry]:
            return True
    return False


def _approve(state: ExecutionState, c: Approve, at: str, now: datetime) -> Decision:
    step = _gate_step(state, c.step_id, c.actor, "approve", {"approval", "review"})
    return advance(
        state,
        step,
        Event(ET.APPROVAL_GRANTED, at, c.step_id, step.attempt, c.actor.name, details={"comment": c.comment}),
        now,
    )


def _reject(state: ExecutionState, c: Reject, at: str, now: datetime) -> Decision:
    step = _gate_step(state, c.step_id, c.actor, "reject", {"approval", "review"})
    return Decision(
        events=(Event(ET.APPROVAL_REJECTED, at, c.step_id, step.attempt, c.actor.name, details={"comment": c.comment}),)
    )


def _review(state: ExecutionState, c: Review, at: str, now: datetime) -> Decision:
    step = _gate_step(state, c.step_id, c.actor, "review", {"review"})
    details: dict[str, Any] = {"comment": c.comment}
    if c.amended:
        details["amended_output"] = c.output
        details["original_output"] = step.output
    return advance(
        state, step, Event(ET.REVIEW_SUBMITTED, at, c.step_id, step.attempt, c.actor.name, details=details), now
    )


OPERATOR_RULES: dict[type, Handler] = {
    RetryStep: _retry,
    SkipStep: _skip,
    CancelExecution: _cancel,
    ForceAdvance: _force,
    Approve: _approve,
    Reject: _reject,
    Review: _review,
}
