"""Credentials of a connection applied to an outgoing HTTP call (``http`` steps and llm tools).

``bearer``, ``header`` and ``basic`` are headers. ``oauth2`` fetches an access token from
``token_url`` with the refresh-token grant when the connection has a refresh token, else the
client-credentials grant (RFC 6749 sections 6 and 4.4; client credentials in the body, as
``client_secret_post``), and caches it per container until shortly before it expires. A
``401`` from the API makes the caller ask for a fresh token once (``Credentials.refresh``).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.agents.base import IntegrationError
from chalicelib.agents.connections import redact
from chalicelib.agents.transport import HttpFailure, call_json
from chalicelib.domain.actions import UPDATE_CONNECTION
from chalicelib.domain.connections import ResolvedConnection

__all__ = ["Credentials", "revoked"]

#: Tokens are used until this many seconds before they expire.
EXPIRY_MARGIN = 30.0
DEFAULT_TOKEN_SECONDS = 300.0

_TOKENS: dict[str, tuple[str, float]] = {}
_LOCK = threading.Lock()


def revoked(connection: str, why: str = "token expired or revoked") -> IntegrationError:
    """The error for credentials that a refresh did not cure."""
    return IntegrationError(
        f"{why}: update connection {connection} and retry",
        retryable=False,
        details={"connection": connection},
        status=401,
        action=UPDATE_CONNECTION,
    )


@dataclass
class Credentials:
    connection: ResolvedConnection
    timeout: float
    clock: Callable[[], float] = time.monotonic

    def headers(self) -> dict[str, str]:
        """The headers that authenticate a call with this connection."""
        c, s = self.connection, self.connection.secrets
        if c.kind == "bearer":
            return {"Authorization": f"Bearer {s.get('token', '')}"}
        if c.kind == "header":
            return {str(c.fields.get("header")): s.get("value", "")}
        if c.kind == "basic":
            pair = f"{c.fields.get('username', '')}:{s.get('password', '')}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        if c.kind == "oauth2":
            return {"Authorization": f"Bearer {self._token(fresh=False)}"}
        raise IntegrationError(
            f"connection {c.name} is of kind {c.kind}, which cannot authenticate an HTTP call",
            retryable=False,
            details={"connection": c.name},
            action=UPDATE_CONNECTION,
        )

    @property
    def refreshable(self) -> bool:
        return self.connection.kind == "oauth2"

    def refresh(self) -> dict[str, str]:
        """Headers with a newly fetched token (after a 401)."""
        return {"Authorization": f"Bearer {self._token(fresh=True)}"}

    def _cache_key(self) -> str:
        # keyed by the secret too, so a rotated client secret or refresh token starts afresh
        material = repr(sorted(self.connection.secrets.items())) + repr(sorted(self.connection.fields.items()))
        return self.connection.name + "#" + hashlib.sha256(material.encode()).hexdigest()

    def _token(self, *, fresh: bool) -> str:
        key, now = self._cache_key(), self.clock()
        with _LOCK:
            cached = _TOKENS.get(key)
            if cached and not fresh and cached[1] > now:
                return cached[0]
            _TOKENS.pop(key, None)
        token, lifetime = self._fetch()
        with _LOCK:
            _TOKENS[key] = (token, now + max(lifetime - EXPIRY_MARGIN, 1.0))
        return token

    def _fetch(self) -> tuple[str, float]:
        c, s = self.connection, self.connection.secrets
        form = {"client_id": str(c.fields.get("client_id", "")), "client_secret": s.get("client_secret", "")}
        if s.get("refresh_token"):
            form.update(grant_type="refresh_token", refresh_token=s["refresh_token"])
        else:
            form["grant_type"] = "client_credentials"
        if c.fields.get("scope"):
            form["scope"] = str(c.fields["scope"])
        try:
            reply = call_json("POST", str(c.fields.get("token_url")), form=form, timeout=self.timeout)
        except HttpFailure as failure:
            if failure.status is not None and 400 <= failure.status < 500:
                error = failure.json() if isinstance(failure.json(), dict) else {}
                why = f"token refresh failed (HTTP {failure.status} {error.get('error', '')})".replace(" )", ")")
                raise revoked(c.name, redact(why, c)) from None
            raise IntegrationError(
                f"could not get an OAuth2 token for connection {c.name}: {failure.reason}",
                retryable=not failure.blocked,
                details={"connection": c.name},
                action=UPDATE_CONNECTION if failure.blocked else None,
            ) from None
        body = reply.body if isinstance(reply.body, dict) else {}
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise IntegrationError(
                f"the token endpoint of connection {c.name} answered no access_token",
                retryable=False,
                details={"connection": c.name},
                action=UPDATE_CONNECTION,
            )
        expires = body.get("expires_in")
        lifetime = float(expires) if isinstance(expires, (int, float)) and expires > 0 else DEFAULT_TOKEN_SECONDS
        return token, lifetime


def fetch_count_reset() -> None:
    """Forget every cached token (tests start from a cold container)."""
    with _LOCK:
        _TOKENS.clear()
