"""Connection kinds: which fields each kind has, which of them are secret, and which agents
may use which kinds. Pure: no AWS, no store.

A connection is a named set of credentials. ``POST /connections`` bodies are checked here
(``validate_connection``); the secret fields go to Secrets Manager, the others to the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chalicelib.domain.costs import prices_errors
from chalicelib.errors import FieldError

__all__ = [
    "AUTH_KINDS",
    "CONNECTION_KINDS",
    "MODEL_KINDS",
    "NAME_PATTERN",
    "ConnectionRef",
    "KindSpec",
    "ResolvedConnection",
    "validate_connection",
]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
#: Bounds of the fields (the OpenAPI of ``/connections`` is built from these).
MAX_DESCRIPTION = 500
MAX_FIELD = 4096
#: Per-field patterns beyond the length: secrets go into HTTP headers, so no line breaks.
FIELD_PATTERNS = {"header": _HEADER_NAME.pattern, "region": _REGION.pattern}
SECRET_PATTERN = r"^[^\r\n]*$"
URL_FIELDS = ("base_url", "token_url")


@dataclass(frozen=True)
class KindSpec:
    """The fields of one kind: plain ones (with defaults) and secret ones."""

    plain: Mapping[str, Any]  # name -> default (None: no default)
    secret: tuple[str, ...]
    required: tuple[str, ...] = ()


CONNECTION_KINDS: dict[str, KindSpec] = {
    "openai": KindSpec({"base_url": "https://api.openai.com/v1", "prices": None}, ("api_key",)),
    "anthropic": KindSpec({"base_url": "https://api.anthropic.com", "prices": None}, ("api_key",), ("api_key",)),
    "bedrock": KindSpec({"region": None, "prices": None}, ()),
    "bearer": KindSpec({}, ("token",), ("token",)),
    "header": KindSpec({"header": None}, ("value",), ("header", "value")),
    "basic": KindSpec({"username": None}, ("password",), ("username", "password")),
    "oauth2": KindSpec(
        {"token_url": None, "client_id": None, "scope": None},
        ("client_secret", "refresh_token"),
        ("token_url", "client_id", "client_secret"),
    ),
}
#: Kinds an ``llm`` step may name; kinds that authenticate an HTTP call (``http`` steps, llm tools).
MODEL_KINDS = ("openai", "anthropic", "bedrock")
AUTH_KINDS = ("bearer", "header", "basic", "oauth2")
#: Plain fields that are not strings: the model kinds' ``prices`` (``chalicelib.domain.costs``).
STRUCTURED_FIELDS = ("prices",)
#: Fields every kind may carry.
COMMON_FIELDS = ("name", "kind", "description")


@dataclass(frozen=True)
class ConnectionRef:
    """A definition field that names a connection, and the kinds allowed there."""

    field: str
    name: Any
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedConnection:
    """A connection with its secrets, for one agent call. ``repr`` never shows the secrets."""

    name: str
    kind: str
    fields: Mapping[str, Any]
    secrets: Mapping[str, str] = field(repr=False)

    def secret_values(self) -> list[str]:
        """Every secret value, for redaction of remote answers quoted in error messages."""
        return [v for v in self.secrets.values() if isinstance(v, str) and len(v) >= 4]


def validate_connection(
    body: Mapping[str, Any],
    *,
    partial_of: Mapping[str, Any] | None = None,
    url_problem: Callable[[str], str | None] | None = None,
) -> list[FieldError]:
    """Check a connection body (``partial_of``: the merged result of a PUT) and name each bad field."""
    errors: list[FieldError] = []
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in CONNECTION_KINDS:
        return [FieldError("kind", f"must be one of {', '.join(CONNECTION_KINDS)}")]
    spec = CONNECTION_KINDS[kind]
    allowed = set(COMMON_FIELDS) | set(spec.plain) | set(spec.secret)
    errors += [FieldError(k, f"unknown field for a {kind} connection") for k in sorted(set(body) - allowed)]
    name = body.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        errors.append(FieldError("name", "must match ^[a-z0-9][a-z0-9-]{0,62}$"))
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION):
        errors.append(FieldError("description", f"must be a string of at most {MAX_DESCRIPTION} characters"))
    for key in spec.required:
        if body.get(key) in (None, ""):
            errors.append(FieldError(key, f"required for a {kind} connection"))
    if body.get("prices") is not None and "prices" in spec.plain:
        errors += prices_errors(body["prices"])
    for key in [k for k in spec.plain if k not in STRUCTURED_FIELDS] + list(spec.secret):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD):
            errors.append(FieldError(key, f"must be a string of at most {MAX_FIELD} characters"))
    for key in URL_FIELDS:
        value = body.get(key)
        if key in spec.plain and isinstance(value, str) and value:
            problem = (url_problem or _url_problem)(value)
            if problem:
                errors.append(FieldError(key, problem))
    if kind == "header" and isinstance(body.get("header"), str) and not _HEADER_NAME.match(body["header"]):
        errors.append(FieldError("header", "is not a valid HTTP header name"))
    if kind == "bedrock" and isinstance(body.get("region"), str) and not _REGION.match(body["region"]):
        errors.append(FieldError("region", "must be an AWS region such as us-east-1"))
    for key in spec.secret:
        value = body.get(key)
        if isinstance(value, str) and ("\r" in value or "\n" in value):
            errors.append(FieldError(key, "must not contain line breaks"))
    return errors


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL"
    if parts.username or parts.password or parts.query or parts.fragment:
        return "must not carry user info, a query or a fragment (put credentials in the secret fields)"
    return None
