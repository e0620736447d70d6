"""The status event of a head change, built from the head's stream record alone.

The stream aggregator puts one EventBridge ``Execution Status Change`` event per head change
(``chalicelib.engine.aggregator``). Its detail (``notifications.status_detail``) is the
execution's identity, its old and new status, and its current step. All but the step are
on the head item already; the head also keeps the current step's changing part (``step``:
id, state, attempt, and for a waiting gate its output and time-out, for a failure its
error) whenever it is small, written by the same update that moves the status. The
workflow's name and the step's name, gate type and approvers come from the definition
version, cached by the process (versions never change). So an event costs no read of the
history; only a head without ``step`` (a step part over ``STEP_INLINE_LIMIT`` bytes, or a
head moved by a repair) makes the announcer replay the history up to the change instead.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain.definition import WorkflowDefinition
from chalicelib.domain.machine import ExecutionState
from chalicelib.domain.states import StepState
from chalicelib.engine.notifications import status_detail

#: Bytes of the head's ``step`` at most: keeps the head small (one write unit).
STEP_INLINE_LIMIT = 200
#: ``step`` of an execution with no current step (it completed).
NO_STEP = "{}"
#: The step fields the definition gives (not kept on the head).
_FROM_DEFINITION = ("name", "gate", "approvers")


def head_step(state: ExecutionState) -> str | None:
    """What the head keeps of ``state``'s current step for the status event; None when too large."""
    step = status_detail(state, None).get("step")
    if step is None:
        return NO_STEP
    kept = {k: v for k, v in step.items() if k not in _FROM_DEFINITION}
    text = json.dumps(kept, separators=(",", ":"), default=str)
    return text if len(text.encode("utf-8")) <= STEP_INLINE_LIMIT else None


def detail_from_head(
    execution_id: str,
    before: str | None,
    head: dict[str, Any],
    definition: WorkflowDefinition,
) -> dict[str, Any] | None:
    """The event's detail from the head's new image (plain values: ``status``, ``workflow_id``,
    ``workflow_version``, ``trigger_type``, ``started_at``, ``ended_at``, ``step``), or None
    when the head does not hold the step (the caller then reads the history)."""
    raw = head.get("step")
    if raw is None and before is not None:
        return None
    detail: dict[str, Any] = {
        "execution_id": execution_id,
        "workflow_id": head["workflow_id"],
        "workflow_name": definition.name,
        "workflow_version": int(head["workflow_version"]),
        "status": head["status"],
        "previous_status": before,
        "started_at": head["started_at"],
        "ended_at": head.get("ended_at"),
        "trigger": head.get("trigger_type") or "manual",
    }
    if raw is None:  # a start: no step has moved yet, the first one is pending
        kept: dict[str, Any] = {"id": definition.steps[0].id, "state": StepState.PENDING.value, "attempt": 1}
    else:
        kept = json.loads(raw)
    if not kept:
        return detail
    sdef = definition.step(kept["id"])
    step: dict[str, Any] = {"id": sdef.id, "name": sdef.name, "state": kept["state"], "attempt": kept["attempt"]}
    if sdef.gate is not None and kept["state"] == StepState.WAITING_FOR_APPROVAL.value:
        step["gate"] = sdef.gate.type
        step["approvers"] = list(sdef.gate.approvers)
    step.update({k: v for k, v in kept.items() if k not in step})
    detail["step"] = step
    return detail
