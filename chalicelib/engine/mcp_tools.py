"""The tools Stepline offers over MCP, and what calling each one does.

Every enabled manual workflow is a tool (the names and input schemas of ``GET /tools``), beside
fixed tools: ``get_execution``, ``list_executions``, ``approve_step``, ``reject_step`` and ``retry_step``.
Each call goes through the engine functions the REST routes use (``ToolService.start``,
``ExecutionService.load``/``act``, the store's execution lists, the filters of
``chalicelib.engine.listing``), so a rule holds the same way through both doors.

A call answers a ``ToolResult``: a short sentence plus the JSON as text (older clients read
only text), the same JSON as ``structuredContent``, and ``isError`` when Stepline refused the
call, with the reason a model can act on (MCP "tool execution errors").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.auth import require
from chalicelib.domain.machine import Actor, Approve, Command, ExecutionState, Reject, RetryStep, starter
from chalicelib.domain.spending import BUDGET_GATE, limit_errors
from chalicelib.domain.states import ExecutionStatus, StepState
from chalicelib.domain.timefmt import iso
from chalicelib.domain.vocabulary import Role
from chalicelib.engine import Engine, listing
from chalicelib.engine.edits import (
    check_instructions,
    check_reject_reason,
    check_side_effects_mode,
    check_text,
)
from chalicelib.engine.mcp_catalog import _FIXED_NAMES, FIXED_TOOLS, MAX_ID
from chalicelib.engine.tools import describe, input_schema, tool_name
from chalicelib.engine.views import execution_view, summary_view
from chalicelib.errors import FieldError, NotFound, SteplineError, ValidationError
from chalicelib.store import WorkflowRecord
from chalicelib.store.lists import ListFilter


class UnknownTool(Exception):
    """``tools/call`` named no tool of this server (a protocol error, not a tool result)."""


@dataclass(frozen=True)
class Caller:
    """Who calls: the API key's actor and the MCP client it said it is (``initialize``'s clientInfo)."""

    actor: Actor
    client: dict[str, str] = field(default_factory=dict)
    protocol_version: str | None = None


@dataclass(frozen=True)
class ToolResult:
    text: str
    data: dict[str, Any]
    is_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        dumped = json.dumps(self.data, ensure_ascii=False, default=str)
        return {
            "content": [{"type": "text", "text": self.text}, {"type": "text", "text": dumped}],
            "structuredContent": self.data,
            "isError": self.is_error,
        }


def workflow_tool(record: WorkflowRecord) -> dict[str, Any]:
    """An MCP tool for a manual workflow: ``GET /tools``'s name, schema and description, plus the inputs."""
    trigger = record.definition["trigger"]
    lines = [describe(record, "anthropic")["description"]]
    for item in trigger.get("inputs") or []:
        about = item.get("description") or item.get("label") or ""
        need = "required" if item.get("required") else "optional"
        extra = f", default {json.dumps(item['default'])}" if "default" in item else ""
        options = f", one of {', '.join(map(str, item.get('options') or []))}" if item["type"] == "enum" else ""
        lines.append(f"- {item['name']} ({item['type']}, {need}{extra}{options}){': ' + about if about else ''}")
    lines.append("Answers the new execution's execution_id; follow it with get_execution.")
    return {
        "name": tool_name(record),
        "title": record.name,
        "description": "\n".join(lines),
        "inputSchema": input_schema(trigger),
        "annotations": {
            "readOnlyHint": False,
            "destructiveHint": False,
            "idempotentHint": False,
            "openWorldHint": True,
        },
    }


class McpTools:
    """Lists the tools and runs a call for a caller."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._calls: dict[str, Callable[[dict[str, Any], Caller], ToolResult]] = {
            "get_execution": self._get_execution,
            "list_executions": self._list_executions,
            "approve_step": self._approve,
            "reject_step": self._reject,
            "retry_step": self._retry,
        }

    def list(self) -> list[dict[str, Any]]:
        return [workflow_tool(r) for r in self.engine.triggers.tools.records()] + FIXED_TOOLS

    def call(self, name: str, arguments: dict[str, Any], caller: Caller) -> ToolResult:
        """Run one tool; Stepline's refusals come back as an error result, an unknown name raises."""
        if name not in _FIXED_NAMES:
            try:
                self.engine.triggers.tools.resolve(name)
            except NotFound as error:
                raise UnknownTool(f"unknown tool: {name}") from error
        try:
            if name in self._calls:
                return self._calls[name](arguments, caller)
            return self._start(name, arguments, caller)
        except SteplineError as error:
            return refused(error)

    # ------------------------------------------------------------------ tools
    def _start(self, name: str, arguments: dict[str, Any], caller: Caller) -> ToolResult:
        require(caller.actor, Role.OPERATOR)
        details: dict[str, Any] = {}
        if caller.client:
            details["client"] = dict(caller.client)
        state = self.engine.triggers.tools.start(name, arguments, caller.actor, "mcp", details)
        data = {
            "execution_id": state.execution_id,
            "workflow_id": state.workflow_id,
            "workflow_name": state.definition.name,
            "status": state.status.value,
            "started_at": state.started_at,
            "trigger": dict(state.trigger),
        }
        text = (
            f"Started execution {state.execution_id} of '{state.definition.name}' (status {data['status']}). "
            "Call get_execution with this execution_id to follow it."
        )
        return ToolResult(text, data)

    def _get_execution(self, arguments: dict[str, Any], caller: Caller) -> ToolResult:
        _only(arguments, {"execution_id"})
        state = self.engine.executions.load(_identifier(arguments, "execution_id"))
        return _overview(state, caller.actor, self.engine.executions.clock())

    def _list_executions(self, arguments: dict[str, Any], caller: Caller) -> ToolResult:
        _only(arguments, {"workflow_id", *listing.LIST_PARAMS})
        workflow_id = arguments.get("workflow_id")
        if workflow_id is not None:
            workflow_id = _identifier(arguments, "workflow_id")
        start, end = listing.span(
            listing.moment("from", arguments.get("from")), listing.moment("to", arguments.get("to"))
        )
        filters = ListFilter(
            workflow_id,
            listing.choice("status", arguments.get("status"), listing.STATUSES),
            listing.choice("trigger", arguments.get("trigger"), listing.TRIGGERS),
            start,
            end,
        )
        page = self.engine.store.executions.list(
            filters,
            listing.page_size(arguments.get("limit")),
            listing.token(arguments.get("next_token")),
            iso(self.engine.executions.clock()),
        )
        items = [summary_view(s) for s in page.items]
        lines = [f"{len(items)} execution(s), newest first" + (" (more: pass next_token)" if page.next_token else "")]
        lines += [
            f"- {i.get('execution_id')}: {i.get('status')}, workflow {i.get('workflow_id')}, "
            f"started {i.get('started_at')}"
            for i in items
        ]
        return ToolResult("\n".join(lines), {"items": items, "next_token": page.next_token})

    def _approve(self, arguments: dict[str, Any], caller: Caller) -> ToolResult:
        return self._decide(arguments, caller, Approve)

    def _reject(self, arguments: dict[str, Any], caller: Caller) -> ToolResult:
        return self._decide(arguments, caller, Reject)

    def _decide(self, arguments: dict[str, Any], caller: Caller, command: type[Approve] | type[Reject]) -> ToolResult:
        limits = {"max_tokens", "max_cost_usd"} if command is Approve else set()
        _only(arguments, {"execution_id", "step_id", "comment"} | limits)
        execution_id = _identifier(arguments, "execution_id")
        step_id = _identifier(arguments, "step_id")
        require(caller.actor, Role.OPERATOR)
        action: Command
        if command is Reject:
            action = Reject(step_id, caller.actor, check_reject_reason(arguments.get("comment")))
        else:
            errors = limit_errors(arguments.get("max_tokens"), arguments.get("max_cost_usd"))
            if errors:
                raise ValidationError(errors)
            action = Approve(
                step_id,
                caller.actor,
                check_text("comment", arguments.get("comment")),
                arguments.get("max_tokens"),
                arguments.get("max_cost_usd"),
            )
        state = self.engine.executions.act(execution_id, action)
        verb = "Approved" if command is Approve else "Rejected"
        result = _overview(state, caller.actor, self.engine.executions.clock())
        return ToolResult(f"{verb} step {step_id}. {result.text}", result.data)

    def _retry(self, arguments: dict[str, Any], caller: Caller) -> ToolResult:
        _only(arguments, {"execution_id", "step_id", "instructions", "side_effects"})
        execution_id = _identifier(arguments, "execution_id")
        step_id = _identifier(arguments, "step_id")
        require(caller.actor, "operator")
        mode = check_side_effects_mode(arguments.get("side_effects"))
        instructions = None
        if "instructions" in arguments:
            state = self.engine.executions.load(execution_id)
            if step_id in {s.id for s in state.steps}:  # an unknown step is the action's refusal
                instructions = check_instructions(state, step_id, arguments["instructions"])
        state = self.engine.executions.act(execution_id, RetryStep(step_id, caller.actor, instructions, mode))
        result = _overview(state, caller.actor, self.engine.executions.clock())
        return ToolResult(f"Retrying step {step_id} (side effects: {mode.value}). {result.text}", result.data)


def refused(error: SteplineError) -> ToolResult:
    """Stepline's refusal as a tool error: the reason, the HTTP status REST would answer, the bad fields."""
    data: dict[str, Any] = {"error": {"code": error.code, "status": error.status, "message": error.message}}
    if isinstance(error, ValidationError):
        data["error"]["errors"] = [e.to_dict() for e in error.errors]
    return ToolResult(f"Refused: {error.message}", data, is_error=True)


def _overview(state: ExecutionState, actor: Actor, now: datetime) -> ToolResult:
    """What a conversation needs about an execution: status, current step, outputs, pending decisions,
    and what this caller may do (the view's ``actions``, from the same ``decide`` as the routes)."""
    view = execution_view(state, actor, now)
    current = state.current
    awaiting: list[dict[str, Any]] = []
    for step, sdef, shown in zip(state.steps, state.definition.steps, view["steps"], strict=True):
        if step.state == StepState.WAITING_FOR_APPROVAL and step.waiting_gate == BUDGET_GATE:
            approvers = list(state.budget.approvers) if state.budget else []
            awaiting.append(
                {
                    "step_id": step.id,
                    "step_name": sdef.name,
                    "decision": BUDGET_GATE,
                    "approvers": approvers,
                    "who": _who(approvers),
                    "budget": shown.get("budget"),
                    "tools": [
                        "approve_step (with max_cost_usd/max_tokens above what was spent to raise the budget)",
                        "reject_step",
                    ],
                }
            )
        elif step.state == StepState.WAITING_FOR_APPROVAL and sdef.gate is not None:
            approvers = list(sdef.gate.approvers)
            excluded = starter(state) if sdef.gate.separate_from_starter else None
            awaiting.append(
                {
                    "step_id": step.id,
                    "step_name": sdef.name,
                    "decision": sdef.gate.type,
                    "approvers": approvers,
                    "who": _who(approvers, excluded),
                    "separate_from_starter": sdef.gate.separate_from_starter,
                    "output": step.output if step.has_output else None,
                    "tools": ["approve_step", "reject_step"]
                    if sdef.gate.type == "approval"
                    else ["approve_step", "reject_step", "(review: REST or the UI, to amend the output)"],
                }
            )
        elif step.state == StepState.FAILED and step is current:
            awaiting.append(
                {
                    "step_id": step.id,
                    "step_name": sdef.name,
                    "decision": "failed_step",
                    "error": shown["error"],
                    "who": "any key with the operator role",
                    "choices": ["retry", "edit_and_retry", "skip", "cancel"],
                    "tools": ["retry_step"],
                    "side_effects": shown.get("side_effects") or [],
                    "side_effects_summary": shown.get("side_effects_summary"),
                }
            )
    outputs = {s["id"]: s["output"] for s in view["steps"] if s["state"] == StepState.COMPLETED.value}
    data: dict[str, Any] = {
        "execution_id": view["execution_id"],
        "workflow_id": view["workflow_id"],
        "workflow_name": view["workflow_name"],
        "workflow_version": view["workflow_version"],
        "status": view["status"],
        "trigger": view["trigger"],
        "input": view["input"],
        "started_at": view["started_at"],
        "ended_at": view["ended_at"],
        "current_step": None
        if current is None
        else {
            "id": current.id,
            "name": state.step_def(current.id).name,
            "state": current.state.value,
            "attempt": current.attempt,
        },
        "outputs": outputs,
        "awaiting": awaiting,
        "usage_total": view["usage_total"],
        "actions": view.get("actions", []),
        "steps": [
            {
                k: s.get(k)
                for k in (
                    "id",
                    "name",
                    "agent",
                    "state",
                    "attempt",
                    "error",
                    "comments",
                    "decision",
                    "actions",
                    "side_effects",
                    "side_effects_summary",
                )
            }
            for s in view["steps"]
        ],
    }
    if view["status"] == ExecutionStatus.COMPLETED and view["steps"]:
        data["output"] = view["steps"][-1]["output"]
    text = f"Execution {data['execution_id']} of '{data['workflow_name']}' is {data['status']}."
    if current is not None:
        text += f" Current step: {current.id} ({current.state.value})."
    for item in awaiting:
        if item["decision"] == "failed_step":
            text += f" Step {item['step_id']} failed: {(item['error'] or {}).get('message', '')}"
            if item.get("side_effects_summary"):
                text += f" It already {item['side_effects_summary']}; retry_step replays them unless told to rerun."
        elif item["decision"] == BUDGET_GATE:
            spent = (item["budget"] or {}).get("spent") or {}
            text += (
                f" Step {item['step_id']} stopped at the execution's budget ({spent.get('tokens')} tokens, "
                f"${spent.get('cost_usd')} spent; limits {(item['budget'] or {}).get('limits')}): it awaits a "
                f"decision by {item['who']}."
            )
        else:
            text += f" Step {item['step_id']} awaits {item['decision']} by {item['who']}."
    return ToolResult(text, data)


def _who(approvers: list[str], excluded: str | None = None) -> str:
    who = ", ".join(approvers) if approvers else "any key with the operator role"
    return f"{who}, except '{excluded}' (who started it: separation of duties)" if excluded else who


def _only(arguments: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(arguments) - allowed)
    if unknown:
        raise ValidationError([FieldError(k, "unknown argument") for k in unknown])


def _identifier(arguments: dict[str, Any], name: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID:
        raise ValidationError(FieldError(name, f"must be a string of 1 to {MAX_ID} characters"))
    return value
