"""The named JSON Schemas of the REST contract (``#/components/schemas/<name>``) and the
small schema helpers the route table (``chalicelib.api.schemas``) builds on. The numbers and
word lists come from the domain (``limits``, ``vocabulary``, ``states``), never retyped.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain import limits
from chalicelib.domain.cron import time_zones
from chalicelib.domain.notify import MAX_TARGETS, NOTIFY_EVENTS
from chalicelib.domain.side_effects import RetryMode, SideEffectKind, SideEffectStatus
from chalicelib.domain.spending import MAX_BUDGET_TOKENS, MAX_BUDGET_USD, MIN_BUDGET_USD, ON_EXCEED
from chalicelib.domain.states import ExecutionStatus, StepState
from chalicelib.domain.vocabulary import Role
from chalicelib.engine.events import MAX_GRACE
from chalicelib.engine.listing import TIMESTAMP_PATTERN
from chalicelib.triggers import trigger_kind_names

_MAX_GRACE_SECONDS = int(MAX_GRACE.total_seconds())

# The domain's words and limits, as JSON Schema enums (plain strings: the document is JSON).
STATUSES = [s.value for s in ExecutionStatus]
STEP_STATES = [s.value for s in StepState]
STEP_ACTIONS = ["retry", "edit_and_retry", "skip", "approve", "reject", "review", "force_advance"]
TRIGGER_TYPES = trigger_kind_names()
INPUT_TYPES = list(limits.INPUT_TYPES)
ROLES = [r.value for r in Role]
SIDE_EFFECT_MODES = [m.value for m in RetryMode]


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
#: A text the server refuses when blank (whitespace only).
NOT_BLANK = "\\S"
TIMESTAMP = {"type": "string", "format": "date-time"}
#: A ``from``/``to`` bound: the pattern the server checks (``chalicelib.engine.listing``).
BOUND = {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}
OBJECT = {"type": "object"}
ANY: dict[str, Any] = {}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), closed: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def components() -> dict[str, Any]:
    """The named schemas (``#/components/schemas/<name>``)."""
    from chalicelib.agents import agent_names

    input_field = _obj(
        {
            "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
            "type": {"enum": INPUT_TYPES},
            "required": {"type": "boolean"},
            "default": ANY,
            "options": {"type": "array", "items": STRING},
            "description": STRING,
            "label": STRING,
        },
        ("name", "type"),
    )
    inputs = {
        "type": "array",
        "items": ref("InputField"),
        "maxItems": limits.MAX_INPUTS,
        "description": "the start form's fields",
    }
    text = {"type": "string", "maxLength": limits.MAX_NAME, "pattern": NOT_BLANK}
    trigger = {
        "description": "One shape per `type`; the fields of another type are refused.",
        "oneOf": [
            _obj({"type": {"const": "manual"}, "inputs": inputs}, ("type",), closed=True),
            _obj(
                {
                    "type": {"const": "event"},
                    "source": {**text, "description": "the webhook source name (POST /sources)"},
                    "event_type": {**text, "description": "the body's `type` to match"},
                    "filter": {"type": "string", "description": "optional JMESPath filter over the event"},
                },
                ("type", "source", "event_type"),
                closed=True,
            ),
            _obj(
                {
                    "type": {"const": "schedule"},
                    "cron": {"type": "string", "description": "five-field cron, e.g. `0 9 * * MON-FRI`"},
                    "timezone": {"enum": list(time_zones()), "description": "IANA zone (default UTC)"},
                },
                ("type", "cron"),
                closed=True,
            ),
        ],
    }
    step_def = _obj(
        {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "name": STRING,
            "agent": {"enum": sorted(agent_names())},
            "instructions": {
                "type": "string",
                "maxLength": limits.MAX_INSTRUCTIONS,
                "description": "for `transform`: a JMESPath expression over `{input, prev, steps}`",
            },
            "config": OBJECT,
            "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": limits.MAX_TIMEOUT_SECONDS},
            "retry": _obj(
                {
                    "max_attempts": {"type": "integer", "minimum": 1, "maximum": limits.MAX_ATTEMPTS},
                    "backoff_seconds": {"type": "number", "minimum": 0, "maximum": limits.MAX_BACKOFF_SECONDS},
                }
            ),
            "gate": _obj(
                {
                    "type": {"enum": list(limits.GATE_TYPES)},
                    "approvers": {"type": "array", "items": STRING},
                    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": limits.MAX_GATE_TIMEOUT_SECONDS},
                    "on_timeout": {"enum": list(limits.ON_TIMEOUT)},
                    "separate_from_starter": {"type": "boolean"},
                },
                ("type",),
            ),
        },
        ("id", "agent"),
    )
    notify = {
        "type": "array",
        "maxItems": MAX_TARGETS,
        "description": "who hears about this workflow's executions",
        "items": _obj(
            {
                "on": {"type": "array", "minItems": 1, "items": {"enum": list(NOTIFY_EVENTS)}},
                "email": {"type": "string", "format": "email"},
                "webhook": {"type": "string", "description": "https:// URL, signed with Standard Webhooks"},
            },
            ("on",),
        ),
    }
    budget = _obj(
        {
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_BUDGET_TOKENS},
            "max_cost_usd": {"type": "number", "minimum": MIN_BUDGET_USD, "maximum": MAX_BUDGET_USD},
            "on_exceed": {"enum": list(ON_EXCEED), "default": "pause"},
            "approvers": {"type": "array", "items": {"type": "string", "pattern": "\\S"}},
        },
    )
    budget["anyOf"] = [{"required": ["max_tokens"]}, {"required": ["max_cost_usd"]}]
    budget["description"] = (
        "model spending allowed per execution, over all steps and attempts: the llm agent checks it "
        "before each model request and tool call (at least one limit)"
    )
    usage_total = _obj(
        {
            "input_tokens": {"type": "integer"},
            "output_tokens": {"type": "integer"},
            "cost_usd": {"type": "number", "description": "US dollars, rounded half up to 6 decimals per attempt"},
            "unpriced_models": {"type": "array", "items": STRING},
        },
        ("input_tokens", "output_tokens", "cost_usd"),
    )
    definition = _obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": limits.MAX_NAME, "pattern": NOT_BLANK},
            "description": {"type": "string", "maxLength": limits.MAX_DESCRIPTION},
            "enabled": {"type": "boolean"},
            "trigger": ref("Trigger"),
            "steps": {"type": "array", "items": ref("StepDefinition"), "minItems": 1, "maxItems": limits.MAX_STEPS},
            "notify": notify,
            "budget": budget,
        },
        ("name", "trigger", "steps"),
    )
    workflow = _obj(
        {
            "workflow_id": STRING,
            "name": STRING,
            "description": STRING,
            "enabled": {"type": "boolean"},
            "trigger": ref("Trigger"),
            "version": {"type": "integer"},
            "active_executions": {"type": "integer", "minimum": 0},
            "steps": {"type": "array", "items": ref("StepDefinition")},
            "created_at": nullable(STRING),
            "updated_at": nullable(STRING),
            "notify": notify,
            "budget": budget,
            "notification_secret": {
                "type": "string",
                "description": "only in the answer that set the first webhook target: shown once",
            },
        },
        ("workflow_id", "name", "enabled", "trigger", "version", "active_executions"),
    )
    step = _obj(
        {
            "id": STRING,
            "name": STRING,
            "agent": STRING,
            "state": {"enum": STEP_STATES},
            "attempt": {"type": "integer"},
            "started_at": nullable(STRING),
            "completed_at": nullable(STRING),
            "output": ANY,
            "error": nullable(OBJECT),
            "comments": {"type": "array", "items": OBJECT},
            "decision": nullable(OBJECT),
            "instructions": nullable(STRING),
            "gate": nullable(STRING),
            "timeout_seconds": {"type": "integer"},
            "deadline": nullable(STRING),
            "retry_at": STRING,
            "skip_reason": nullable(STRING),
            "original_output": ANY,
            "gate_timeout_at": {
                "type": "string",
                "description": "a waiting gate with `timeout_seconds`: when the system decides its `on_timeout`",
            },
            "actions": {"type": "array", "items": {"enum": STEP_ACTIONS}},
            "usage": {"type": "object", "description": "model usage of the latest attempt, with its cost_usd"},
            "usage_total": usage_total,
            "budget": {
                "type": "object",
                "description": "at a budget gate: limits, reached, spent, stopped_before and on (what was spent on)",
            },
            "side_effects": {"type": "array", "items": ref("SideEffect")},
            "side_effects_summary": nullable(STRING),
        },
        ("id", "name", "agent", "state", "attempt"),
    )
    summary = _obj(
        {
            "execution_id": STRING,
            "workflow_id": STRING,
            "workflow_version": {"type": "integer"},
            "status": {"enum": STATUSES},
            "trigger": ref("ExecutionTrigger"),
            "started_at": STRING,
            "ended_at": nullable(STRING),
        },
        ("execution_id", "workflow_id", "status", "started_at"),
    )
    execution = _obj(
        {
            **summary["properties"],
            "workflow_name": STRING,
            "input": ANY,
            "steps": {"type": "array", "items": ref("Step")},
            "completed_steps_not_undone": {"type": "array", "items": OBJECT},
            "usage_total": usage_total,
            "side_effects_not_undone": {
                "type": "array",
                "items": OBJECT,
                "description": "a cancelled execution: every call its steps made elsewhere (`SideEffect` plus `step_id`)",
            },
            "actions": {"type": "array", "items": {"enum": ["cancel"]}},
        },
        ("execution_id", "workflow_id", "workflow_version", "status", "trigger", "started_at", "steps"),
    )
    return {
        "Error": _obj(
            {
                "Code": STRING,
                "Message": STRING,
                "errors": {"type": "array", "items": _obj({"field": STRING, "message": STRING}, ("field", "message"))},
            },
            ("Code", "Message"),
        ),
        "InputField": input_field,
        "Trigger": trigger,
        "StepDefinition": step_def,
        "WorkflowDefinition": definition,
        "Workflow": workflow,
        "WorkflowList": _obj({"items": {"type": "array", "items": ref("Workflow")}}, ("items",)),
        "ExecutionTrigger": _obj({"type": {"enum": TRIGGER_TYPES}}, ("type",)),
        "Step": step,
        "SideEffect": _obj(
            {
                "attempt": {"type": "integer"},
                "n": {"type": "integer", "description": "its number within the attempt"},
                "kind": {"enum": [k.value for k in SideEffectKind]},
                "name": {"type": "string", "description": "the llm tool's name"},
                "target": {
                    "type": "string",
                    "description": "`METHOD scheme://host/path` (no query or credentials), or `email to <recipients>`",
                },
                "status": {"enum": [s.value for s in SideEffectStatus]},
                "at": STRING,
                "finished_at": STRING,
                "idempotency_key": STRING,
                "http_status": nullable({"type": "integer"}),
                "message_id": STRING,
                "replayed_from": _obj({"attempt": {"type": "integer"}, "n": {"type": "integer"}}),
            },
            ("attempt", "n", "kind", "target", "status", "at", "idempotency_key"),
        ),
        "Execution": execution,
        "ExecutionSummary": summary,
        "ExecutionPage": _obj(
            {"items": {"type": "array", "items": ref("ExecutionSummary")}, "next_token": nullable(STRING)},
            ("items", "next_token"),
        ),
        "HistoryItem": _obj(
            {
                "seq": {"type": "integer"},
                "at": STRING,
                "type": STRING,
                "step_id": nullable(STRING),
                "attempt": nullable({"type": "integer"}),
                "actor": nullable(STRING),
                "details": OBJECT,
            },
            ("at", "type", "actor", "details"),
        ),
        "History": _obj(
            {"items": {"type": "array", "items": ref("HistoryItem")}, "next_token": nullable(STRING)}, ("items",)
        ),
    }
