"""Connections (admin): named credentials for model providers and integrations.

Secret fields are written to Secrets Manager and never answered: views carry the
``secret_fields`` names only.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.agents import AGENTS
from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.api.openapi import RouteShape
from chalicelib.domain.connections import CONNECTION_KINDS, STRUCTURED_FIELDS
from chalicelib.engine.connections import ConnectionService, connection_view, connections_for

bp = Blueprint(__name__)

_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}
_TEXT = {"type": "string", "maxLength": 4096}
#: A model connection's ``prices``: US dollars per million tokens, by model name.
PRICES = {
    "type": "object",
    "description": "US dollars per million tokens, by model name (model kinds only); costs are computed from them",
    "additionalProperties": {
        "type": "object",
        "required": ["input_per_million", "output_per_million"],
        "additionalProperties": False,
        "properties": {
            "input_per_million": {"type": "number", "minimum": 0, "maximum": 10000},
            "output_per_million": {"type": "number", "minimum": 0, "maximum": 10000},
        },
    },
}
#: The connection answered by every route: plain fields and the names of the secret ones.
CONNECTION = {
    "type": "object",
    "required": ["name", "kind", "secret_fields"],
    "properties": {
        "name": _NAME,
        "kind": {"enum": list(CONNECTION_KINDS)},
        "secret_fields": {"type": "array", "items": {"type": "string"}},
        "version": {"type": "integer"},
        "used_by": {"type": "array", "items": {"type": "string"}},
        **{k: {"type": "string"} for spec in CONNECTION_KINDS.values() for k in spec.plain},
        "prices": PRICES,
    },
}
_FIELDS: dict[str, Any] = {
    k: _TEXT
    for spec in CONNECTION_KINDS.values()
    for k in list(spec.plain) + list(spec.secret)
    if k not in STRUCTURED_FIELDS
}
_FIELDS["prices"] = PRICES
_BODY = {
    "type": "object",
    "required": ["name", "kind"],
    "properties": {"name": _NAME, "kind": {"enum": list(CONNECTION_KINDS)}, "description": _TEXT, **_FIELDS},
    "description": "Fields by kind (secret ones marked *): openai base_url, api_key*; anthropic base_url, "
    "api_key*; bedrock region; the three model kinds also prices; bearer token*; header header, value*; basic username, password*; "
    "oauth2 token_url, client_id, client_secret*, scope, refresh_token*.",
}
_SECRETS_DOWN = ((503, "Secrets Manager could not be reached"),)


def _service(ctx: RequestContext) -> ConnectionService:
    engine = ctx.engine
    return connections_for(engine.settings, engine.workflows, engine.executions.clock)


@endpoint(
    bp,
    "/connections",
    ("POST",),
    role="admin",
    status=201,
    shape=RouteShape(
        CONNECTION,
        _BODY,
        errors=_SECRETS_DOWN,
        description="Secret fields go to Secrets Manager; the answer names them only.",
    ),
)
def create_connection(ctx: RequestContext) -> dict[str, Any]:
    """Create a connection; its secret fields go to Secrets Manager."""
    return connection_view(_service(ctx).create(ctx.body(), ctx.who.name))


@endpoint(
    bp,
    "/connections",
    role="admin",
    shape=RouteShape(
        {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": CONNECTION}}}
    ),
)
def list_connections(ctx: RequestContext) -> dict[str, Any]:
    """Every connection, without secrets."""
    return {"items": [connection_view(r) for r in _service(ctx).list()]}


@endpoint(bp, "/connections/{name}", role="admin", shape=RouteShape(CONNECTION))
def get_connection(ctx: RequestContext, name: str) -> dict[str, Any]:
    """One connection without secrets, with the enabled workflows that use it."""
    service = _service(ctx)
    return connection_view(service.get(name), service.users(name, AGENTS))


@endpoint(
    bp,
    "/connections/{name}",
    ("PUT",),
    role="admin",
    shape=RouteShape(
        CONNECTION,
        {"type": "object", "properties": {"description": _TEXT, **_FIELDS}},
        errors=_SECRETS_DOWN,
        description="Only the given fields change; null clears one.",
    ),
)
def update_connection(ctx: RequestContext, name: str) -> dict[str, Any]:
    """Replace the given fields (rotate a secret by sending it)."""
    return connection_view(_service(ctx).update(name, ctx.body(), ctx.who.name))


@endpoint(
    bp,
    "/connections/{name}",
    ("DELETE",),
    role="admin",
    status=204,
    shape=RouteShape(
        None, content_types=(), errors=_SECRETS_DOWN, description="409 while an enabled workflow uses the connection."
    ),
)
def delete_connection(ctx: RequestContext, name: str) -> Response:
    """Delete a connection and its secret; 409 while an enabled workflow uses it."""
    _service(ctx).delete(name, AGENTS, ctx.who.name)
    return Response(body="", status_code=204)
