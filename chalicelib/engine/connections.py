"""Connections: admin CRUD, the in-use check, definition references, and run-time resolution.

The catalog keeps a connection's plain fields; its secret fields go to Secrets Manager
(``chalicelib.secrets``). Views list ``secret_fields`` by name only: no route ever answers a
secret, and nothing here logs one.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from chalicelib.domain.connections import CONNECTION_KINDS, ConnectionRef, ResolvedConnection, validate_connection
from chalicelib.domain.timefmt import iso
from chalicelib.errors import Conflict, FieldError, SteplineError, ValidationError
from chalicelib.secrets import SecretUnavailable, SecretVault
from chalicelib.store.connections import ConnectionRecord, ConnectionStore

log = logging.getLogger("stepline.connections")

__all__ = ["ConnectionService", "connection_refs", "connection_view", "connections_for", "vault_for"]


class SecretStoreFailed(SteplineError):
    status = 503
    code = "ServiceUnavailableError"


def connection_refs(definition: Mapping[str, Any], agents: Mapping[str, Any]) -> list[ConnectionRef]:
    """Every connection a definition names, with the field that names it and the kinds allowed."""
    refs: list[ConnectionRef] = []
    for index, step in enumerate(definition.get("steps") or []):
        agent = agents.get(str(step.get("agent"))) if isinstance(step, Mapping) else None
        finder = getattr(agent, "connection_refs", None)
        if finder is not None:
            refs += finder(step, f"steps[{index}]")
    return refs


class ConnectionService:
    def __init__(
        self,
        store: ConnectionStore,
        vault: SecretVault,
        clock: Callable[[], datetime],
        workflows: Any = None,
        url_problem: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.vault = vault
        self.clock = clock
        self.workflows = workflows
        self.url_problem = url_problem

    # ------------------------------------------------------------------ admin
    def create(self, body: Mapping[str, Any], actor: str) -> ConnectionRecord:
        body = _with_defaults(body)
        errors = validate_connection(body, url_problem=self.url_problem)
        if errors:
            raise ValidationError(errors)
        plain, secrets = _split(body)
        at = iso(self.clock())
        record = ConnectionRecord(body["name"], body["kind"], plain, tuple(sorted(secrets)), 1, at, at, actor)
        self.store.create(record)  # reserves the name first: a taken name is a 409 before any secret is written
        if secrets:
            try:
                self.vault.put(record.name, secrets)
            except SecretUnavailable as error:
                self.store.delete(record.name)
                raise SecretStoreFailed(str(error)) from None
        log.info("connection %s (%s) created by %s", record.name, record.kind, actor)
        return record

    def update(self, name: str, body: Mapping[str, Any], actor: str) -> ConnectionRecord:
        """Replace the given fields (a way to rotate a secret); ``null`` clears an optional one."""
        current = self.store.get(name)
        for key in ("name", "kind"):
            if key in body and body[key] != getattr(current, key):
                raise ValidationError(FieldError(key, "cannot change; create a new connection instead"))
        spec = CONNECTION_KINDS[current.kind]
        merged: dict[str, Any] = {"name": name, "kind": current.kind, **current.fields}
        # secret fields not in the body keep their value; a placeholder satisfies "required"
        merged.update({k: "(kept)" for k in current.secret_fields})
        merged.update({k: v for k, v in body.items() if k not in ("name", "kind")})
        merged = {k: v for k, v in merged.items() if v is not None}
        errors = validate_connection(merged, url_problem=self.url_problem)
        if errors:
            raise ValidationError(errors)
        plain, _ = _split(merged)
        given_secrets = {k: v for k, v in body.items() if k in spec.secret}
        secret_names = (set(current.secret_fields) | {k for k, v in given_secrets.items() if v is not None}) - {
            k for k, v in given_secrets.items() if v is None
        }
        record = ConnectionRecord(
            name,
            current.kind,
            plain,
            tuple(sorted(secret_names)),
            current.version + 1,
            current.created_at,
            iso(self.clock()),
            current.created_by,
        )
        if given_secrets:
            try:
                values = self.vault.get(name) if current.secret_fields else {}
                values.update({k: v for k, v in given_secrets.items() if v is not None})
                for k in [k for k, v in given_secrets.items() if v is None]:
                    values.pop(k, None)
                self.vault.put(name, values)
            except SecretUnavailable as error:
                raise SecretStoreFailed(str(error)) from None
        self.store.replace(record, current.version, actor)
        log.info("connection %s updated by %s (secret fields changed: %s)", name, actor, sorted(given_secrets))
        return record

    def delete(self, name: str, agents: Mapping[str, Any], actor: str) -> None:
        self.store.get(name)  # 404 first
        users = self.users(name, agents)
        if users:
            raise Conflict(
                f"connection {name} is used by enabled workflow(s) {', '.join(users)}; "
                "disable them or change their steps first"
            )
        self.store.delete(name)
        try:
            self.vault.delete(name)
        except SecretUnavailable as error:
            log.warning("%s (the connection record is deleted)", error)
        log.info("connection %s deleted by %s", name, actor)

    def users(self, name: str, agents: Mapping[str, Any]) -> list[str]:
        """Ids of the enabled workflows whose current version names the connection."""
        if self.workflows is None:
            return []
        return sorted(
            w.workflow_id
            for w in self.workflows.list()
            if w.enabled and any(r.name == name for r in connection_refs(w.definition, agents))
        )

    def get(self, name: str) -> ConnectionRecord:
        return self.store.get(name)

    def list(self) -> list[ConnectionRecord]:
        return self.store.list()

    # -------------------------------------------------------------- run time
    def resolve(self, name: str) -> ResolvedConnection:
        """The connection with its secrets, for an agent; raises ``NotFound``/``SecretUnavailable``."""
        record = self.store.get(name)
        stamp = f"{record.version}@{record.updated_at}@{record.created_at}"
        secrets = self.vault.get(name, stamp) if record.secret_fields else {}
        return ResolvedConnection(record.name, record.kind, dict(record.fields), secrets)

    def check_refs(self, refs: Iterable[ConnectionRef]) -> builtins.list[FieldError]:
        """A 400's worth of field errors for references to unknown or wrong-kind connections."""
        errors: builtins.list[FieldError] = []
        known: dict[str, ConnectionRecord | None] = {}
        for ref in refs:
            if not isinstance(ref.name, str) or not ref.name:
                errors.append(FieldError(ref.field, "must name a connection"))
                continue
            if ref.name not in known:
                known[ref.name] = self.store.find(ref.name)
            record = known[ref.name]
            if record is None:
                errors.append(
                    FieldError(ref.field, f"unknown connection {ref.name!r}; create it with POST /connections first")
                )
            elif record.kind not in ref.kinds:
                errors.append(
                    FieldError(
                        ref.field,
                        f"connection {ref.name!r} is of kind {record.kind}; "
                        f"this field needs one of {', '.join(ref.kinds)}",
                    )
                )
        return errors


def connection_view(record: ConnectionRecord, used_by: list[str] | None = None) -> dict[str, Any]:
    """What the API shows: every non-secret field and the names of the secret ones."""
    view: dict[str, Any] = {
        "name": record.name,
        "kind": record.kind,
        **record.fields,
        "secret_fields": list(record.secret_fields),
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
    if used_by is not None:
        view["used_by"] = used_by
    return view


def _with_defaults(body: Mapping[str, Any]) -> dict[str, Any]:
    kind = body.get("kind")
    spec = CONNECTION_KINDS.get(kind) if isinstance(kind, str) else None
    merged = dict(body)
    if spec is not None:
        for key, default in spec.plain.items():
            if merged.get(key) is None and default is not None:
                merged[key] = default
    return {k: v for k, v in merged.items() if v is not None}


def _split(body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    spec = CONNECTION_KINDS[body["kind"]]
    plain = {k: v for k, v in body.items() if k in spec.plain or k == "description"}
    secrets = {k: v for k, v in body.items() if k in spec.secret}
    return plain, secrets


@lru_cache(maxsize=4)
def vault_for(settings: Any) -> SecretVault:
    """The container's secret vault for ``settings``: one short-lived secret cache per container."""
    return SecretVault(settings)


def connections_for(
    settings: Any, workflows: Any = None, clock: Callable[[], datetime] | None = None
) -> ConnectionService:
    """A connection service over the container's vault (cheap: models and vault are cached)."""
    from chalicelib.domain.timefmt import utc_now

    return ConnectionService(
        ConnectionStore(settings), vault_for(settings), clock or utc_now, workflows, _outbound_url_problem()
    )


def _outbound_url_problem() -> Callable[[str], str | None]:
    """The SSRF guard's URL check, then no placeholders, query or user info in a base URL."""
    from chalicelib.domain.connections import _url_problem
    from chalicelib.outbound import url_template_problem

    def problem(url: str) -> str | None:
        return (
            url_template_problem(url)
            or ("must not contain {{ }} placeholders" if "{{" in url else None)
            or _url_problem(url)
        )

    return problem
