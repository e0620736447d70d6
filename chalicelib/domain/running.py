"""What the worker and the sweep may do to an execution: claim, heartbeat, record a result,
time a step or a gate out, re-send a lost hand-over; and how a failure retries or pauses.

These are ``decide``'s rules for the commands no person sends (``machine.py`` routes each
command here or to ``operating.py``). Pure: no clock reads (``now`` is passed), no AWS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.budget_gate import budget_pause
from chalicelib.domain.commands import (
    ClaimStep,
    Decision,
    Dispatch,
    Heartbeat,
    RecordResult,
    RequeueStep,
    StartSideEffect,
    TimeOutGate,
    TimeOutStep,
)
from chalicelib.domain.fold import Event, ExecutionState, StepView
from chalicelib.domain.states import ExecutionStatus, StepState
from chalicelib.domain.timefmt import iso, parse_iso
from chalicelib.domain.vocabulary import ErrorKind, EventType

__all__ = [
    "HANDOVER_GRACE_SECONDS",
    "LEASE_SECONDS",
    "MAX_QUEUE_DELAY",
    "MAX_REQUEUE_DOUBLINGS",
    "RUNNING_RULES",
    "SYSTEM",
    "Handler",
    "advance",
    "backoff_seconds",
    "later",
    "requeue_due",
    "settled_dues",
    "summary",
]

ES, SS, ET = ExecutionStatus, StepState, EventType

#: A rule: what a command does to a folded execution at ``now`` (``at`` is ``now`` as text).
Handler = Callable[[ExecutionState, Any, str, datetime], Decision]

#: SQS can delay a message by 15 minutes at most; longer waits go through the sweep.
MAX_QUEUE_DELAY = 900
#: A hand-over nobody claimed this long after its message was due counts as lost: the
#: sweep re-sends it (and then waits twice as long before the next re-send, up to 2**5 x).
HANDOVER_GRACE_SECONDS = 120
MAX_REQUEUE_DOUBLINGS = 5
#: A claim is a lease of this many seconds: a step with a longer time-out is kept alive by
#: its worker's heartbeats, so a worker that died is noticed within minutes, not at the deadline.
LEASE_SECONDS = 300


def _noop(reason: str) -> Decision:
    return Decision(noop_reason=reason)


def later(now: datetime, seconds: float) -> str:
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
    details: dict[str, Any] = {"deadline": later(now, timeout), "timeout_seconds": timeout}
    if timeout > LEASE_SECONDS:
        details["lease_until"] = later(now, LEASE_SECONDS)
    # no due time: the entry that brought the step here (a hand-over's, or the sweep's re-arm)
    # comes due first, and the sweep then re-arms for this claim's deadline or lease (rearm.py)
    return Decision(events=(Event(ET.STEP_STARTED, at, c.step_id, c.attempt, details=details),))


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
        events=(
            Event(ET.STEP_HEARTBEAT, at, c.step_id, c.attempt, details={"lease_until": iso(lease)}, due=iso(lease)),
        )
    )


def _record(state: ExecutionState, c: RecordResult, at: str, now: datetime) -> Decision:
    step = state.step(c.step_id)
    # every attempt's model usage and side effects are kept with its outcome, failed and late ones
    # too: the money was spent and the calls happened
    usage = {"usage": dict(c.usage), **_effects(c)} if c.usage else _effects(c)
    if not (step.state == SS.RUNNING and step.claimed and step.attempt == c.attempt) or state.status != ES.RUNNING:
        reason = (
            f"execution is {state.status.value}"
            if state.status != ES.RUNNING
            else f"step {c.step_id} is {step.state.value} at attempt {step.attempt}"
        )
        return Decision(
            events=(
                Event(
                    ET.LATE_RESULT_DISCARDED,
                    at,
                    c.step_id,
                    c.attempt,
                    details={
                        "outcome": "error" if c.error else "output",
                        "reason": reason,
                        "step_state": step.state.value,
                        "step_attempt": step.attempt,
                        "execution_status": state.status.value,
                        "summary": summary(c.error if c.error else c.output),
                        **usage,
                    },
                ),
            )
        )
    if c.error is not None:
        # a model step stopped at its execution's budget waits at a budget gate when the budget says pause
        paused = budget_pause(state, step, c, at)
        return paused or _failure(state, step, dict(c.error), ET.STEP_FAILED, at, now, usage)
    sdef = state.step_def(c.step_id)
    gate = sdef.gate
    if gate is not None:
        details = {"output": c.output, "gate": gate.type, "approvers": list(gate.approvers), **usage}
        due = None
        if gate.timeout_seconds is not None:
            # the due index wakes the sweep when the gate's time is up (TimeOutGate)
            due = later(now, gate.timeout_seconds)
            details.update(timeout_seconds=gate.timeout_seconds, on_timeout=gate.on_timeout, timeout_at=due)
        return Decision(events=(Event(ET.APPROVAL_REQUESTED, at, c.step_id, c.attempt, details=details, due=due),))
    return advance(
        state, step, Event(ET.STEP_COMPLETED, at, c.step_id, c.attempt, details={"output": c.output, **usage}), now
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
    return Decision(events=(Event(ET.SIDE_EFFECT_STARTED, at, c.step_id, c.attempt, details={"entry": dict(c.entry)}),))


def _timeout(state: ExecutionState, c: TimeOutStep, at: str, now: datetime) -> Decision:
    step = state.step(c.step_id)
    if not (step.state == SS.RUNNING and step.claimed and step.attempt == c.attempt) or state.status != ES.RUNNING:
        return _noop("step is no longer running")
    limit = state.step_def(c.step_id).timeout_seconds
    if step.deadline is not None and parse_iso(step.deadline) <= now:
        error = {
            "kind": ErrorKind.TIMEOUT,
            "message": f"step ran past its time limit of {limit}s",
            "retryable": True,
            "deadline": step.deadline,
        }
    elif step.lease_until is not None and parse_iso(step.lease_until) <= now:
        error = {
            "kind": ErrorKind.TIMEOUT,
            "retryable": True,
            "lease_until": step.lease_until,
            "message": f"the worker stopped reporting (no heartbeat since its lease ended at {step.lease_until})",
        }
    else:
        return _noop("deadline not reached")
    return _failure(state, step, error, ET.STEP_TIMED_OUT, at, now)


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
        return advance(
            state,
            step,
            Event(ET.APPROVAL_GRANTED, at, step.id, step.attempt, SYSTEM, details={"comment": why, **marks}),
            now,
        )
    if gate.on_timeout == "reject":
        return Decision(
            events=(Event(ET.APPROVAL_REJECTED, at, step.id, step.attempt, SYSTEM, details={"comment": why, **marks}),)
        )
    # fail: not through _failure, so no automatic retry re-runs the agent for want of a person
    error = {
        "kind": ErrorKind.TIMEOUT,
        "message": f"the {gate.type} gate got {why}",
        "retryable": False,
        "deadline": step.gate_due,
    }
    return Decision(
        events=(
            Event(
                ET.STEP_TIMED_OUT,
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
    return parse_iso(since) + timedelta(seconds=grace)


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
                ET.STEP_REQUEUED,
                at,
                step.id,
                step.attempt,
                details={"reason": why, "requeues": step.requeues + 1},
                due=later(now, next_check),
            ),
        ),
        dispatch=(Dispatch(step.id, step.attempt),),
    )


def _failure(
    state: ExecutionState,
    step: StepView,
    error: dict[str, Any],
    kind: EventType,
    at: str,
    now: datetime,
    effects: dict[str, Any] | None = None,
) -> Decision:
    """Retry automatically while the policy allows it; otherwise pause the execution.

    Whether a new attempt may help is the error's own ``retryable`` flag (the agent, or the
    rule that made the error, knows), never a list of kinds here: an error without the flag
    is not retried."""
    policy = state.step_def(step.id).retry
    retryable = error.get("retryable") is True
    if policy and retryable and step.attempt < policy.max_attempts:
        delay = backoff_seconds(policy.backoff_seconds, step.attempt)
        retry_at = later(now, delay)
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
        due = later(now, delay + HANDOVER_GRACE_SECONDS)
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


def advance(state: ExecutionState, step: StepView, event: Event, now: datetime) -> Decision:
    """Append ``event`` (which finishes ``step``) and hand over to the next step or finish.

    A hand-over carries a due time, so that the sweep re-sends a message that got lost;
    except a worker's ``step_completed``: the execution's pending entry comes due first (a
    running execution always has one), and the sweep then re-arms for the hand-over's grace.
    """
    index = state.definition.index_of(step.id)
    if index + 1 >= len(state.steps):
        return Decision(events=(event, Event(ET.EXECUTION_COMPLETED, event.at)))
    nxt = state.steps[index + 1]
    if event.type != ET.STEP_COMPLETED:
        event = Event(
            event.type,
            event.at,
            event.step_id,
            event.attempt,
            event.actor,
            event.details,
            due=later(now, HANDOVER_GRACE_SECONDS),
        )
    return Decision(events=(event,), dispatch=(Dispatch(nxt.id, nxt.attempt),))


#: Events whose due time is the lease of a claim (``TimeOutStep`` then): a claim itself
#: (``step_started``) has none, its heartbeats do.
_CLAIM_DUES = (ET.STEP_HEARTBEAT,)


def settled_dues(events: tuple[Event, ...], after: ExecutionState) -> tuple[Event, ...]:
    """``events`` without the due times nobody will need once they are committed.

    A commit item carries the due entry of its last event that has one (one index write).
    Once the execution has stopped running (completed, waiting, paused on a failure,
    cancelled) nothing of a claim is left to time out, so the entries of heartbeats are
    dropped. Other due times (a gate's time-out, a retry woken by the sweep) are kept.
    """
    if after.status == ES.RUNNING or not any(e.due and e.type in _CLAIM_DUES for e in events):
        return events
    return tuple(replace(e, due=None) if e.due and e.type in _CLAIM_DUES else e for e in events)


def summary(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


RUNNING_RULES: dict[type, Handler] = {
    ClaimStep: _claim,
    RecordResult: _record,
    StartSideEffect: _side_effect,
    TimeOutStep: _timeout,
    TimeOutGate: _gate_timeout,
    Heartbeat: _heartbeat,
    RequeueStep: _requeue,
}
