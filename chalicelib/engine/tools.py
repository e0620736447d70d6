"""Workflows as LLM tools: ``GET /tools`` describes every enabled manual workflow, and
``POST /tools/{name}/invoke`` starts one, recording who asked and in which conversation.

Tool names must match ``^[a-zA-Z0-9_-]{1,64}$`` (OpenAI and Anthropic both require it), so a
name is the workflow name's slug plus ``__`` plus the workflow id: readable for the model,
unique, and resolvable back to the workflow without a lookup table.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.domain.machine import Actor, ExecutionState
from chalicelib.domain.vocabulary import TriggerKind
from chalicelib.engine.executions import ExecutionService
from chalicelib.engine.workflows import WorkflowService
from chalicelib.errors import FieldError, NotFound, ValidationError
from chalicelib.store import WorkflowRecord

FORMATS = ("anthropic", "openai")
MAX_DESCRIPTION = 1024
#: Longest conversation_id, tool_call_id (and X-Conversation-Id) a tool call may carry.
MAX_ID_LENGTH = 255
_SEPARATOR = "__"
_NOT_NAME = re.compile(r"[^a-z0-9]+")
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_JSON_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "enum": "string",
    "date": "string",
}


def tool_name(record: WorkflowRecord) -> str:
    slug = _NOT_NAME.sub("_", record.name.lower()).strip("_")[:40] or "workflow"
    return f"{slug}{_SEPARATOR}{record.workflow_id}"


def input_schema(trigger: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema (draft 2020-12 subset) of a manual trigger's input fields."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in trigger.get("inputs") or []:
        prop: dict[str, Any] = {"type": _JSON_TYPES[field["type"]]}
        if field["type"] == "enum":
            prop["enum"] = list(field.get("options") or [])
        if field["type"] == "date":
            prop["format"] = "date"
        text = field.get("description") or field.get("label")
        if text:
            prop["description"] = text
        if "default" in field:
            prop["default"] = field["default"]
        properties[field["name"]] = prop
        if field.get("required"):
            required.append(field["name"])
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def describe(record: WorkflowRecord, fmt: str) -> dict[str, Any]:
    about = f"Starts the Stepline workflow '{record.name}'."
    description = record.definition.get("description") or ""
    text = f"{about} {description}".strip()[:MAX_DESCRIPTION]
    schema = input_schema(record.definition["trigger"])
    if fmt == "openai":
        return {"type": "function", "function": {"name": tool_name(record), "description": text, "parameters": schema}}
    return {"name": tool_name(record), "description": text, "input_schema": schema}


class ToolService:
    def __init__(self, workflows: WorkflowService, executions: ExecutionService) -> None:
        self.workflows = workflows
        self.executions = executions

    def records(self) -> list[WorkflowRecord]:
        """The workflows offered as tools: every enabled manual workflow."""
        return [r for r in self.workflows.list() if r.enabled and r.trigger_type == TriggerKind.MANUAL]

    def list(self, fmt: str | None) -> dict[str, Any]:
        fmt = fmt or "anthropic"
        if fmt not in FORMATS:
            raise ValidationError(FieldError("format", f"must be one of {', '.join(FORMATS)}"))
        records = self.records()
        return {
            "format": fmt,
            "tools": [describe(r, fmt) for r in records],
            "workflows": {tool_name(r): r.workflow_id for r in records},
        }

    def invoke(
        self,
        name: str,
        body: dict[str, Any],
        actor: Actor,
        conversation_header: str | None,
        idempotency_key: str | None,
    ) -> ExecutionState:
        """Start the tool's workflow with ``body["arguments"]`` (the model's tool-call input)."""
        unknown = sorted(set(body) - {"arguments", "conversation_id", "tool_call_id"})
        errors = [FieldError(k, "unknown field; put the tool's input under 'arguments'") for k in unknown]
        conversation = body.get("conversation_id", conversation_header)
        call_id = body.get("tool_call_id")
        given: list[tuple[str, Any]] = [(k, body[k]) for k in ("conversation_id", "tool_call_id") if k in body]
        if conversation_header is not None:
            given.append(("X-Conversation-Id", conversation_header))
        for field, value in given:
            if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
                errors.append(FieldError(field, f"must be a string of 1 to {MAX_ID_LENGTH} characters"))
        arguments = body.get("arguments", {})
        if not isinstance(arguments, dict):
            errors.append(FieldError("arguments", "must be an object (the tool call's input)"))
        if errors:
            raise ValidationError(errors)
        details: dict[str, Any] = {}
        if conversation:
            details["conversation_id"] = conversation
        if call_id:
            details["tool_call_id"] = call_id
        # A model may repeat a tool call: its call id (or an Idempotency-Key) makes the repeat harmless.
        key = idempotency_key or (f"tool:{call_id}" if call_id else None)
        return self.start(name, arguments, actor, "tool", details, key)

    def start(
        self,
        name: str,
        arguments: dict[str, Any],
        actor: Actor,
        via: str,
        details: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> ExecutionState:
        """Start the workflow behind tool ``name``; the trigger records ``via`` (``tool``, ``mcp``)
        and ``details`` (conversation, client) beside the key name."""
        record = self.resolve(name)
        trigger: dict[str, Any] = {
            "type": "manual",
            "by": actor.name,
            "via": via,
            "tool": tool_name(record),
            **(details or {}),
        }
        return self.executions.start(record.workflow_id, arguments, trigger, actor, idempotency_key)

    def resolve(self, name: str) -> WorkflowRecord:
        """The workflow behind a tool name; 404 for a name that is no manual workflow's."""
        if not _TOOL_NAME.fullmatch(name):
            raise NotFound(f"tool {name} not found")
        workflow_id = name.rsplit(_SEPARATOR, 1)[-1]
        record = self.workflows.get(workflow_id)  # 404 for an unknown id
        if record.trigger_type != TriggerKind.MANUAL:
            raise NotFound(f"tool {name} not found (its workflow is not started manually)")
        return record
