"""The API's own description, no key needed (like ``/health``): ``GET /openapi.json`` and
``GET /vocabulary.json``, the domain's words and limits that the UI and the CLI read instead
of keeping their own copies."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.api.openapi import RouteShape, build_document
from chalicelib.domain.vocabulary import served

_LIST = {"type": "array", "items": {"type": "string"}}
VOCABULARY_SHAPE = RouteShape(
    {
        "type": "object",
        "properties": {
            name: _LIST
            for name in (
                "step_states",
                "execution_statuses",
                "active_statuses",
                "trigger_kinds",
                "roles",
                "event_types",
                "error_kinds",
            )
        }
        | {"limits": {"type": "object"}},
        "required": ["step_states", "execution_statuses", "trigger_kinds", "roles", "event_types", "limits"],
    },
    role=None,
)

bp = Blueprint(__name__)


@endpoint(bp, "/openapi.json", role=None)
def openapi_document(ctx: RequestContext) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, generated from the route table."""
    return build_document(bp.current_app, server_url=_base_path(ctx))


@endpoint(bp, "/vocabulary.json", role=None, summary="Stepline's words and limits", shape=VOCABULARY_SHAPE)
def vocabulary(ctx: RequestContext) -> dict[str, Any]:
    """Step states, execution statuses, trigger kinds, roles, event and error kinds, definition limits."""
    return served()


def _base_path(ctx: RequestContext) -> str:
    """The stage prefix API Gateway puts before our paths (``/api``), so that clients of
    the document resolve operations under it; ``/`` locally."""
    full = str((ctx.request.context or {}).get("path") or "")
    own = ctx.request.path or ""
    if own and full.endswith(own) and len(full) > len(own):
        return full[: -len(own)] or "/"
    return "/"
