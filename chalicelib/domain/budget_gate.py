"""The ``budget`` gate: what ``decide`` does when a model step stops at its execution's budget.

A model agent that finds the execution's budget reached before a call stops and reports an
error marked ``budget_exceeded`` (``chalicelib.domain.spending``). With ``on_exceed: "pause"``
the machine turns that result into a wait at a ``budget`` gate, which shows what was spent and
on what; with ``fail`` it stays an ordinary non-retryable failure. At the gate:

* ``approve`` with higher ``max_tokens``/``max_cost_usd`` raises the execution's budget (the
  event records old and new limits and the approver) and runs the step again as a **new
  attempt**: the stopped attempt's conversation is not resumed, its tool calls stay in its
  record, and the new attempt starts from the step's instructions with the raised budget;
* ``approve`` without new limits lets that new attempt run past the budget (the approver
  accepts the overrun; later steps are checked again);
* ``reject`` fails the step (``approval_rejected``), as at any gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.commands import Approve, Decision, Dispatch, RecordResult
from chalicelib.domain.costs import micro
from chalicelib.domain.fold import Event, ExecutionState, Refused, StepView
from chalicelib.domain.spending import BUDGET_GATE
from chalicelib.domain.vocabulary import EventType

__all__ = ["approve_budget", "budget_pause"]


def budget_pause(state: ExecutionState, step: StepView, c: RecordResult, at: str) -> Decision | None:
    """The wait at a budget gate for a result that stopped at the budget, when the budget says pause."""
    error = c.error or {}
    budget = state.budget
    if not error.get("budget_exceeded") or budget is None or budget.on_exceed != "pause":
        return None
    raw = error.get("details")
    details_in: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    details: dict[str, Any] = {
        "gate": BUDGET_GATE,
        "approvers": list(budget.approvers),
        "budget": dict(details_in.get("budget") or {}),
        "message": error.get("message"),
    }
    if c.usage:
        details["usage"] = dict(c.usage)
    if c.side_effects:
        details["side_effects"] = [dict(e) for e in c.side_effects]  # the calls the stopped attempt made
    if details_in.get("tool_calls") is not None:
        # the stopped attempt's tool calls are part of "on what": shown with the gate
        details["budget"]["tool_calls"] = list(details_in["tool_calls"])
    return Decision(events=(Event(EventType.APPROVAL_REQUESTED, at, c.step_id, c.attempt, details=details),))


def approve_budget(state: ExecutionState, step: StepView, c: Approve, at: str, due: str) -> Decision:
    """Approve at a budget gate: raise the limits (or waive them for one attempt) and run a new attempt."""
    budget = state.budget
    if budget is None:  # a budget gate exists only under a budget; kept for a definition edited by hand
        raise Refused(f"cannot approve {step.id}: the execution has no budget")
    spent = state.usage_total
    cost = micro(c.max_cost_usd) if c.max_cost_usd is not None else None
    raised: dict[str, Any] = {}
    if c.max_tokens is not None:
        if c.max_tokens <= spent.tokens:
            raise Refused(
                f"max_tokens {c.max_tokens} is not above the {spent.tokens} tokens this execution has used; "
                "give a higher limit"
            )
        raised["max_tokens"] = c.max_tokens
    if cost is not None:
        if cost <= spent.cost_micro:
            raise Refused(
                f"max_cost_usd {c.max_cost_usd} is not above the ${spent.to_dict()['cost_usd']} this execution "
                "has spent; give a higher limit"
            )
        raised["max_cost_micro"] = cost
    new = budget.raised(raised.get("max_tokens"), raised.get("max_cost_micro"))
    if raised and new.reached(spent):
        still = ", ".join(new.reached(spent))
        raise Refused(f"the execution would still be at its budget ({still}); raise that limit too")
    details: dict[str, Any] = {
        "comment": c.comment,
        "previous_limits": budget.limits(),
        "new_limits": new.limits() if raised else None,
        "raised": raised,
        "waived": not raised,
        "spent": {**spent.to_dict(), "tokens": spent.tokens},
        "next_attempt": step.attempt + 1,
    }
    event = Event(EventType.BUDGET_APPROVED, at, step.id, step.attempt, c.actor.name, details=details, due=due)
    return Decision(events=(event,), dispatch=(Dispatch(step.id, step.attempt + 1),))
