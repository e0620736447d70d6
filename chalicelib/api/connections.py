"""Connections (admin): named credentials for model providers and integrations.

Secret fields are written to Secrets Manager and never answered: views carry the
``secret_fields`` names only.
"""
from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.agents import AGENTS
from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.engine.connections import ConnectionService, connection_view, connections_for

bp = Blueprint(__name__)


def _service(ctx: RequestContext) -> ConnectionService:
    engine = ctx.engine
    return connections_for(engine.settings, engine.workflows, engine.executions.clock)


@endpoint(bp, "/connections", ("POST",), role="admin", status=201)
def create_connection(ctx: RequestContext) -> dict[str, Any]:
    """Create a connection; its secret fields go to Secrets Manager."""
    return connection_view(_service(ctx).create(ctx.body(), ctx.who.name))


@endpoint(bp, "/connections", role="admin")
def list_connections(ctx: RequestContext) -> dict[str, Any]:
    """Every connection, without secrets."""
    return {"items": [connection_view(r) for r in _service(ctx).list()]}


@endpoint(bp, "/connections/{name}", role="admin")
def get_connection(ctx: RequestContext, name: str) -> dict[str, Any]:
    """One connection without secrets, with the enabled workflows that use it."""
    service = _service(ctx)
    return connection_view(service.get(name), service.users(name, AGENTS))


@endpoint(bp, "/connections/{name}", ("PUT",), role="admin")
def update_connection(ctx: RequestContext, name: str) -> dict[str, Any]:
    """Replace the given fields (rotate a secret by sending it)."""
    return connection_view(_service(ctx).update(name, ctx.body(), ctx.who.name))


@endpoint(bp, "/connections/{name}", ("DELETE",), role="admin", status=204)
def delete_connection(ctx: RequestContext, name: str) -> Response:
    """Delete a connection and its secret; 409 while an enabled workflow uses it."""
    _service(ctx).delete(name, AGENTS, ctx.who.name)
    return Response(body="", status_code=204)
