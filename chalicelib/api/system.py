"""Health and API keys."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.auth import authenticate, hash_key, new_key, validate_key_request
from chalicelib.domain.timefmt import iso
from chalicelib.domain.vocabulary import Role
from chalicelib.errors import Conflict, NotFound, Unauthorized

bp = Blueprint(__name__)


@endpoint(bp, "/health", role=None)
def health(ctx: RequestContext) -> dict[str, Any]:
    """``{"status": "ok"}`` for anyone; an admin key also gets ``details`` (dead letters)."""
    body: dict[str, Any] = {"status": "ok", "stage": ctx.engine.settings.stage}
    header = ctx.header("authorization")
    if header:
        try:
            actor = authenticate(header, ctx.engine.store, ctx.engine.settings)
        except Unauthorized:
            return body  # a health check never fails for a key; it just shows no details
        if actor.role == Role.ADMIN:
            body["details"] = {**ctx.engine.deadletters.count(), "notifications_failed": ctx.engine.notifier.failures()}
    return body


@endpoint(bp, "/keys", ("POST",), role="admin", status=201)
def create_key(ctx: RequestContext) -> dict[str, Any]:
    name, role = validate_key_request(ctx.body())
    if ctx.engine.store.catalog.list_keys(name):
        raise Conflict(f"a key named '{name}' exists: revoke it (DELETE /keys/{name}) or choose another name")
    key = new_key()
    ctx.engine.store.catalog.put_key(hash_key(key), name, role, iso(ctx.engine.executions.clock()), ctx.who.name)
    return {"key": key, "name": name, "role": role}


@endpoint(bp, "/keys", role="admin")
def list_keys(ctx: RequestContext) -> dict[str, Any]:
    """API keys by name and role (never the keys themselves); the deployment's admin key is not listed."""
    return {
        "items": [
            {"name": k.name, "role": k.role, "created_at": k.created_at, "created_by": k.created_by}
            for k in ctx.engine.store.catalog.list_keys()
        ]
    }


@endpoint(bp, "/keys/{name}", ("DELETE",), role="admin", status=204)
def revoke_key(ctx: RequestContext, name: str) -> Response:
    """Revoke the key called ``name``: it is refused (401) from now on."""
    if not ctx.engine.store.catalog.delete_keys(name):
        raise NotFound(f"no key named '{name}'")
    return Response(body="", status_code=204)


@endpoint(bp, "/me", role="viewer")
def whoami(ctx: RequestContext) -> dict[str, Any]:
    return {"name": ctx.who.name, "role": ctx.who.role}
