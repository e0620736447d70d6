"""Triggers over HTTP: event sources, signed webhooks, stored events and replay, schedules,
and workflows as LLM tools."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.errors import FieldError, ValidationError

bp = Blueprint(__name__)


@endpoint(bp, "/sources", ("POST",), role="admin", status=201)
def create_source(ctx: RequestContext) -> dict[str, Any]:
    return ctx.engine.triggers.events.create_source(ctx.body(), ctx.who)


@endpoint(bp, "/sources", role="admin")
def list_sources(ctx: RequestContext) -> dict[str, Any]:
    return {"items": ctx.engine.triggers.events.list_sources()}


@endpoint(bp, "/sources/{name}/rotate", ("POST",), role="admin")
def rotate_source_secret(ctx: RequestContext, name: str) -> dict[str, Any]:
    return ctx.engine.triggers.events.rotate_secret(name, ctx.body(required=False))


@endpoint(bp, "/webhooks/{source}", ("POST",), role=None, status=202)
def receive_webhook(ctx: RequestContext, source: str) -> Response:
    # The raw bytes, unparsed: the signature covers them exactly.
    delivery = ctx.engine.triggers.events.receive_webhook(source, ctx.request.headers, ctx.raw_body())
    return Response(body=delivery.body, status_code=delivery.status)


@endpoint(bp, "/events/{event_id}", role="viewer")
def get_event(ctx: RequestContext, event_id: str) -> dict[str, Any]:
    return ctx.engine.triggers.events.get_event(event_id)


@endpoint(bp, "/events/{event_id}/replay", ("POST",), role="admin", status=202)
def replay_event(ctx: RequestContext, event_id: str) -> dict[str, Any]:
    return ctx.engine.triggers.events.replay(event_id, ctx.who)


@endpoint(bp, "/workflows/{workflow_id}/schedule")
def get_schedule(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    count = ctx.query("count")
    if count is not None and (not count.isdigit() or not 1 <= int(count) <= 50):
        raise ValidationError(FieldError("count", "must be an integer from 1 to 50"))
    return ctx.engine.triggers.schedules.view(workflow_id, int(count or 5))


@endpoint(bp, "/tools")
def list_tools(ctx: RequestContext) -> dict[str, Any]:
    return ctx.engine.triggers.tools.list(ctx.query("format"))


@endpoint(bp, "/tools/{name}/invoke", ("POST",), role="operator", status=201)
def invoke_tool(ctx: RequestContext, name: str) -> dict[str, Any]:
    key = ctx.header("idempotency-key")
    if key is not None and not (0 < len(key) <= 255):
        raise ValidationError(FieldError("Idempotency-Key", "must be 1 to 255 characters"))
    state = ctx.engine.triggers.tools.invoke(
        name, ctx.body(required=False), ctx.who, ctx.header("x-conversation-id"), key
    )
    return ctx.execution(state)
