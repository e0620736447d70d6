"""JSON Schemas of ../shared/API.md, for the OpenAPI document (``chalicelib.api.openapi``).

``components.components()`` are the named shapes; ``ROUTE_SHAPES`` says, per ``"METHOD /path"``,
which shapes a route takes and gives. Entries for routes the app does not (yet) serve
are unused: the document lists only the routes of ``app.routes``. A route module may
instead pass ``shape=RouteShape(...)`` to ``boundary.endpoint``; that wins over this table.

Response schemas of routes whose shapes the contract leaves open are deliberately loose
(objects with the contract's fields, extra fields allowed), since the schemathesis test
checks every response against them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib.api.components import (
    _MAX_GRACE_SECONDS,
    ANY,
    BOUND,
    OBJECT,
    ROLES,
    SIDE_EFFECT_MODES,
    STATUSES,
    STRING,
    TRIGGER_TYPES,
    _obj,
    nullable,
    ref,
)
from chalicelib.api.openapi import Param, RouteShape
from chalicelib.domain.cron import time_zones
from chalicelib.domain.spending import MAX_BUDGET_TOKENS, MAX_BUDGET_USD, MIN_BUDGET_USD
from chalicelib.engine.events import SOURCE_NAME_PATTERN
from chalicelib.engine.stats import MAX_BUCKETS
from chalicelib.engine.tools import MAX_ID_LENGTH
from chalicelib.engine.webhook_schemes import SCHEMES

# --- parameters and request bodies -------------------------------------------------------

LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (default 50)")
NEXT_TOKEN = Param("next_token", STRING, "the `next_token` of the previous page (opaque)")


def choice(values: list[str]) -> dict[str, Any]:
    """An optional enum query parameter; some routes read an empty value as absent."""
    return {"enum": [*values, ""]}


LIST_FILTERS = (
    Param("status", choice(STATUSES), "only executions in this status"),
    Param("trigger", choice(TRIGGER_TYPES), "only executions started by this kind of trigger"),
    Param("from", BOUND, "started at or after (RFC 3339, with a zone)"),
    Param("to", BOUND, "started at or before (RFC 3339, with a zone; not before `from`)"),
    LIMIT,
    NEXT_TOKEN,
)
TEXT = nullable({"type": "string", "maxLength": 4000})  # null means absent
COMMENT = _obj({"comment": TEXT}, closed=True)
REASON = _obj({"reason": TEXT}, closed=True)
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "a repeat with the same key returns the first execution",
    location="header",
)
IF_MATCH = Param(
    "If-Match",
    {"type": "string", "pattern": "^[0-9]+$"},
    "the version being replaced; a mismatch is a 400",
    location="header",
)
LOOSE = OBJECT  # a shape the contract leaves open
CALL_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
SECRET_RULES = (
    "the provider's signing secret, checked against `scheme`: standard `whsec_` + base64 of at least 16 "
    "bytes; github 16 to 1024 characters; stripe `whsec_...`; slack 16 to 256 letters and digits. "
    "Required for stripe and slack."
)

#: ``"METHOD /path"`` -> shape. Keep in step with ../shared/API.md.
ROUTE_SHAPES: dict[str, RouteShape] = {
    # system
    "GET /health": RouteShape(_obj({"status": {"const": "ok"}}, ("status",)), role=None),
    "GET /openapi.json": RouteShape(OBJECT, role=None, description="This document."),
    "GET /me": RouteShape(_obj({"name": STRING, "role": {"enum": ROLES}}, ("name", "role"))),
    "POST /keys": RouteShape(
        _obj({"key": STRING, "name": STRING, "role": {"enum": ROLES}}, ("key", "name", "role")),
        _obj(
            {"name": {"type": "string", "minLength": 1, "maxLength": 100}, "role": {"enum": ROLES}},
            ("name", "role"),
            closed=True,
        ),
        description="The clear key is in this answer only; it is stored hashed.",
    ),
    # workflows
    "GET /workflows": RouteShape(ref("WorkflowList")),
    "POST /workflows": RouteShape(ref("Workflow"), ref("WorkflowDefinition")),
    "GET /workflows/{workflow_id}": RouteShape(ref("Workflow")),
    "PUT /workflows/{workflow_id}": RouteShape(
        ref("Workflow"),
        ref("WorkflowDefinition"),
        params=(IF_MATCH,),
        description="Running executions keep their version.",
    ),
    "GET /workflows/{workflow_id}/versions/{version}": RouteShape(
        _obj(
            {"workflow_id": STRING, "version": {"type": "integer"}, "definition": OBJECT},
            ("workflow_id", "version", "definition"),
        )
    ),
    "POST /workflows/{workflow_id}/enable": RouteShape(ref("Workflow"), request_required=False),
    "POST /workflows/{workflow_id}/disable": RouteShape(ref("Workflow"), request_required=False),
    "POST /workflows/{workflow_id}/executions": RouteShape(
        ref("Execution"),
        _obj({"inputs": OBJECT}, closed=True),
        request_required=False,
        params=(IDEMPOTENCY_KEY,),
        description="Starts a manual execution; bad inputs are a 400 naming each.",
    ),
    "GET /workflows/{workflow_id}/executions": RouteShape(
        ref("ExecutionPage"), params=LIST_FILTERS, description="Newest first."
    ),
    "GET /workflows/{workflow_id}/stats": RouteShape(
        LOOSE,
        params=(
            Param("from", BOUND, "first bucket holds this moment (default: `to` minus 30 days or 48 hours)"),
            Param("to", BOUND, "after `from`; default now"),
            Param("bucket", choice(["day", "hour"]), "bucket size (default day)"),
            Param("tz", choice(list(time_zones())), "IANA time zone of the day boundaries (default UTC)"),
        ),
        description=f"`from` must be before `to`, and the range hold at most {MAX_BUCKETS['day']} day or "
        f"{MAX_BUCKETS['hour']} hour buckets.",
    ),
    "GET /workflows/{workflow_id}/schedule": RouteShape(
        LOOSE, params=(Param("count", {"type": "integer", "minimum": 1, "maximum": 50}, "how many next runs (5)"),)
    ),
    # executions
    "GET /executions": RouteShape(
        ref("ExecutionPage"),
        params=(Param("workflow_id", STRING, "only this workflow's executions"), *LIST_FILTERS),
        description="Across workflows, newest first (the start months of the range, newest first).",
    ),
    "POST /executions/bulk": RouteShape(
        LOOSE,
        _obj(
            {
                "action": {"enum": ["cancel", "retry"]},
                "dry_run": {"type": "boolean"},
                "filters": _obj(
                    {
                        "workflow_id": {"type": "string", "minLength": 1},
                        "status": {"enum": STATUSES},
                        "trigger": {"enum": TRIGGER_TYPES},
                        "from": BOUND,
                        "to": BOUND,
                    },
                    closed=True,
                ),
                "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
                "chunk_size": {"type": "integer", "minimum": 1, "maximum": 100},
            },
            ("action",),
            closed=True,
        ),
        other_statuses=((202, "Accepted: the job runs in chunks through SQS; see GET /executions/bulk/{job_id}"),),
        description="`dry_run` (the default) answers the count (up to `limit`) and the first ids; `retry` "
        "applies to `failed` executions unless `filters.status` says otherwise.",
    ),
    "GET /executions/bulk/{job_id}": RouteShape(
        LOOSE,
        params=(LIMIT, NEXT_TOKEN),
        description="The job's progress (`state`, `processed`, `succeeded`, `conflicts`, `errors`) and a page "
        "of per-execution `results`.",
    ),
    "GET /executions/{execution_id}": RouteShape(ref("Execution")),
    "GET /executions/{execution_id}/history": RouteShape(
        ref("History"),
        params=(
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size (default 1000)"),
            NEXT_TOKEN,
        ),
        description="The append-only audit trail, in order.",
    ),
    "POST /executions/{execution_id}/cancel": RouteShape(ref("Execution"), REASON, request_required=False),
    "POST /executions/{execution_id}/steps/{step_id}/retry": RouteShape(
        ref("Execution"),
        _obj({"instructions": STRING, "side_effects": {"enum": SIDE_EFFECT_MODES, "default": "replay"}}, closed=True),
        request_required=False,
        description="With `instructions`: edit and retry. `side_effects`: `replay` (the default) hands a call "
        "identical to an earlier successful one (method, URL, body; an email's sender, recipients and content) "
        "its recorded result instead of making it again; `rerun` makes every call again with new idempotency keys.",
    ),
    "POST /executions/{execution_id}/steps/{step_id}/skip": RouteShape(
        ref("Execution"), REASON, request_required=False
    ),
    "POST /executions/{execution_id}/steps/{step_id}/force-advance": RouteShape(
        ref("Execution"), COMMENT, request_required=False
    ),
    "POST /executions/{execution_id}/steps/{step_id}/approve": RouteShape(
        ref("Execution"),
        _obj(
            {
                "comment": TEXT,
                "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_BUDGET_TOKENS},
                "max_cost_usd": {"type": "number", "minimum": MIN_BUDGET_USD, "maximum": MAX_BUDGET_USD},
            },
            closed=True,
        ),
        request_required=False,
        description="At a `budget` gate, `max_tokens`/`max_cost_usd` raise the execution's budget (above what "
        "it spent) and the step runs again as a new attempt; without them the new attempt may run past the budget.",
    ),
    "POST /executions/{execution_id}/steps/{step_id}/reject": RouteShape(
        ref("Execution"),
        _obj({"comment": {"type": "string", "minLength": 1, "maxLength": 4000}}, ("comment",), closed=True),
        description="`comment` is the reason and is required (a 400 names it when missing or blank).",
    ),
    "POST /executions/{execution_id}/steps/{step_id}/review": RouteShape(
        ref("Execution"),
        _obj({"comment": TEXT, "output": ANY}, closed=True),
        request_required=False,
        description="`output` amends the step's output.",
    ),
    "GET /workflows/{workflow_id}/versions": RouteShape(
        _obj(
            {
                "workflow_id": STRING,
                "current_version": {"type": "integer"},
                "items": {
                    "type": "array",
                    "items": _obj(
                        {"version": {"type": "integer"}, "created_at": STRING, "created_by": nullable(STRING)},
                        ("version", "created_at"),
                    ),
                },
            },
            ("workflow_id", "current_version", "items"),
        ),
        description="Newest first.",
    ),
    "GET /templates": RouteShape(
        _obj(
            {
                "items": {
                    "type": "array",
                    "items": _obj(
                        {"name": STRING, "description": STRING, "definition": ref("WorkflowDefinition")},
                        ("name", "definition"),
                    ),
                }
            },
            ("items",),
        ),
        description="The sample workflows, to start a new definition from.",
    ),
    "GET /keys": RouteShape(
        _obj(
            {
                "items": {
                    "type": "array",
                    "items": _obj(
                        {
                            "name": STRING,
                            "role": {"enum": ROLES},
                            "created_at": nullable(STRING),
                            "created_by": nullable(STRING),
                        },
                        ("name", "role"),
                    ),
                }
            },
            ("items",),
        ),
        description="Names and roles only; the keys themselves are never shown again.",
    ),
    "DELETE /keys/{name}": RouteShape(
        None,
        content_types=(),
        errors=((404, "No key has that name"),),
        description="The key is refused (401) from now on.",
    ),
    # sources and webhooks
    "POST /sources": RouteShape(
        _obj({"name": STRING, "scheme": STRING, "secret": STRING}, ("name",)),
        _obj(
            {
                "name": {
                    "type": "string",
                    "pattern": SOURCE_NAME_PATTERN,
                    "description": "names starting with `aws.` are reserved for EventBridge sources",
                },
                "scheme": {"enum": list(SCHEMES), "description": "default `standard`"},
                "secret": {"type": "string", "description": SECRET_RULES},
            },
            ("name",),
            closed=True,
        ),
        description="Without `secret`, a generated signing secret is in this answer only; "
        "a provider-issued `secret` (required for stripe and slack) is kept "
        "and never shown.",
    ),
    "GET /sources": RouteShape(_obj({"items": {"type": "array", "items": OBJECT}}, ("items",))),
    "POST /webhooks/{source}": RouteShape(
        _obj({"event_id": STRING, "executions": {"type": "array", "items": STRING}}),
        _obj({"type": STRING}, ("type",)),
        role=None,
        params=tuple(
            Param(h, STRING, location="header") for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
        ),
        other_statuses=((200, "A repeated webhook-id: the first answer"),),
        errors=((401, "Bad or missing signature, or a stale timestamp: nothing started"),),
        description="Signed with the Standard Webhooks scheme; a bad signature is a 401.",
    ),
    "POST /sources/{name}/rotate": RouteShape(
        _obj({"name": STRING, "secret": STRING}, ("name",)),
        _obj(
            {
                "grace_seconds": {"type": "integer", "minimum": 0, "maximum": _MAX_GRACE_SECONDS},
                "secret": {"type": "string", "description": SECRET_RULES},
            },
            closed=True,
        ),
        request_required=False,
        description="A new secret (generated and shown once, or the provider's new one as `secret`, never "
        "shown); the old one stays valid for `grace_seconds`.",
    ),
    "GET /events/{event_id}": RouteShape(
        _obj({"event_id": STRING, "source": nullable(STRING), "type": nullable(STRING)}, ("event_id",))
    ),
    "POST /events/{event_id}/replay": RouteShape(
        _obj({"event_id": STRING, "executions": {"type": "array", "items": STRING}}, ("event_id", "executions")),
        description="Starts the workflows that match the stored event again.",
    ),
    # agents' view of the API
    "GET /tools": RouteShape(
        _obj({"tools": {"type": "array", "items": OBJECT}}, ("tools",)),
        params=(Param("format", choice(["anthropic", "openai"]), "tool description dialect"),),
    ),
    "POST /tools/{name}/invoke": RouteShape(
        ref("Execution"),
        _obj(
            {
                "arguments": {"type": "object", "description": "the tool's inputs, as its `input_schema` says"},
                "conversation_id": CALL_ID,
                "tool_call_id": CALL_ID,
            },
            closed=True,
        ),
        request_required=False,
        params=(IDEMPOTENCY_KEY, Param("X-Conversation-Id", CALL_ID, location="header")),
        description="Starts the tool's workflow with `arguments` as its inputs.",
    ),
    # the web UI (static files, no key: the page asks for one)
    "GET /": RouteShape(content_types=("text/html",), role=None),
    "GET /ui/{name}": RouteShape(
        content_types=("text/html", "text/javascript", "text/css", "image/svg+xml"), role=None
    ),
}

_SUMMARIES = {
    "GET /health": "Liveness check",
    "GET /openapi.json": "This OpenAPI document",
    "GET /me": "The caller's key name and role",
    "POST /keys": "Create an API key",
    "GET /workflows": "List workflows with their active execution counts",
    "POST /workflows": "Create a workflow",
    "GET /workflows/{workflow_id}": "Get a workflow's current definition",
    "PUT /workflows/{workflow_id}": "Replace a workflow's definition (new version)",
    "GET /workflows/{workflow_id}/versions": "List a workflow's versions",
    "GET /templates": "Sample definitions to start a workflow from",
    "GET /keys": "List API keys (names and roles)",
    "DELETE /keys/{name}": "Revoke an API key",
    "GET /workflows/{workflow_id}/versions/{version}": "Get one stored version of a definition",
    "POST /workflows/{workflow_id}/enable": "Enable a workflow",
    "POST /workflows/{workflow_id}/disable": "Disable a workflow",
    "POST /workflows/{workflow_id}/executions": "Start an execution",
    "GET /workflows/{workflow_id}/executions": "List a workflow's executions",
    "GET /workflows/{workflow_id}/stats": "Execution counts and durations per time bucket",
    "GET /workflows/{workflow_id}/schedule": "A scheduled workflow's next runs",
    "GET /executions": "List executions across workflows",
    "POST /executions/bulk": "Cancel or retry many executions by filter",
    "GET /executions/bulk/{job_id}": "A bulk job's progress and per-execution results",
    "GET /executions/{execution_id}": "Get an execution and its step timeline",
    "GET /executions/{execution_id}/history": "An execution's audit trail",
    "POST /executions/{execution_id}/cancel": "Cancel an execution",
    "POST /executions/{execution_id}/steps/{step_id}/retry": "Retry a failed step (optionally with new instructions)",
    "POST /executions/{execution_id}/steps/{step_id}/skip": "Skip a step",
    "POST /executions/{execution_id}/steps/{step_id}/force-advance": "Force a step to completed",
    "POST /executions/{execution_id}/steps/{step_id}/approve": "Approve a gated step",
    "POST /executions/{execution_id}/steps/{step_id}/reject": "Reject a gated step",
    "POST /executions/{execution_id}/steps/{step_id}/review": "Review (and amend) a gated step's output",
    "POST /sources": "Create an event source and its signing secret",
    "GET /sources": "List event sources",
    "POST /webhooks/{source}": "Deliver a signed event",
    "GET /tools": "Enabled manual workflows as LLM tool descriptions",
    "POST /tools/{name}/invoke": "Start a workflow as a tool call",
    "POST /sources/{name}/rotate": "Rotate an event source's signing secret",
    "GET /events/{event_id}": "A received event and what it started",
    "POST /events/{event_id}/replay": "Replay a stored event",
    "GET /": "The web UI's page",
    "GET /ui/{name}": "A file of the web UI (script, style sheet, image)",
}
ROUTE_SHAPES = {key: replace(shape, summary=_SUMMARIES.get(key)) for key, shape in ROUTE_SHAPES.items()}
