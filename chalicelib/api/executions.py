"""Executions: the timeline view, history, and every operator action."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.domain.machine import Approve, CancelExecution, ForceAdvance, Reject, RetryStep, Review, SkipStep
from chalicelib.engine.edits import (
    check_amended_output,
    check_instructions,
    check_reject_reason,
    check_side_effects_mode,
    check_text,
)
from chalicelib.engine.views import history_item
from chalicelib.errors import FieldError, NotFound, ValidationError

bp = Blueprint(__name__)


@endpoint(bp, "/executions/{execution_id}")
def get_execution(ctx: RequestContext, execution_id: str) -> dict[str, Any]:
    return ctx.execution(ctx.engine.executions.load(execution_id))


@endpoint(bp, "/executions/{execution_id}/history")
def get_history(ctx: RequestContext, execution_id: str) -> dict[str, Any]:
    """The audit trail in order; pages of ``limit`` events (default and maximum 1000) with ``next_token``."""
    unknown = sorted(set(ctx.request.query_params or {}) - {"limit", "next_token"})
    if unknown:
        raise ValidationError([FieldError(name, "unknown query parameter") for name in unknown])
    limit = ctx.query("limit") or "1000"
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise ValidationError(FieldError("limit", "must be an integer from 1 to 1000"))
    events, token = ctx.engine.store.executions.events_page(execution_id, int(limit), ctx.query("next_token"))
    if not events and not ctx.query("next_token"):
        raise NotFound(f"execution {execution_id} not found")
    return {"items": [history_item(e) for e in events], "next_token": token}


@endpoint(bp, "/executions/{execution_id}/cancel", ("POST",), role="operator")
def cancel(ctx: RequestContext, execution_id: str) -> dict[str, Any]:
    body = _fields(ctx, {"reason"})
    command = CancelExecution(ctx.who, _text(body, "reason"))
    return ctx.execution(ctx.engine.executions.act(execution_id, command))


@endpoint(bp, "/executions/{execution_id}/steps/{step_id}/retry", ("POST",), role="operator")
def retry(ctx: RequestContext, execution_id: str, step_id: str) -> dict[str, Any]:
    """Retry a failed step; ``instructions`` edits it first, ``side_effects`` says what happens to
    the calls earlier attempts made (``replay``, the default, or ``rerun``)."""
    body = _fields(ctx, {"instructions", "side_effects"})
    mode = check_side_effects_mode(body.get("side_effects"))
    instructions = None
    if "instructions" in body:
        state = ctx.engine.executions.load(execution_id)
        if step_id in {s.id for s in state.steps}:  # an unknown step is the action's 404
            instructions = check_instructions(state, step_id, body["instructions"])
    command = RetryStep(step_id, ctx.who, instructions, mode)
    return ctx.execution(ctx.engine.executions.act(execution_id, command))


@endpoint(bp, "/executions/{execution_id}/steps/{step_id}/skip", ("POST",), role="operator")
def skip(ctx: RequestContext, execution_id: str, step_id: str) -> dict[str, Any]:
    body = _fields(ctx, {"reason"})
    return ctx.execution(ctx.engine.executions.act(execution_id, SkipStep(step_id, ctx.who, _text(body, "reason"))))


@endpoint(bp, "/executions/{execution_id}/steps/{step_id}/force-advance", ("POST",), role="admin")
def force_advance(ctx: RequestContext, execution_id: str, step_id: str) -> dict[str, Any]:
    body = _fields(ctx, {"comment"})
    command = ForceAdvance(step_id, ctx.who, _text(body, "comment"))
    return ctx.execution(ctx.engine.executions.act(execution_id, command))


@endpoint(bp, "/executions/{execution_id}/steps/{step_id}/approve", ("POST",), role="operator")
def approve(ctx: RequestContext, execution_id: str, step_id: str) -> dict[str, Any]:
    body = _fields(ctx, {"comment"})
    return ctx.execution(ctx.engine.executions.act(execution_id, Approve(step_id, ctx.who, _text(body, "comment"))))


@endpoint(bp, "/executions/{execution_id}/steps/{step_id}/reject", ("POST",), role="operator")
def reject(ctx: RequestContext, execution_id: str, step_id: str) -> dict[str, Any]:
    """Reject a gated step; ``comment`` is the reason, and a reject needs one."""
    body = _fields(ctx, {"comment"})
    reason = check_reject_reason(body.get("comment"))
    return ctx.execution(ctx.engine.executions.act(execution_id, Reject(step_id, ctx.who, reason)))


@endpoint(bp, "/executions/{execution_id}/steps/{step_id}/review", ("POST",), role="operator")
def review(ctx: RequestContext, execution_id: str, step_id: str) -> dict[str, Any]:
    body = _fields(ctx, {"comment", "output"})
    amended = "output" in body
    output = check_amended_output(body["output"]) if amended else None
    command = Review(step_id, ctx.who, _text(body, "comment"), output, amended)
    return ctx.execution(ctx.engine.executions.act(execution_id, command))


def _fields(ctx: RequestContext, allowed: set[str]) -> dict[str, Any]:
    body = ctx.body(required=False)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError([FieldError(k, "unknown field") for k in unknown])
    return body


def _text(body: dict[str, Any], name: str) -> str | None:
    return check_text(name, body.get(name))
