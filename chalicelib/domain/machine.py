"""The execution state machine: commands and ``decide``.

An execution is the fold of its numbered events (``fold.replay``). Everything that wants
to change it, a worker with a result, an operator, the sweep, sends a *command* to
``decide(state, command, now)``, which returns the events to append and the messages to
send, or raises ``Refused`` when the state does not allow it. ``decide`` is pure: the
engine appends the events with a conditional write on the next sequence number, so a
concurrent writer makes the append fail and nothing is lost or doubled.

Events are facts (past tense); commands are requests (imperative).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

# The commands and Decision live in commands.py; they are re-exported here, where callers meet decide().
from chalicelib.domain.commands import (
    Approve,
    CancelExecution,
    ClaimStep,
    Command,
    Decision,
    Dispatch,
    ForceAdvance,
    Heartbeat,
    RecordResult,
    Reject,
    RequeueStep,
    RetryStep,
    Review,
    SkipStep,
    StartSideEffect,
    TimeOutGate,
    TimeOutStep,
)
from chalicelib.domain.fold import Actor, Event, ExecutionState, Refused, StepView, apply_events, replay
from chalicelib.domain.side_effects import RetryMode
from chalicelib.domain.side_effects import summary as side_effects_summary
from chalicelib.domain.states import ACTIVE_STATUSES, ExecutionStatus, StepState
from chalicelib.domain.timefmt import iso, parse_iso

__all__ = [
    "HANDOVER_GRACE_SECONDS",
    "LEASE_SECONDS",
    "MAX_QUEUE_DELAY",
    "MAX_REQUEUE_DOUBLINGS",
    "ROLE_RANK",
    "SYSTEM",
    "Actor",
    "Approve",
    "CancelExecution",
    "ClaimStep",
    "Command",
    "Decision",
    "Dispatch",
    "Event",
    "ExecutionState",
    "ForceAdvance",
    "Heartbeat",
    "RecordResult",
    "Refused",
    "Reject",
    "RequeueStep",
    "RetryStep",
    "Review",
    "SkipStep",
    "StartSideEffect",
    "StepView",
    "TimeOutGate",
    "TimeOutStep",
    "apply_events",
    "backoff_seconds",
    "decide",
    "may_decide",
    "not_undone",
    "replay",
    "requeue_due",
    "starter",
]

ES, SS = ExecutionStatus, StepState

#: SQS can delay a message by 15 minutes at most; longer waits go through the sweep.
MAX_QUEUE_DELAY = 900
#: A hand-over nobody claimed this long after its message was due counts as lost: the
#: sweep re-sends it (and then waits twice as long before the next re-send, up to 2**5 x).
HANDOVER_GRACE_SECONDS = 120
MAX_REQUEUE_DOUBLINGS = 5
#: A claim is a lease of this many seconds: a step with a longer time-out is kept alive by
#: its worker's heartbeats, so a worker that died is noticed within minutes, not at the deadline.
LEASE_SECONDS = 300


ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}


def decide(state: ExecutionState, command: Command, now: datetime) -> Decision:
    """Return what ``command`` does to ``state`` at ``now``; raise ``Refused`` if it may not."""
    handler = _HANDLERS[type(command)]
    return handler(state, command, iso(now), now)


def _noop(reason: str) -> Decision:
    return Decision(noop_reason=reason)


def _later(now: datetime, seconds: float) -> str:
    return iso(now + timedelta(seconds=seconds))


# ---------------------------------------------------------------- worker and sweep
def _claim(state: ExecutionState, c: ClaimStep, at: str, now: datetime) -> Decision:
    if state.status != ES.RUNNING:
        return _noop(f"execution is {state.status.value}")
    step = state.current
    if step is None or step.id != c.step_id:
        return _noop("not the current step")
    if step.attempt != c.attempt or step.claimed or step.state not in (SS.PENDING, SS.RUNNING):
        return _noop(f"attempt {c.attempt} of {c.step_id} is not waiting to run")
    if step.not_before and parse_iso(step.not_before) > now:
        wait = int((parse_iso(step.not_before) - now).total_seconds()) + 1
        return Decision(
            dispatch=(Dispatch(step.id, step.attempt, min(wait, MAX_QUEUE_DELAY)),), noop_reason="retry not due yet"
        )
    timeout = state.step_def(c.step_id).timeout_seconds
    deadline = _later(now, timeout)
    details: dict[str, Any] = {"deadline": deadline, "timeout_seconds": timeout}
    due = deadline
    if timeout > LEASE_SECONDS:
        details["lease_until"] = due = _later(now, LEASE_SECONDS)
    return Decision(events=(Event("step_started", at, c.step_id, c.attempt, details=details, due=due),))


def _heartbeat(state: ExecutionState, c: Heartbeat, at: str, now: datetime) -> Decision:
    step = state.step(c.step_id)
    if (
        not (step.state == SS.RUNNING and step.claimed and step.attempt == c.attempt)
        or state.status != ES.RUNNING
        or step.lease_until is None
    ):
        return _noop("no lease to extend")
    lease = (
        min(parse_iso(step.deadline), now + timedelta(seconds=LEASE_SECONDS))
        if step.deadline
        else now + timedelta(seconds=LEASE_SECONDS)
    )
    return Decision(
        events=(Event("step_heartbeat", at, c.step_id, c.attempt, details={"lease_until": iso(lease)}, due=iso(lease)),)
    )


def _record(state: ExecutionState, c: RecordResult, at: str, now: datetime) -> Decision:
    step = state.step(c.step_id)
    if not (step.state == SS.RUNNING and step.claimed and step.attempt == c.attempt) or state.status != ES.RUNNING:
        reason = (
            f"execution is {state.status.value}"
            if state.status != ES.RUNNING
            else f"step {c.step_id} is {step.state.value} at attempt {step.attempt}"
        )
        return Decision(
            events=(
                Event(
                    "late_result_discarded",
                    at,
                    c.step_id,
                    c.attempt,
                    details={
                        "outcome": "error" if c.error else "output",
                        "reason": reason,
                        "step_state": step.state.value,
                        "step_attempt": step.attempt,
                        "execution_status": state.status.value,
                        "summary": _summary(c.error if c.error else c.output),
                        # the calls happened even though the result came too late: the ledger keeps them
                        **_effects(c),
                    },
                ),
            )
        )
    if c.error is not None:
        return _failure(state, step, dict(c.error), "step_failed", at, now, _effects(c))
    sdef = state.step_def(c.step_id)
    usage = {"usage": dict(c.usage), **_effects(c)} if c.usage else _effects(c)
    gate = sdef.gate
    if gate is not None:
        details = {"output": c.output, "gate": gate.type, "approvers": list(gate.approvers), **usage}
        due = None
        if gate.timeout_seconds is not None:
            # the due index wakes the sweep when the gate's time is up (TimeOutGate)
            due = _later(now, gate.timeout_seconds)
            details.update(timeout_seconds=gate.timeout_seconds, on_timeout=gate.on_timeout, timeout_at=due)
        return Decision(events=(Event("approval_requested", at, c.step_id, c.attempt, details=details, due=due),))
    return _advance(
        state, step, Event("step_completed", at, c.step_id, c.attempt, details={"output": c.output, **usage}), now
    )


def _effects(c: RecordResult) -> dict[str, Any]:
    """The ``side_effects`` detail of a result event (left out when the attempt made none)."""
    return {"side_effects": [dict(e) for e in c.side_effects]} if c.side_effects else {}


def _side_effect(state: ExecutionState, c: StartSideEffect, at: str, now: datetime) -> Decision:
    """Enter a call before it is made; nothing when the attempt is no longer this worker's to run
    (cancelled, timed out, force-advanced): the worker then does not make the call."""
    step = state.step(c.step_id)
    if not (step.state == SS.RUNNING and step.claimed and step.attempt == c.attempt) or state.status != ES.RUNNING:
        reason = (
            f"execution is {state.status.value}"
            if state.status != ES.RUNNING
            else f"step {c.step_id} is {step.state.value} at attempt {step.attempt}"
        )
        return _noop(reason)
    return Decision(events=(Event("side_effect_started", at, c.step_id, c.attempt, details={"entry": dict(c.entry)}),))


def _timeout(state: ExecutionState, c: TimeOutStep, at: str, now: datetime) -> Decision:
    step = state.step(c.step_id)
    if not (step.state == SS.RUNNING and step.claimed and step.attempt == c.attempt) or state.status != ES.RUNNING:
        return _noop("step is no longer running")
    limit = state.step_def(c.step_id).timeout_seconds
    if step.deadline is not None and parse_iso(step.deadline) <= now:
        error = {
            "kind": "timeout",
            "message": f"step ran past its time limit of {limit}s",
            "retryable": True,
            "deadline": step.deadline,
        }
    elif step.lease_until is not None and parse_iso(step.lease_until) <= now:
        error = {
            "kind": "timeout",
            "retryable": True,
            "lease_until": step.lease_until,
            "message": f"the worker stopped reporting (no heartbeat since its lease ended at {step.lease_until})",
        }
    else:
        return _noop("deadline not reached")
    return _failure(state, step, error, "step_timed_out", at, now)


#: The actor of decisions nobody made: a gate's ``on_timeout``.
SYSTEM = "system"


def _gate_timeout(state: ExecutionState, c: TimeOutGate, at: str, now: datetime) -> Decision:
    """Decide a gate nobody answered in time, as its ``on_timeout`` says, for the system."""
    step = state.step(c.step_id)
    gate = state.step_def(c.step_id).gate
    if (
        state.status != ES.WAITING
        or step is not state.current
        or step.state != SS.WAITING_FOR_APPROVAL
        or step.attempt != c.attempt
        or gate is None
        or step.gate_due is None
    ):
        return _noop("gate is no longer waiting")
    if parse_iso(step.gate_due) > now:
        return _noop("gate time-out not reached")
    why = f"no decision within {gate.timeout_seconds}s (on_timeout: {gate.on_timeout})"
    marks = {"timed_out": True, "timeout_seconds": gate.timeout_seconds, "on_timeout": gate.on_timeout}
    if gate.on_timeout == "approve":
        return _advance(
            state,
            step,
            Event("approval_granted", at, step.id, step.attempt, SYSTEM, details={"comment": why, **marks}),
            now,
        )
    if gate.on_timeout == "reject":
        return Decision(
            events=(Event("approval_rejected", at, step.id, step.attempt, SYSTEM, details={"comment": why, **marks}),)
        )
    # fail: not through _failure, so no automatic retry re-runs the agent for want of a person
    error = {
        "kind": "timeout",
        "message": f"the {gate.type} gate got {why}",
        "retryable": False,
        "deadline": step.gate_due,
    }
    return Decision(
        events=(
            Event(
                "step_timed_out",
                at,
                step.id,
                step.attempt,
                SYSTEM,
                details={"error": error, "gate_timeout": True, "comment": why, **marks},
            ),
        )
    )


def requeue_due(state: ExecutionState, step: StepView) -> datetime | None:
    """When the sweep should (re-)send the message of ``step``'s queued attempt, if ever."""
    if state.status != ES.RUNNING or step is not state.current or step.claimed:
        return None
    if step.awaits_sweep and step.not_before:
        return parse_iso(step.not_before)
    since = state.handed_over_at(step)
    if since is None:
        return None
    grace = HANDOVER_GRACE_SECONDS * 2 ** min(step.requeues, MAX_REQUEUE_DOUBLINGS)
    due = parse_iso(since) + timedelta(seconds=grace)
    index = state.definition.index_of(step.id)
    prev = state.steps[index - 1] if index else None
    if (
        step.queued_at is None
        and prev is not None
        and prev.state == SS.COMPLETED
        and prev.decision is None
        and prev.deadline
    ):
        # the hot path: a worker's step_completed carries no due entry of its own (one index
        # write less per step); its step_started entry, due at its deadline, covers the hand-over
        due = min(due, parse_iso(prev.deadline))
    return due


def _requeue(state: ExecutionState, c: RequeueStep, at: str, now: datetime) -> Decision:
    step = state.step(c.step_id)
    due = requeue_due(state, step)
    if step.attempt != c.attempt or due is None:
        return _noop("step is not waiting for a message")
    if due > now:
        return _noop("message not overdue yet")
    why = "backoff over" if step.awaits_sweep else f"not claimed since {state.handed_over_at(step)}"
    next_check = HANDOVER_GRACE_SECONDS * 2 ** min(step.requeues + 1, MAX_REQUEUE_DOUBLINGS)
    return Decision(
        events=(
            Event(
                "step_requeued",
                at,
                step.id,
                step.attempt,
                details={"reason": why, "requeues": step.requeues + 1},
                due=_later(now, next_check),
            ),
        ),
        dispatch=(Dispatch(step.id, step.attempt),),
    )


def _failure(
    state: ExecutionState,
    step: StepView,
    error: dict[str, Any],
    kind: str,
    at: str,
    now: datetime,
    effects: dict[str, Any] | None = None,
) -> Decision:
    """Retry automatically while the policy allows it; otherwise pause the execution."""
    policy = state.step_def(step.id).retry
    retryable = error.get("retryable", True) and error.get("kind") in ("agent", "integration", "timeout")
    if policy and retryable and step.attempt < policy.max_attempts:
        delay = backoff_seconds(policy.backoff_seconds, step.attempt)
        retry_at = _later(now, delay)
        details: dict[str, Any] = {
            "error": error,
            "retry_at": retry_at,
            "next_attempt": step.attempt + 1,
            "max_attempts": policy.max_attempts,
            **(effects or {}),
        }
        if delay > MAX_QUEUE_DELAY:
            # SQS holds 15 minutes at most: the sweep's due index wakes the longer waits
            details["woken_by_sweep"] = True
            return Decision(events=(Event(kind, at, step.id, step.attempt, details=details, due=retry_at),))
        due = _later(now, delay + HANDOVER_GRACE_SECONDS)
        return Decision(
            events=(Event(kind, at, step.id, step.attempt, details=details, due=due),),
            dispatch=(Dispatch(step.id, step.attempt + 1, int(delay)),),
        )
    if policy and retryable:
        error = {**error, "attempts_exhausted": policy.max_attempts}
    return Decision(events=(Event(kind, at, step.id, step.attempt, details={"error": error, **(effects or {})}),))


def backoff_seconds(base: float, failed_attempt: int) -> float:
    """Exponential backoff: ``base`` after attempt 1, then twice as long after each further one."""
    return base * float(2 ** (failed_attempt - 1))


def _advance(state: ExecutionState, step: StepView, event: Event, now: datetime) -> Decision:
    """Append ``event`` (which finishes ``step``) and hand over to the next step or finish.

    A hand-over carries a due time, so that the sweep re-sends a message that got lost;
    except a worker's ``step_completed``, whose step's deadline entry already comes due.
    """
    index = state.definition.index_of(step.id)
    if index + 1 >= len(state.steps):
        return Decision(events=(event, Event("execution_completed", event.at)))
    nxt = state.steps[index + 1]
    if event.type != "step_completed":
        event = Event(
            event.type,
            event.at,
            event.step_id,
            event.attempt,
            event.actor,
            event.details,
            due=_later(now, HANDOVER_GRACE_SECONDS),
        )
    return Decision(events=(event,), dispatch=(Dispatch(nxt.id, nxt.attempt),))


# ------------------------------------------------------------------ operator actions
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


def _needs_role(actor: Actor, role: str) -> None:
    """Roles are part of the rules, so a dry run (``permissions``) sees them too."""
    if ROLE_RANK.get(actor.role, -1) < ROLE_RANK[role]:
        raise Refused(f"this needs the {role} role; key '{actor.name}' has the {actor.role} role", forbidden=True)


def _retry(state: ExecutionState, c: RetryStep, at: str, now: datetime) -> Decision:
    _needs_role(c.actor, "operator")
    step = _operator_step(state, c.step_id, "retry", {SS.FAILED})
    attempt = step.attempt + 1
    events: list[Event] = []
    if c.instructions is not None:
        events.append(
            Event(
                "instructions_edited",
                at,
                c.step_id,
                attempt,
                c.actor.name,
                details={"old_instructions": state.instructions_for(c.step_id), "new_instructions": c.instructions},
            )
        )
    events.append(
        Event(
            "step_retried",
            at,
            c.step_id,
            attempt,
            c.actor.name,
            due=_later(now, HANDOVER_GRACE_SECONDS),
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
    _needs_role(c.actor, "operator")
    step = _operator_step(state, c.step_id, "skip", {SS.FAILED})
    reason = c.reason or f"skipped by {c.actor.name}"
    return _advance(
        state,
        step,
        Event(
            "step_skipped",
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
    _needs_role(c.actor, "admin")
    step = _operator_step(state, c.step_id, "force-advance", {SS.PENDING, SS.RUNNING, SS.WAITING_FOR_APPROVAL})
    gate = step.state == SS.WAITING_FOR_APPROVAL
    details = {
        "previous_state": step.state.value,
        "implicit_approval": gate,
        "comment": c.comment,
        "reason": f"force-advanced by {c.actor.name}",
        "side_effects_before": side_effects_summary(step.side_effects),
    }
    return _advance(
        state, step, Event("step_force_advanced", at, c.step_id, step.attempt, c.actor.name, details=details), now
    )


def _cancel(state: ExecutionState, c: CancelExecution, at: str, now: datetime) -> Decision:
    _needs_role(c.actor, "operator")
    if state.status in (ES.COMPLETED, ES.CANCELLED):
        raise Refused(f"cannot cancel: the execution is {state.status.value}")
    return Decision(
        events=(
            Event(
                "execution_cancelled",
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
        {"step_id": s.id, "agent": state.step_def(s.id).agent, "summary": _summary(s.output)}
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
    if ROLE_RANK.get(actor.role, -1) < ROLE_RANK["operator"]:
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
    return _advance(
        state,
        step,
        Event("approval_granted", at, c.step_id, step.attempt, c.actor.name, details={"comment": c.comment}),
        now,
    )


def _reject(state: ExecutionState, c: Reject, at: str, now: datetime) -> Decision:
    step = _gate_step(state, c.step_id, c.actor, "reject", {"approval", "review"})
    return Decision(
        events=(Event("approval_rejected", at, c.step_id, step.attempt, c.actor.name, details={"comment": c.comment}),)
    )


def _review(state: ExecutionState, c: Review, at: str, now: datetime) -> Decision:
    step = _gate_step(state, c.step_id, c.actor, "review", {"review"})
    details: dict[str, Any] = {"comment": c.comment}
    if c.amended:
        details["amended_output"] = c.output
        details["original_output"] = step.output
    return _advance(
        state, step, Event("review_submitted", at, c.step_id, step.attempt, c.actor.name, details=details), now
    )


def _summary(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_HANDLERS: dict[type, Callable[[ExecutionState, Any, str, datetime], Decision]] = {
    ClaimStep: _claim,
    RecordResult: _record,
    StartSideEffect: _side_effect,
    TimeOutStep: _timeout,
    TimeOutGate: _gate_timeout,
    Heartbeat: _heartbeat,
    RequeueStep: _requeue,
    RetryStep: _retry,
    SkipStep: _skip,
    CancelExecution: _cancel,
    ForceAdvance: _force,
    Approve: _approve,
    Reject: _reject,
    Review: _review,
}


def is_active(status: ExecutionStatus) -> bool:
    return status in ACTIVE_STATUSES
