"""JSON views of executions and their history, as the API reference shapes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain.actions import with_action
from chalicelib.domain.machine import Actor, Event, ExecutionState, not_undone
from chalicelib.domain.permissions import execution_actions, step_actions
from chalicelib.domain.side_effects import SideEffectStatus, public_entries
from chalicelib.domain.side_effects import summary as side_effects_summary
from chalicelib.domain.states import StepState
from chalicelib.engine.audit import describe
from chalicelib.store import SummaryRecord


def execution_view(state: ExecutionState, actor: Actor | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The execution as the API shows it; with ``actor``, the ``actions`` that key may take at ``now``."""
    definition = state.definition
    steps = []
    for view, sdef in zip(state.steps, definition.steps, strict=True):
        step: dict[str, Any] = {
            "id": view.id,
            "name": sdef.name,
            "agent": sdef.agent,
            "state": view.state.value,
            "attempt": view.attempt,
            "started_at": view.started_at,
            "completed_at": view.completed_at,
            "output": view.output if view.has_output else None,
            "error": with_action(view.error),
            "comments": list(view.comments),
            "decision": view.decision,
            "instructions": state.instructions_for(view.id),
            "gate": sdef.gate.type if sdef.gate else None,
            "timeout_seconds": sdef.timeout_seconds,
            "deadline": view.deadline if view.state == StepState.RUNNING else None,
        }
        if view.usage:
            step["usage"] = dict(view.usage)
        step["side_effects"] = public_entries(view.side_effects)
        step["side_effects_summary"] = side_effects_summary(view.side_effects)
        if view.not_before:
            step["retry_at"] = view.not_before
        if view.gate_due and view.state == StepState.WAITING_FOR_APPROVAL:
            step["gate_timeout_at"] = view.gate_due  # when the sweep decides the gate's on_timeout
        if view.skip_reason:
            step["skip_reason"] = view.skip_reason
        if view.has_original_output:
            step["original_output"] = view.original_output
        if actor is not None and now is not None:
            step["actions"] = step_actions(state, view.id, actor, now)
        steps.append(step)
    result: dict[str, Any] = {
        "execution_id": state.execution_id,
        "workflow_id": state.workflow_id,
        "workflow_name": definition.name,
        "workflow_version": state.workflow_version,
        "status": state.status.value,
        "trigger": dict(state.trigger),
        "input": state.input,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "steps": steps,
        "completed_steps_not_undone": not_undone(state) if state.cancelled else [],
        "tool_calls_not_undone": _tool_calls(steps) if state.cancelled else [],
        "side_effects_not_undone": _side_effects(steps) if state.cancelled else [],
    }
    if actor is not None and now is not None:
        result["actions"] = execution_actions(state, actor, now)
    return result


def _tool_calls(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool calls llm steps made (latest attempts): cancelling undoes none of them."""
    found = []
    for step in steps:
        if step.get("agent") != "llm":  # a later step may pass an llm output (and its tool_calls) along
            continue
        output, error = step.get("output"), step.get("error") or {}
        calls = output.get("tool_calls") if isinstance(output, dict) else None
        if calls is None and isinstance(error.get("details"), dict):
            calls = error["details"].get("tool_calls")
        found += [{"step_id": step["id"], **call} for call in calls or [] if isinstance(call, dict)]
    return found


def _side_effects(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every call the steps made elsewhere (replayed ones made none): cancelling undoes none of them."""
    return [
        {"step_id": step["id"], **entry}
        for step in steps
        for entry in step.get("side_effects") or []
        if entry.get("status") != SideEffectStatus.REPLAYED.value
    ]


def summary_view(summary: SummaryRecord) -> dict[str, Any]:
    return summary.to_dict()


def history_item(event: Event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at,
        "type": event.type,
        "step_id": event.step_id,
        "attempt": event.attempt,
        "actor": event.actor,
        "details": dict(event.details),
        "message": describe(event),
    }
