"""API keys and roles. Keys are stored as SHA-256 hashes; the clear key is shown once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from chalicelib.bootstrap import ACTOR_NAME as BOOTSTRAP_ACTOR
from chalicelib.bootstrap import bootstrap_key
from chalicelib.config import Settings
from chalicelib.domain.machine import Actor
from chalicelib.domain.vocabulary import ROLE_RANK, Role
from chalicelib.errors import FieldError, Forbidden, Unauthorized, ValidationError
from chalicelib.store import Store

ROLES = tuple(role.value for role in Role)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "sl_" + secrets.token_urlsafe(32)


def authenticate(header: str | None, store: Store, settings: Settings) -> Actor:
    """The actor behind an ``Authorization: Bearer <key>`` header, or 401."""
    if not header or not header.lower().startswith("bearer ") or not header[7:].strip():
        raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
    key = header[7:].strip()
    if settings.admin_key and hmac.compare_digest(key.encode(), settings.admin_key.encode()):
        return Actor(Role.ADMIN.value, Role.ADMIN)
    record = store.catalog.get_key(hash_key(key))
    if record is not None:
        return Actor(record.name, record.role)
    # a deployed stack's first key (chalicelib/bootstrap.py); looked at only after the stored
    # keys, so everyday requests never read Secrets Manager
    if settings.admin_key_secret and bootstrap_key(
        settings.admin_key_secret, settings.region, settings.endpoint_url
    ).matches(key):
        return Actor(BOOTSTRAP_ACTOR, Role.ADMIN)
    raise Unauthorized("unknown API key")


def require(actor: Actor, role: Role | str) -> None:
    if ROLE_RANK.get(actor.role, -1) < ROLE_RANK[role]:
        raise Forbidden(f"this needs the {role} role; key '{actor.name}' has the {actor.role} role")


def validate_key_request(body: dict[str, Any]) -> tuple[str, str]:
    errors = []
    name, role = body.get("name"), body.get("role")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        errors.append(FieldError("name", "must be a non-empty string of at most 100 characters"))
        name = ""
    if not isinstance(role, str) or role not in ROLES:
        errors.append(FieldError("role", f"must be one of {', '.join(ROLES)}"))
    unknown = sorted(set(body) - {"name", "role"})
    errors += [FieldError(k, "unknown field") for k in unknown]
    if errors:
        raise ValidationError(errors)
    return name.strip(), str(role)
