"""Health and API keys."""
from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.boundary import RequestContext, endpoint
from chalicelib.auth import authenticate, hash_key, new_key, validate_key_request
from chalicelib.domain.timefmt import iso
from chalicelib.errors import Unauthorized

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
        if actor.role == "admin":
            body["details"] = {**ctx.engine.deadletters.count(),
                               "notifications_failed": ctx.engine.notifier.failures()}
    return body


@endpoint(bp, "/keys", ("POST",), role="admin", status=201)
def create_key(ctx: RequestContext) -> dict[str, Any]:
    name, role = validate_key_request(ctx.body())
    key = new_key()
    ctx.engine.store.catalog.put_key(hash_key(key), name, role, iso(ctx.engine.executions.clock()), ctx.who.name)
    return {"key": key, "name": name, "role": role}


@endpoint(bp, "/me", role="viewer")
def whoami(ctx: RequestContext) -> dict[str, Any]:
    return {"name": ctx.who.name, "role": ctx.who.role}
