"""The execution state machine: events, the fold, commands and ``decide``.

An execution is the fold of its numbered events (``replay``). Everything that wants to
change it, a worker with a result, an operator, the sweep, sends a *command* to
``decide(state, command, now)``, which returns the events to append and the messages to
send, or raises ``Refused`` when the state does not allow it. ``decide`` is pure: the
engine appends the events with a conditional write on the next sequence number, so a
concurrent writer makes the append fail and nothing is lost or doubled.

Events are facts (past tense); commands are requests (imperative).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence, Union

from chalicelib.domain.definition import StepDef, WorkflowDefinition
from chalicelib.domain.states import ACTIVE_STATUSES, ExecutionStatus, StepState
from chalicelib.domain.timefmt import iso, parse_iso

ES, SS = ExecutionStatus, StepState

#: SQS can delay a message by 15 minutes at most; longer waits go through the sweep.
MAX_QUEUE_DELAY = 900


# --------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Event:
    """One fact in an execution's history. ``seq`` is assigned when appended."""

    type: str
    at: str
    step_id: str | None = None
    attempt: int | None = None
    actor: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0
    #: When set, the sweep visits this event at that time (sparse ``by_due`` index).
    due: str | None = None


@dataclass(frozen=True)
class Actor:
    name: str
    role: str


# ------------------------------------------------------------------------- the fold
@dataclass
class StepView:
    id: str
    state: StepState = SS.PENDING
    attempt: int = 1
    claimed: bool = False
    started_at: str | None = None
    completed_at: str | None = None
    deadline: str | None = None
    not_before: str | None = None
    output: Any = None
    has_output: bool = False
    original_output: Any = None
    error: dict[str, Any] | None = None
    instructions: str | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    skip_reason: str | None = None


@dataclass
class ExecutionState:
    execution_id: str
    definition: WorkflowDefinition
    steps: list[StepView]
    workflow_id: str = ""
    workflow_version: int = 0
    input: Any = None
    trigger: Mapping[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    ended_at: str | None = None
    cancelled: bool = False
    completed: bool = False
    seq: int = 0

    @property
    def cursor(self) -> int:
        """Index of the current step: the first one neither completed nor skipped."""
        for i, step in enumerate(self.steps):
            if step.state not in (SS.COMPLETED, SS.SKIPPED):
                return i
        return len(self.steps)

    @property
    def current(self) -> StepView | None:
        i = self.cursor
        return self.steps[i] if i < len(self.steps) else None

    @property
    def status(self) -> ExecutionStatus:
        if self.cancelled:
            return ES.CANCELLED
        if self.completed:
            return ES.COMPLETED
        step = self.current
        if step is not None and step.state == SS.FAILED:
            return ES.FAILED
        if step is not None and step.state == SS.WAITING_FOR_APPROVAL:
            return ES.WAITING
        return ES.RUNNING

    def step(self, step_id: str) -> StepView:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise Refused(f"execution {self.execution_id} has no step {step_id!r}", not_found=True)

    def step_def(self, step_id: str) -> StepDef:
        return self.definition.step(step_id)

    def instructions_for(self, step_id: str) -> str | None:
        override = self.step(step_id).instructions
        return override if override is not None else self.step_def(step_id).instructions

    def context_for(self, step_id: str) -> dict[str, Any]:
        """The data an agent sees: input, the previous step's output, all outputs so far."""
        index = self.definition.index_of(step_id)
        outputs = {s.id: {"output": s.output} for s in self.steps[:index] if s.state == SS.COMPLETED}
        data: dict[str, Any] = {"input": self.input, "steps": outputs}
        if index == 0:
            data["prev"] = self.input
        elif self.steps[index - 1].state == SS.COMPLETED:
            data["prev"] = self.steps[index - 1].output
        return data


def replay(execution_id: str, definition: WorkflowDefinition, events: Sequence[Event]) -> ExecutionState:
    """Fold an execution's events, in sequence order, into its current state."""
    state = ExecutionState(execution_id, definition, [StepView(s.id) for s in definition.steps])
    for event in events:
        _apply(state, event)
        state.seq = max(state.seq, event.seq)
    return state


def _apply(state: ExecutionState, e: Event) -> None:  # noqa: C901 - one branch per event type
    d = e.details
    step = state.step(e.step_id) if e.step_id else None
    t = e.type
    if t == "execution_started":
        state.workflow_id, state.workflow_version = d.get("workflow_id", ""), int(d.get("workflow_version", 0))
        state.input = d.get("input")
        state.trigger = d.get("trigger", {})
        state.started_at = e.at
    elif t == "step_started" and step:
        step.state, step.attempt, step.claimed = SS.RUNNING, e.attempt or step.attempt, True
        step.started_at, step.deadline, step.not_before = e.at, d.get("deadline"), None
        step.error = None
    elif t == "step_completed" and step:
        step.state, step.completed_at = SS.COMPLETED, e.at
        step.output, step.has_output = d.get("output"), True
    elif t == "approval_requested" and step:
        step.state, step.output, step.has_output = SS.WAITING_FOR_APPROVAL, d.get("output"), True
    elif t in ("approval_granted", "review_submitted") and step:
        step.state, step.completed_at = SS.COMPLETED, e.at
        step.decision = {"decision": "approved" if t == "approval_granted" else "reviewed",
                         "by": e.actor, "at": e.at, "comment": d.get("comment")}
        if d.get("comment"):
            step.comments.append({"by": e.actor, "at": e.at, "text": d["comment"]})
        if "amended_output" in d:
            step.original_output, step.output = step.output, d["amended_output"]
    elif t == "approval_rejected" and step:
        step.state, step.completed_at = SS.FAILED, e.at
        step.error = {"kind": "rejected", "message": f"rejected by {e.actor}: {d.get('comment') or 'no reason given'}"}
        step.decision = {"decision": "rejected", "by": e.actor, "at": e.at, "comment": d.get("comment")}
        if d.get("comment"):
            step.comments.append({"by": e.actor, "at": e.at, "text": d["comment"]})
    elif t in ("step_failed", "step_timed_out") and step:
        step.error = dict(d.get("error") or {})
        if d.get("retry_at"):
            # automatic retry: the next attempt is queued, the execution keeps running
            step.state, step.attempt, step.claimed = SS.RUNNING, (e.attempt or step.attempt) + 1, False
            step.not_before, step.deadline = d["retry_at"], None
        else:
            step.state, step.completed_at = SS.FAILED, e.at
    elif t == "instructions_edited" and step:
        step.instructions = d.get("new_instructions")
    elif t == "step_retried" and step:
        step.state, step.attempt, step.claimed = SS.RUNNING, (e.attempt or step.attempt), False
        step.not_before, step.deadline, step.completed_at = None, None, None
    elif t == "step_skipped" and step:
        step.state, step.skip_reason, step.completed_at = SS.SKIPPED, d.get("reason"), e.at
    elif t == "step_force_advanced" and step:
        if d.get("implicit_approval"):
            step.state = SS.COMPLETED
            step.decision = {"decision": "approved", "by": e.actor, "at": e.at, "implicit": True,
                             "comment": d.get("comment")}
        else:
            step.state, step.skip_reason = SS.SKIPPED, f"force-advanced by {e.actor}"
        step.completed_at = e.at
    elif t == "execution_cancelled":
        state.cancelled, state.ended_at = True, e.at
        for s in state.steps:
            if s.state in (SS.RUNNING, SS.WAITING_FOR_APPROVAL):
                s.state, s.skip_reason, s.completed_at = SS.SKIPPED, f"execution cancelled by {e.actor}", e.at
    elif t == "execution_completed":
        state.completed, state.ended_at = True, e.at
    # comment_added, late_result_discarded and unknown types change no state


# ------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class ClaimStep:
    step_id: str
    attempt: int


@dataclass(frozen=True)
class RecordResult:
    step_id: str
    attempt: int
    output: Any = None
    error: Mapping[str, Any] | None = None  # {"kind", "message", "retryable", ...}


@dataclass(frozen=True)
class TimeOutStep:
    step_id: str
    attempt: int


@dataclass(frozen=True)
class RetryStep:
    step_id: str
    actor: Actor
    instructions: str | None = None


@dataclass(frozen=True)
class SkipStep:
    step_id: str
    actor: Actor
    reason: str | None = None


@dataclass(frozen=True)
class CancelExecution:
    actor: Actor
    reason: str | None = None


@dataclass(frozen=True)
class ForceAdvance:
    step_id: str
    actor: Actor
    comment: str | None = None


@dataclass(frozen=True)
class Approve:
    step_id: str
    actor: Actor
    comment: str | None = None


@dataclass(frozen=True)
class Reject:
    step_id: str
    actor: Actor
    comment: str | None = None


@dataclass(frozen=True)
class Review:
    step_id: str
    actor: Actor
    comment: str | None = None
    output: Any = None
    amended: bool = False


Command = Union[ClaimStep, RecordResult, TimeOutStep, RetryStep, SkipStep, CancelExecution,
                ForceAdvance, Approve, Reject, Review]


@dataclass(frozen=True)
class Dispatch:
    """A step message to send after the events are stored."""

    step_id: str
    attempt: int
    delay_seconds: int = 0


@dataclass(frozen=True)
class Decision:
    events: tuple[Event, ...] = ()
    dispatch: tuple[Dispatch, ...] = ()
    #: Why nothing happens (a duplicate or stale worker message); None when events exist.
    noop_reason: str | None = None


class Refused(Exception):
    """The command does not fit the current state (HTTP 409, or 404 for unknown steps)."""

    def __init__(self, message: str, *, not_found: bool = False, forbidden: bool = False) -> None:
        super().__init__(message)
        self.message, self.not_found, self.forbidden = message, not_found, forbidden


ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}


def decide(state: ExecutionState, command: Command, now: datetime) -> Decision:
    """Return what ``command`` does to ``state`` at ``now``; raise ``Refused`` if it may not."""
    handler = _HANDLERS[type(command)]
    return handler(state, command, iso(now), now)


def _noop(reason: str) -> Decision:
    return Decision(noop_reason=reason)


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
        return Decision(dispatch=(Dispatch(step.id, step.attempt, min(wait, MAX_QUEUE_DELAY)),),
                        noop_reason="retry not due yet")
    timeout = state.step_def(c.step_id).timeout_seconds
    deadline = iso(now + timedelta(seconds=timeout))
    return Decision(events=(Event("step_started", at, c.step_id, c.attempt,
                                  details={"deadline": deadline}, due=deadline),))


def _record(state: ExecutionState, c: RecordResult, at: str, now: datetime) -> Decision:
    step = state.step(c.step_id)
    if not (step.state == SS.RUNNING and step.claimed and step.attempt == c.attempt) or state.status != ES.RUNNING:
        return Decision(events=(Event("late_result_discarded", at, c.step_id, c.attempt, details={
            "outcome": "error" if c.error else "output", "step_state": step.state.value,
            "execution_status": state.status.value,
            "summary": _summary(c.error if c.error else c.output)}),))
    if c.error is not None:
        return _failure(state, step, dict(c.error), "step_failed", at, now)
    sdef = state.step_def(c.step_id)
    if sdef.gate is not None:
        return Decision(events=(Event("approval_requested", at, c.step_id, c.attempt, details={
            "output": c.output, "gate": sdef.gate.type, "approvers": list(sdef.gate.approvers)}),))
    return _advance(state, step, Event("step_completed", at, c.step_id, c.attempt, details={"output": c.output}))


def _timeout(state: ExecutionState, c: TimeOutStep, at: str, now: datetime) -> Decision:
    step = state.step(c.step_id)
    if not (step.state == SS.RUNNING and step.claimed and step.attempt == c.attempt) or state.status != ES.RUNNING:
        return _noop("step is no longer running")
    if step.deadline is None or parse_iso(step.deadline) > now:
        return _noop("deadline not reached")
    limit = state.step_def(c.step_id).timeout_seconds
    error = {"kind": "timeout", "message": f"step ran past its time limit of {limit}s", "retryable": True}
    return _failure(state, step, error, "step_timed_out", at, now)


def _failure(state: ExecutionState, step: StepView, error: dict[str, Any], kind: str, at: str,
             now: datetime) -> Decision:
    policy = state.step_def(step.id).retry
    retryable = error.get("retryable", True) and error.get("kind") in ("agent", "integration", "timeout")
    if policy and retryable and step.attempt < policy.max_attempts:
        delay = policy.backoff_seconds * (2 ** (step.attempt - 1))
        retry_at = iso(now + timedelta(seconds=delay))
        details = {"error": error, "retry_at": retry_at, "next_attempt": step.attempt + 1}
        # SQS holds short waits; the sweep's due index wakes the longer ones.
        due = retry_at if delay > MAX_QUEUE_DELAY else None
        dispatch = () if due else (Dispatch(step.id, step.attempt + 1, int(delay)),)
        return Decision(events=(Event(kind, at, step.id, step.attempt, details=details, due=due),), dispatch=dispatch)
    return Decision(events=(Event(kind, at, step.id, step.attempt, details={"error": error}),))


def _advance(state: ExecutionState, step: StepView, event: Event, *extra: Event) -> Decision:
    """Append ``event`` (which finishes ``step``) and hand over to the next step or finish."""
    index = state.definition.index_of(step.id)
    events = (event, *extra)
    if index + 1 >= len(state.steps):
        return Decision(events=events + (Event("execution_completed", event.at),))
    nxt = state.steps[index + 1]
    return Decision(events=events, dispatch=(Dispatch(nxt.id, nxt.attempt),))


def _operator_step(state: ExecutionState, step_id: str, verb: str, allowed: set[StepState]) -> StepView:
    step = state.step(step_id)
    if state.status in (ES.COMPLETED, ES.CANCELLED):
        raise Refused(f"cannot {verb} {step_id}: execution is {state.status.value}")
    if step.state not in allowed or state.current is not step:
        raise Refused(f"cannot {verb} {step_id}: step is {step.state.value}")
    return step


def _retry(state: ExecutionState, c: RetryStep, at: str, now: datetime) -> Decision:
    step = _operator_step(state, c.step_id, "retry", {SS.FAILED})
    attempt = step.attempt + 1
    events: list[Event] = []
    if c.instructions is not None:
        events.append(Event("instructions_edited", at, c.step_id, attempt, c.actor.name, details={
            "old_instructions": state.instructions_for(c.step_id), "new_instructions": c.instructions}))
    events.append(Event("step_retried", at, c.step_id, attempt, c.actor.name,
                        details={"previous_error": step.error, "edited": c.instructions is not None}))
    return Decision(events=tuple(events), dispatch=(Dispatch(c.step_id, attempt),))


def _skip(state: ExecutionState, c: SkipStep, at: str, now: datetime) -> Decision:
    step = _operator_step(state, c.step_id, "skip", {SS.FAILED})
    reason = c.reason or f"skipped by {c.actor.name}"
    return _advance(state, step, Event("step_skipped", at, c.step_id, step.attempt, c.actor.name,
                                       details={"reason": reason, "previous_error": step.error}))


def _force(state: ExecutionState, c: ForceAdvance, at: str, now: datetime) -> Decision:
    if ROLE_RANK.get(c.actor.role, -1) < ROLE_RANK["admin"]:
        raise Refused("force-advance needs the admin role", forbidden=True)
    step = _operator_step(state, c.step_id, "force-advance",
                          {SS.PENDING, SS.RUNNING, SS.WAITING_FOR_APPROVAL})
    gate = step.state == SS.WAITING_FOR_APPROVAL
    details = {"previous_state": step.state.value, "implicit_approval": gate, "comment": c.comment}
    return _advance(state, step, Event("step_force_advanced", at, c.step_id, step.attempt, c.actor.name, details=details))


def _cancel(state: ExecutionState, c: CancelExecution, at: str, now: datetime) -> Decision:
    if state.status in (ES.COMPLETED, ES.CANCELLED):
        raise Refused(f"cannot cancel: execution is {state.status.value}")
    kept = [{"step_id": s.id, "agent": state.step_def(s.id).agent, "summary": _summary(s.output)}
            for s in state.steps if s.state == SS.COMPLETED]
    return Decision(events=(Event("execution_cancelled", at, actor=c.actor.name,
                                  details={"reason": c.reason, "not_undone": kept}),))


def _gate_step(state: ExecutionState, step_id: str, actor: Actor, verb: str, gate_types: set[str]) -> StepView:
    step = _operator_step(state, step_id, verb, {SS.WAITING_FOR_APPROVAL})
    gate = state.step_def(step_id).gate
    if gate is None or gate.type not in gate_types:
        raise Refused(f"cannot {verb} {step_id}: its gate is {gate.type if gate else 'absent'}")
    if not may_decide(gate.approvers, actor):
        raise Refused(f"{actor.name} is not an approver of {step_id}", forbidden=True)
    return step


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
    return _advance(state, step, Event("approval_granted", at, c.step_id, step.attempt, c.actor.name,
                                       details={"comment": c.comment}))


def _reject(state: ExecutionState, c: Reject, at: str, now: datetime) -> Decision:
    step = _gate_step(state, c.step_id, c.actor, "reject", {"approval", "review"})
    return Decision(events=(Event("approval_rejected", at, c.step_id, step.attempt, c.actor.name,
                                  details={"comment": c.comment}),))


def _review(state: ExecutionState, c: Review, at: str, now: datetime) -> Decision:
    step = _gate_step(state, c.step_id, c.actor, "review", {"review"})
    details: dict[str, Any] = {"comment": c.comment}
    if c.amended:
        details["amended_output"] = c.output
    return _advance(state, step, Event("review_submitted", at, c.step_id, step.attempt, c.actor.name, details=details))


def _summary(value: Any, limit: int = 120) -> str:
    import json

    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_HANDLERS = {
    ClaimStep: _claim, RecordResult: _record, TimeOutStep: _timeout, RetryStep: _retry,
    SkipStep: _skip, CancelExecution: _cancel, ForceAdvance: _force, Approve: _approve,
    Reject: _reject, Review: _review,
}


def apply_events(state: ExecutionState, events: Sequence[Event]) -> ExecutionState:
    """A copy of ``state`` with further events folded in (the engine previews decisions this way)."""
    state = replace(state, steps=[replace(s, comments=list(s.comments)) for s in state.steps])
    for event in events:
        _apply(state, event)
        state.seq = max(state.seq, event.seq)
    return state


def is_active(status: ExecutionStatus) -> bool:
    return status in ACTIVE_STATUSES
