"""Connections (admin): named credentials for model providers and integrations.

Secret fields are written to Secrets Manager and never answered: views carry the
``secret_fields`` names only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalice import Blueprint, Response

from chalicelib.agents import AGENTS
from chalicelib.agents.llm.agent import LlmAgent
from chalicelib.agents.llm.types import Wire
from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.api.openapi import RouteShape
from chalicelib.domain.connections import (
    CONNECTION_KINDS,
    FIELD_PATTERNS,
    MAX_DESCRIPTION,
    MAX_FIELD,
    NAME_PATTERN,
    SECRET_PATTERN,
    STRUCTURED_FIELDS,
    URL_FIELDS,
    KindSpec,
)
from chalicelib.engine.connection_check import check_connection, parse_check
from chalicelib.engine.connections import ConnectionService, connection_view, connections_for

bp = Blueprint(__name__)

_NAME = {"type": "string", "pattern": NAME_PATTERN.pattern}
_DESCRIPTION = {"type": ["string", "null"], "maxLength": MAX_DESCRIPTION}
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


def _field(name: str, *, secret: bool, required: bool) -> dict[str, Any]:
    """One field's schema, from the bounds ``validate_connection`` checks."""
    if name in STRUCTURED_FIELDS:
        return {**PRICES, "type": "object" if required else ["object", "null"]}
    schema: dict[str, Any] = {"type": "string" if required else ["string", "null"], "maxLength": MAX_FIELD}
    if required:
        schema["minLength"] = 1
    pattern = SECRET_PATTERN if secret else FIELD_PATTERNS.get(name)
    if pattern:
        schema["pattern"] = pattern
    if name in URL_FIELDS:
        schema["description"] = "an http(s) URL without user info, query or fragment, allowed by the outbound guard"
    return schema


def _kind_fields(spec: KindSpec) -> dict[str, Any]:
    return {
        **{k: _field(k, secret=False, required=k in spec.required) for k in spec.plain},
        **{k: _field(k, secret=True, required=k in spec.required) for k in spec.secret},
    }


#: ``POST /connections``: one closed shape per kind (its fields, which of them are required).
_BODY = {
    "oneOf": [
        {
            "type": "object",
            "required": ["name", "kind", *spec.required],
            "properties": {"name": _NAME, "kind": {"const": kind}, "description": _DESCRIPTION, **_kind_fields(spec)},
            "additionalProperties": False,
        }
        for kind, spec in CONNECTION_KINDS.items()
    ],
    "description": "Fields by kind (secret ones marked *): openai base_url, api_key*; anthropic base_url, "
    "api_key*; bedrock region; the three model kinds also prices; bearer token*; header header, value*; basic username, password*; "
    "oauth2 token_url, client_id, client_secret*, scope, refresh_token*.",
}
#: ``PUT /connections/{name}``: any field of any kind; the stored connection's kind decides which
#: are allowed (a documented exception of the schemathesis coverage test: the kind is not in the body).
_UPDATE = {
    "type": "object",
    "properties": {
        "description": _DESCRIPTION,
        **{
            k: {**v, "type": ["string", "null"]}
            for spec in CONNECTION_KINDS.values()
            for k, v in _kind_fields(spec).items()
        },
    },
    "additionalProperties": False,
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
        _UPDATE,
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


@endpoint(
    bp,
    "/connections/{name}/test",
    ("POST",),
    role="admin",
    shape=RouteShape(
        {
            "type": "object",
            "required": ["ok", "checked", "kind", "detail"],
            "properties": {
                "ok": {"type": "boolean"},
                "checked": {"type": "boolean", "description": "false: nothing remote was tried (no url)"},
                "kind": {"enum": list(CONNECTION_KINDS)},
                "detail": {"type": "string", "description": "what was tried and what came back; never a secret"},
            },
        },
        {
            "type": "object",
            "properties": {
                "model": {"type": "string", "description": "model kinds: the model to ping (required for them)"},
                "url": {
                    "type": "string",
                    "description": "bearer, header, basic, oauth2: a URL to GET with the credentials",
                },
            },
            "additionalProperties": False,
        },
        request_required=False,
        errors=_SECRETS_DOWN,
        description="Tries the connection once as an agent would (a one-token chat for model kinds, a fresh "
        "OAuth2 token, a GET of `url` with the credentials) through the outbound guard; a failure is "
        "`ok: false` with the reason, not an error status.",
    ),
)
def try_connection(ctx: RequestContext, name: str) -> dict[str, Any]:
    """Check a connection without running a workflow."""
    service = _service(ctx)
    options = parse_check(ctx.body(required=False), service.get(name).kind)
    return check_connection(service.resolve(name), options, _wires)


def _wires() -> Mapping[str, Wire]:
    """The provider wire modules of the registered ``llm`` agent: the test sends what a step would."""
    agent = AGENTS["llm"]
    assert isinstance(agent, LlmAgent)
    return agent.wires
