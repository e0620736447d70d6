"""The API's own description: ``GET /openapi.json`` (no key needed, like ``/health``)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.api.openapi import build_document

bp = Blueprint(__name__)


@endpoint(bp, "/openapi.json", role=None)
def openapi_document(ctx: RequestContext) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, generated from the route table."""
    return build_document(bp.current_app, server_url=_base_path(ctx))


def _base_path(ctx: RequestContext) -> str:
    """The stage prefix API Gateway puts before our paths (``/api``), so that clients of
    the document resolve operations under it; ``/`` locally."""
    full = str((ctx.request.context or {}).get("path") or "")
    own = ctx.request.path or ""
    if own and full.endswith(own) and len(full) > len(own):
        return full[: -len(own)] or "/"
    return "/"
