"""Workflows: CRUD with versions, enable/disable, manual starts and their lists."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.api.openapi import RouteShape
from chalicelib.domain.timefmt import iso
from chalicelib.engine import listing
from chalicelib.engine.events import MAX_GRACE, grace_seconds
from chalicelib.engine.listing import LIST_PARAMS, STATUSES, TRIGGERS
from chalicelib.engine.views import summary_view
from chalicelib.engine.workflows import workflow_view
from chalicelib.errors import FieldError, ValidationError
from chalicelib.samples.workflows import SAMPLE_WORKFLOWS

MAX_GRACE_SECONDS = int(MAX_GRACE.total_seconds())

bp = Blueprint(__name__)


@endpoint(bp, "/workflows", ("POST",), role="admin", status=201)
def create_workflow(ctx: RequestContext) -> dict[str, Any]:
    return _with_secret(ctx, ctx.engine.workflows.create(ctx.body(), ctx.who))


@endpoint(bp, "/workflows")
def list_workflows(ctx: RequestContext) -> dict[str, Any]:
    return {"items": [workflow_view(w) for w in ctx.engine.workflows.list()]}


@endpoint(bp, "/workflows/{workflow_id}")
def get_workflow(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    return workflow_view(ctx.engine.workflows.get(workflow_id, with_count=True))


@endpoint(bp, "/workflows/{workflow_id}", ("PUT",), role="admin")
def update_workflow(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    body = ctx.body()
    expected = ctx.header("if-match")
    if expected is not None and not (expected.isascii() and expected.isdigit()):
        # Ignoring a malformed precondition would publish over a version the caller never saw.
        raise ValidationError(FieldError("If-Match", "must be the version number being replaced, e.g. 3"))
    version = int(expected) if expected is not None else None
    return _with_secret(ctx, ctx.engine.workflows.update(workflow_id, body, ctx.who, version))


@endpoint(
    bp,
    "/workflows/{workflow_id}/notification-secret/rotate",
    ("POST",),
    role="admin",
    shape=RouteShape(
        {
            "type": "object",
            "required": ["workflow_id", "notification_secret", "previous_valid_until"],
            "properties": {
                "workflow_id": {"type": "string"},
                "notification_secret": {"type": "string", "description": "shown in this answer only"},
                "previous_valid_until": {"type": "string", "format": "date-time"},
            },
        },
        {
            "type": "object",
            "properties": {"grace_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_GRACE_SECONDS}},
            "additionalProperties": False,
        },
        request_required=False,
        description="Webhooks are signed with both secrets until `previous_valid_until` (`grace_seconds`, "
        "default a day), so receivers can switch without losing a delivery.",
    ),
)
def rotate_notification_secret(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    """Rotate the secret that signs a workflow's webhook notifications (the new one shown once)."""
    body = ctx.body(required=False)
    unknown = sorted(set(body) - {"grace_seconds"})
    if unknown:
        raise ValidationError([FieldError(k, "unknown field") for k in unknown])
    grace = grace_seconds(body)
    ctx.engine.workflows.get(workflow_id)  # 404 for an unknown workflow
    secret, until = ctx.engine.notifier.rotate_secret(workflow_id, grace, ctx.engine.executions.clock())
    return {"workflow_id": workflow_id, "notification_secret": secret, "previous_valid_until": until}


def _with_secret(ctx: RequestContext, record: Any) -> dict[str, Any]:
    """The workflow; with ``notification_secret`` the one time a webhook target brings a new one."""
    view = workflow_view(record)
    secret = ctx.engine.workflows.notification_secret(record)
    if secret:
        view["notification_secret"] = secret
    return view


@endpoint(bp, "/workflows/{workflow_id}/versions")
def list_workflow_versions(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    """Every version of a workflow's definition, newest first (who published it, when)."""
    current = ctx.engine.workflows.get(workflow_id)  # 404 for an unknown workflow
    versions = ctx.engine.store.catalog.list_versions(workflow_id)
    return {
        "workflow_id": workflow_id,
        "current_version": current.version,
        "items": [
            {"version": v.version, "created_at": v.created_at, "created_by": v.created_by} for v in reversed(versions)
        ],
    }


@endpoint(bp, "/templates")
def list_templates(ctx: RequestContext) -> dict[str, Any]:
    """The sample workflows' definitions, as starting points for a new workflow."""
    return {
        "items": [
            {"name": d["name"], "description": d.get("description", ""), "definition": d} for d in SAMPLE_WORKFLOWS
        ]
    }


@endpoint(bp, "/workflows/{workflow_id}/versions/{version}")
def get_workflow_version(ctx: RequestContext, workflow_id: str, version: str) -> dict[str, Any]:
    if not version.isdigit():
        raise ValidationError(FieldError("version", "must be a positive integer"))
    definition = ctx.engine.store.catalog.get_version(workflow_id, int(version))
    return {"workflow_id": workflow_id, "version": int(version), "definition": definition}


@endpoint(bp, "/workflows/{workflow_id}/enable", ("POST",), role="admin")
def enable_workflow(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    return workflow_view(ctx.engine.workflows.set_enabled(workflow_id, True, ctx.who))


@endpoint(bp, "/workflows/{workflow_id}/disable", ("POST",), role="admin")
def disable_workflow(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    return workflow_view(ctx.engine.workflows.set_enabled(workflow_id, False, ctx.who))


@endpoint(bp, "/workflows/{workflow_id}/executions", ("POST",), role="operator", status=201)
def start_execution(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    body = ctx.body(required=False)
    unknown = sorted(set(body) - {"inputs"})
    if unknown:
        raise ValidationError([FieldError(k, "unknown field; put workflow inputs under 'inputs'") for k in unknown])
    if "inputs" in body and not isinstance(body["inputs"], dict):  # null included: omit it instead
        raise ValidationError(FieldError("inputs", "must be an object mapping input names to values"))
    key = ctx.header("idempotency-key")
    if key is not None and not (0 < len(key) <= 255):
        raise ValidationError(FieldError("Idempotency-Key", "must be 1 to 255 characters"))
    trigger = {"type": "manual", "by": ctx.who.name}
    state = ctx.engine.executions.start(workflow_id, body.get("inputs"), trigger, ctx.who, key)
    return ctx.execution(state)


@endpoint(bp, "/workflows/{workflow_id}/executions")
def list_executions(ctx: RequestContext, workflow_id: str) -> dict[str, Any]:
    ctx.engine.workflows.get(workflow_id)  # 404 for an unknown workflow
    _only(ctx, *LIST_PARAMS)
    status, trigger = _choice(ctx, "status", STATUSES), _choice(ctx, "trigger", TRIGGERS)
    start_from, start_to = _range(ctx)
    limit = _limit(ctx)
    page = ctx.engine.store.executions.list_for_workflow(
        workflow_id,
        status,
        start_from,
        start_to,
        limit,
        ctx.query("next_token"),
        trigger,
        now=iso(ctx.engine.executions.clock()),
    )
    return {"items": [summary_view(s) for s in page.items], "next_token": page.next_token}


def _only(ctx: RequestContext, *allowed: str) -> None:
    """Refuse query parameters the route does not know (a misspelt filter must not widen a list)."""
    unknown = sorted(set(ctx.request.query_params or {}) - set(allowed))
    if unknown:
        raise ValidationError([FieldError(name, "unknown query parameter") for name in unknown])


def _choice(ctx: RequestContext, name: str, allowed: tuple[str, ...]) -> str | None:
    return listing.choice(name, ctx.query(name) or None, allowed)


def _when(ctx: RequestContext, name: str) -> str | None:
    return listing.moment(name, ctx.query(name))


def _range(ctx: RequestContext) -> tuple[str | None, str | None]:
    return listing.span(_when(ctx, "from"), _when(ctx, "to"))


def _limit(ctx: RequestContext) -> int:
    return listing.page_size(ctx.query("limit"))
