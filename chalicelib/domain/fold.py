"""The fold: an execution's numbered events replayed into its current state.

``replay(events)`` is the only way state is built: there is no stored "current state"
to drift from the history. ``machine.decide`` reads this state; the engine appends the
events ``decide`` returns. Events are facts (past tense), so the fold applies every event
of a known type (``late_result_discarded`` is kept for the record and changes nothing), and
refuses a type outside ``EventType`` with ``UnknownEventType``: silently skipping a fact it
does not understand would give a state the history does not support.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.domain.costs import UsageTotal
from chalicelib.domain.definition import StepDef, WorkflowDefinition
from chalicelib.domain.side_effects import DEFAULT_MODE
from chalicelib.domain.side_effects import merge as merge_side_effects
from chalicelib.domain.spending import BUDGET_GATE, SpendBudget, SpendCheck
from chalicelib.domain.states import DONE_STEP_STATES, ExecutionStatus, StepState
from chalicelib.domain.vocabulary import ErrorKind, EventType
from chalicelib.errors import Refused, UnknownEventType

__all__ = ["Actor", "Event", "ExecutionState", "Refused", "StepView", "apply_events", "replay"]

ES, SS, ET = ExecutionStatus, StepState, EventType


@dataclass(frozen=True)
class Event:
    """One fact in an execution's history. ``seq`` is assigned when appended.

    ``type`` is an ``EventType`` when the domain makes the event; read back from the store it
    is the stored string, checked against ``EventType`` when the fold applies it."""

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


@dataclass
class StepView:
    id: str
    state: StepState = SS.PENDING
    attempt: int = 1
    claimed: bool = False
    started_at: str | None = None
    completed_at: str | None = None
    deadline: str | None = None
    #: A claimed attempt whose worker reports nothing past this time is taken as lost
    #: (the worker died); a live worker moves it on with ``step_heartbeat`` events.
    lease_until: str | None = None
    #: True when ``lease_until`` was set by a heartbeat, whose commit has a due entry at it
    #: (a claim writes none: the sweep re-arms for it, ``domain/rearm.py``).
    lease_renewed: bool = False
    #: The token of the worker whose claim started the current attempt (``engine/claims.py``).
    claim: str | None = None
    #: A queued retry may not be claimed before this time (its backoff).
    not_before: str | None = None
    #: When the current attempt's message was (re)sent; None for a first hand-over, whose
    #: time is when the previous step finished.
    queued_at: str | None = None
    #: True while a long backoff waits for the sweep (no message is in the queue).
    awaits_sweep: bool = False
    #: How many times the sweep re-sent this attempt's message.
    requeues: int = 0
    output: Any = None
    has_output: bool = False
    original_output: Any = None
    has_original_output: bool = False
    error: dict[str, Any] | None = None
    instructions: str | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    skip_reason: str | None = None
    #: When a waiting gate with ``timeout_seconds`` is decided by the sweep.
    gate_due: str | None = None
    #: model usage of the latest attempt (llm steps): ``{"model", "input_tokens", "output_tokens", "cost_usd"}``
    usage: dict[str, Any] | None = None
    #: the gate the step waits at now (``approval``, ``review`` or ``budget``)
    waiting_gate: str | None = None
    #: at a budget gate: what was spent and on what (``SpendCheck.check``'s report)
    budget: dict[str, Any] | None = None
    #: the attempt an approver let run past the execution's budget (approved without new limits)
    waived_attempt: int | None = None
    #: the side-effect ledger of every attempt (``chalicelib.domain.side_effects``); replaced, never mutated
    side_effects: list[dict[str, Any]] = field(default_factory=list)
    #: what the current attempt does with earlier attempts' calls (``replay`` unless an operator chose ``rerun``)
    side_effect_mode: str = DEFAULT_MODE.value


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
    #: the model usage of every attempt that reported one, in history order (retries and late
    #: results included): ``{"step_id", "attempt", "model", "input_tokens", "output_tokens", "cost_usd"}``
    spend: list[dict[str, Any]] = field(default_factory=list)
    #: limits raised by approvers at budget gates (``max_tokens``, ``max_cost_micro``), latest last
    budget_raises: list[dict[str, Any]] = field(default_factory=list)

    @property
    def budget(self) -> SpendBudget | None:
        """The execution's budget now: the definition's, with the limits approvers raised."""
        budget = self.definition.budget
        if budget is None:
            return None
        for raise_ in self.budget_raises:
            budget = budget.raised(raise_.get("max_tokens"), raise_.get("max_cost_micro"))
        return budget

    def spend_check(self, step_id: str, attempt: int) -> SpendCheck | None:
        """What a model step checks before each call: the budget now and what earlier attempts spent."""
        budget = self.budget
        if budget is None:
            return None
        waived = self.step(step_id).waived_attempt == attempt
        return SpendCheck(budget, self.usage_total, tuple(self.spend), waived, step_id, attempt)

    @property
    def usage_total(self) -> UsageTotal:
        """Tokens and cost over all attempts of all steps: derived from the history, so it cannot drift."""
        total = UsageTotal()
        for entry in self.spend:
            total.add(entry)
        return total

    def step_usage_total(self, step_id: str) -> UsageTotal:
        """Tokens and cost over all attempts of one step."""
        total = UsageTotal()
        for entry in self.spend:
            if entry.get("step_id") == step_id:
                total.add(entry)
        return total

    @property
    def cursor(self) -> int:
        """Index of the current step: the first one neither completed nor skipped."""
        for i, step in enumerate(self.steps):
            if step.state not in DONE_STEP_STATES:
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

    def handed_over_at(self, step: StepView) -> str | None:
        """When the message for ``step``'s current attempt was last sent (or should have been)."""
        if step.queued_at:
            return step.queued_at
        index = self.definition.index_of(step.id)
        return self.steps[index - 1].completed_at if index else self.started_at

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


def apply_events(state: ExecutionState, events: Sequence[Event]) -> ExecutionState:
    """A copy of ``state`` with further events folded in (the engine previews decisions this way)."""
    state = replace(
        state,
        steps=[_step_copy(s) for s in state.steps],
        spend=list(state.spend),
        budget_raises=list(state.budget_raises),
    )
    for event in events:
        _apply(state, event)
        state.seq = max(state.seq, event.seq)
    return state


def _step_copy(step: StepView) -> StepView:
    """A copy of ``step`` that the fold may change: ``replace(step, comments=list(step.comments))``
    without its per-field walk (the engine copies every step several times per step it runs).
    The fold assigns fields and appends to ``comments``; every other list or dict it replaces."""
    copy = object.__new__(StepView)
    copy.__dict__.update(step.__dict__)
    copy.comments = list(step.comments)
    return copy


def _decided(step: StepView, e: Event, verdict: str, **extra: Any) -> None:
    """Record a human decision on ``step``: who, what, when, on which attempt, and why."""
    comment = e.details.get("comment")
    step.decision = {
        "decision": verdict,
        "by": e.actor,
        "at": e.at,
        "attempt": step.attempt,
        "comment": comment,
        **extra,
    }
    if comment:
        step.comments.append({"by": e.actor, "at": e.at, "attempt": step.attempt, "decision": verdict, "text": comment})


def _new_attempt(step: StepView, attempt: int, queued_at: str | None) -> None:
    step.state, step.attempt, step.claimed = SS.RUNNING, attempt, False
    step.side_effect_mode = DEFAULT_MODE.value  # an automatic retry replays; an operator's may choose
    step.deadline, step.queued_at, step.requeues, step.awaits_sweep = None, queued_at, 0, False
    step.lease_until, step.lease_renewed = None, False


#: Events that end an attempt and carry its model usage (a failure's may sit in the error's details).
_SPENDING = (
    EventType.STEP_COMPLETED,
    EventType.APPROVAL_REQUESTED,
    EventType.STEP_FAILED,
    EventType.STEP_TIMED_OUT,
    EventType.LATE_RESULT_DISCARDED,
)


def _attempt_usage(e: Event) -> Mapping[str, Any] | None:
    usage = e.details.get("usage")
    if usage is None and e.type in (EventType.STEP_FAILED, EventType.STEP_TIMED_OUT):
        error = e.details.get("error")
        details = error.get("details") if isinstance(error, Mapping) else None
        usage = details.get("usage") if isinstance(details, Mapping) else None
    return usage if isinstance(usage, Mapping) else None


def _apply(state: ExecutionState, e: Event) -> None:
    try:
        t = EventType(e.type)
    except ValueError:
        raise UnknownEventType(state.execution_id, e.seq, e.type) from None
    d = e.details
    step = state.step(e.step_id) if e.step_id else None
    if t in _SPENDING and e.step_id:
        usage = _attempt_usage(e)
        # one entry per attempt: a result recorded twice (a retried commit that had landed) counts once
        if usage and not any(x["step_id"] == e.step_id and x["attempt"] == e.attempt for x in state.spend):
            state.spend.append({"step_id": e.step_id, "attempt": e.attempt, **usage})
    if step is not None and isinstance(d.get("side_effects"), list):
        # results (late ones included: the calls happened) carry the attempt's finished ledger entries
        step.side_effects = merge_side_effects(step.side_effects, d["side_effects"])
    if t == ET.EXECUTION_STARTED:
        state.workflow_id, state.workflow_version = d.get("workflow_id", ""), int(d.get("workflow_version", 0))
        state.input = d.get("input")
        state.trigger = d.get("trigger", {})
        state.started_at = e.at
    elif step is None:
        if t == ET.EXECUTION_CANCELLED:
            state.cancelled, state.ended_at = True, e.at
            for s in state.steps:
                if s.state in (SS.RUNNING, SS.WAITING_FOR_APPROVAL):
                    s.state, s.skip_reason, s.completed_at = SS.SKIPPED, f"execution cancelled by {e.actor}", e.at
        elif t == ET.EXECUTION_COMPLETED:
            state.completed, state.ended_at = True, e.at
    elif t == ET.STEP_STARTED:
        step.state, step.attempt, step.claimed = SS.RUNNING, e.attempt or step.attempt, True
        step.started_at, step.deadline, step.not_before = e.at, d.get("deadline"), None
        step.lease_until, step.lease_renewed, step.claim = d.get("lease_until"), False, d.get("claim")
        step.error, step.requeues, step.awaits_sweep = None, 0, False
        step.usage, step.waiting_gate, step.budget = None, None, None
    elif t == ET.STEP_COMPLETED:
        step.state, step.completed_at = SS.COMPLETED, e.at
        step.output, step.has_output = d.get("output"), True
        step.usage = d.get("usage") or step.usage
    elif t == ET.APPROVAL_REQUESTED:
        step.state, step.output, step.has_output = SS.WAITING_FOR_APPROVAL, d.get("output"), True
        step.gate_due = d.get("timeout_at")
        step.usage = d.get("usage") or step.usage
        step.waiting_gate = d.get("gate")
        if step.waiting_gate == BUDGET_GATE:
            # stopped before its answer: there is no output to approve, only more spending
            step.has_output, step.budget = False, dict(d.get("budget") or {})
    elif t == ET.BUDGET_APPROVED:
        _decided(step, e, "approved", budget=d.get("new_limits"))
        raised = d.get("raised") or {}
        if raised:
            state.budget_raises.append(dict(raised))
        else:
            step.waived_attempt = (e.attempt or step.attempt) + 1
        _new_attempt(step, (e.attempt or step.attempt) + 1, e.at)
        step.not_before, step.completed_at = None, None
    elif t in (ET.APPROVAL_GRANTED, ET.REVIEW_SUBMITTED):
        step.state, step.completed_at = SS.COMPLETED, e.at
        if "amended_output" in d:
            step.original_output, step.has_original_output = step.output, True
            step.output = d["amended_output"]
        _decided(
            step,
            e,
            "approved" if t == ET.APPROVAL_GRANTED else "reviewed",
            **({"amended": True} if "amended_output" in d else {}),
        )
    elif t == ET.APPROVAL_REJECTED:
        step.state, step.completed_at = SS.FAILED, e.at
        step.error = {
            "kind": ErrorKind.REJECTED,
            "message": f"rejected by {e.actor}: {d.get('comment') or 'no reason given'}",
        }
        _decided(step, e, "rejected")
    elif t in (ET.STEP_FAILED, ET.STEP_TIMED_OUT):
        step.error = dict(d.get("error") or {})
        usage = _attempt_usage(e)
        step.usage = dict(usage) if usage else step.usage
        if d.get("retry_at"):
            # automatic retry: the next attempt is queued, the execution keeps running
            _new_attempt(step, (e.attempt or step.attempt) + 1, d["retry_at"])
            step.not_before, step.awaits_sweep = d["retry_at"], bool(d.get("woken_by_sweep"))
        else:
            step.state, step.completed_at = SS.FAILED, e.at
            if d.get("gate_timeout"):
                _decided(step, e, "timed_out")
    elif t == ET.SIDE_EFFECT_STARTED:
        if isinstance(d.get("entry"), Mapping):
            step.side_effects = merge_side_effects(step.side_effects, [d["entry"]])
    elif t == ET.INSTRUCTIONS_EDITED:
        step.instructions = d.get("new_instructions")
    elif t == ET.STEP_RETRIED:
        _new_attempt(step, e.attempt or step.attempt + 1, e.at)
        step.not_before, step.completed_at = None, None
        step.side_effect_mode = str(d.get("side_effects") or DEFAULT_MODE.value)
    elif t == ET.STEP_HEARTBEAT:
        if step.claimed and step.attempt == e.attempt:
            step.lease_until, step.lease_renewed = d.get("lease_until"), True
    elif t == ET.STEP_REQUEUED:
        step.queued_at, step.requeues, step.awaits_sweep = e.at, step.requeues + 1, False
    elif t == ET.STEP_SKIPPED:
        step.state, step.skip_reason, step.completed_at = SS.SKIPPED, d.get("reason"), e.at
        if e.actor:
            _decided(step, e, "skipped")
    elif t == ET.STEP_FORCE_ADVANCED:
        if d.get("implicit_approval"):
            step.state = SS.COMPLETED
            _decided(step, e, "approved", implicit=True)
        else:
            step.state, step.skip_reason = SS.SKIPPED, f"force-advanced by {e.actor}"
            _decided(step, e, "force-advanced")
        step.completed_at = e.at
    # ET.LATE_RESULT_DISCARDED changes no state; its side effects (the calls happened) are merged above
