"""The fixed MCP tools' catalogue: names, descriptions, input schemas and hints.

``mcp_tools`` executes them; this module only says what they are, so the catalogue reads in one
place and ``tools/list`` needs nothing of the engine.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.side_effects import RetryMode
from chalicelib.engine import listing
from chalicelib.engine.edits import MAX_COMMENT

MAX_ID = 200
_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID}
_COMMENT = {"type": "string", "maxLength": MAX_COMMENT, "description": "Why; kept in the execution's history."}
_DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["execution_id", "step_id"],
    "properties": {
        "execution_id": {**_ID, "description": "The execution, e.g. ex_0a1b..."},
        "step_id": {**_ID, "description": "The step waiting for approval"},
        "comment": _COMMENT,
    },
}

FIXED_TOOLS: list[dict[str, Any]] = [
    {
        "name": "get_execution",
        "title": "Get an execution",
        "description": "Shows one Stepline execution: its status, the current step, the outputs of the steps "
        "done so far, and what awaits a decision (which step, and who may approve or reject it).",
        "inputSchema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["execution_id"],
            "properties": {"execution_id": {**_ID, "description": "The execution, e.g. ex_0a1b..."}},
        },
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
    },
    {
        "name": "list_executions",
        "title": "List executions",
        "description": "Lists Stepline executions, newest first, optionally of one workflow and filtered by status, "
        "trigger and start time; pass next_token from a previous answer for the next page.",
        "inputSchema": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "workflow_id": {**_ID, "description": "Only this workflow's executions"},
                "status": {"type": "string", "enum": list(listing.STATUSES)},
                "trigger": {"type": "string", "enum": list(listing.TRIGGERS)},
                "from": {"type": "string", "description": "Started at or after (ISO 8601, e.g. 2026-01-31T00:00:00Z)"},
                "to": {"type": "string", "description": "Started at or before (ISO 8601)"},
                "limit": {"type": "integer", "minimum": 1, "maximum": listing.MAX_LIMIT},
                "next_token": {"type": "string"},
            },
        },
        "annotations": {"readOnlyHint": True, "openWorldHint": False},
    },
    {
        "name": "approve_step",
        "title": "Approve a waiting step",
        "description": "Approves a step that waits for approval, so the execution goes on. Only the approvers "
        "named by the step's gate (or any operator when it names none) may approve. At a budget gate (the "
        "execution reached its spending budget) pass max_cost_usd and/or max_tokens above what was spent to "
        "raise the budget; without them the step's next attempt may run past the budget.",
        "inputSchema": {
            **_DECISION_SCHEMA,
            "properties": {
                **_DECISION_SCHEMA["properties"],
                "max_cost_usd": {
                    "type": "number",
                    "minimum": 0.000001,
                    "description": "Budget gates only: the execution's new limit in US dollars",
                },
                "max_tokens": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Budget gates only: the execution's new token limit",
                },
            },
        },
        "annotations": {
            "readOnlyHint": False,
            "destructiveHint": False,
            "idempotentHint": False,
            "openWorldHint": False,
        },
    },
    {
        "name": "reject_step",
        "title": "Reject a waiting step",
        "description": "Rejects a step that waits for approval: the step fails and the execution stops there until "
        "an operator retries, skips or cancels. Only the gate's approvers may reject, and a reject "
        "needs a comment saying what is wrong.",
        "inputSchema": {**_DECISION_SCHEMA, "required": ["execution_id", "step_id", "comment"]},
        "annotations": {
            "readOnlyHint": False,
            "destructiveHint": True,
            "idempotentHint": False,
            "openWorldHint": False,
        },
    },
    {
        "name": "retry_step",
        "title": "Retry a failed step",
        "description": "Runs a failed step again (optionally with new instructions). Calls the step already made "
        "(tool calls and http calls that are not GET, emails sent; see side_effects in get_execution) are replayed "
        'by default: an identical call gets its recorded result and is not made again. side_effects "rerun" makes '
        "every call again with new idempotency keys; ask a person before choosing it.",
        "inputSchema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["execution_id", "step_id"],
            "properties": {
                "execution_id": {**_ID, "description": "The execution, e.g. ex_0a1b..."},
                "step_id": {**_ID, "description": "The failed step"},
                "instructions": {"type": "string", "description": "New instructions for this execution's step"},
                "side_effects": {"type": "string", "enum": [m.value for m in RetryMode], "default": "replay"},
            },
        },
        "annotations": {
            "readOnlyHint": False,
            "destructiveHint": True,
            "idempotentHint": False,
            "openWorldHint": True,
        },
    },
]
_FIXED_NAMES = {tool["name"] for tool in FIXED_TOOLS}
