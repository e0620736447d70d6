"""The bootstrap admin key of a deployed stack, kept in AWS Secrets Manager.

A fresh stack has no API keys, and every route but ``/health`` needs one. The template
creates a secret whose value CloudFormation generates (``GenerateSecretString``), so no key
is ever written in the template or the repository; the API function gets the secret's ARN
in ``STEPLINE_ADMIN_KEY_SECRET`` and accepts the secret's value as an admin key.

Only a SHA-256 hash of the value is kept in memory, and it is compared in constant time.
The value is re-read at most every ``REFRESH_SECONDS``, so a rotated secret
(``aws secretsmanager put-secret-value``) replaces the old key within that time without a
deployment. Deploying with ``BootstrapAdminKey=disabled`` removes the variable: the secret is
then never read and its value is no key at all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("stepline.bootstrap")

#: How long a read value (or a failed read) is trusted before the secret is read again.
REFRESH_SECONDS = 60.0
#: Name shown for the bootstrap key (``GET /me``, audit records).
ACTOR_NAME = "bootstrap-admin"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class BootstrapKey:
    """The hash of one secret's current value, re-read when it is older than ``refresh``."""

    def __init__(
        self,
        secret_id: str,
        client_factory: Callable[[], Any],
        refresh: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_id = secret_id
        self._client_factory = client_factory
        self._client: Any = None
        self._refresh = refresh
        self._clock = clock
        self._hash: str | None = None
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def matches(self, key: str) -> bool:
        """True if ``key`` is the secret's current value (compared by hash, in constant time)."""
        current = self._current_hash()
        return current is not None and hmac.compare_digest(_sha256(key), current)

    def _current_hash(self) -> str | None:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._refresh:
                self._hash = self._read()
                self._read_at = now
            return self._hash

    def _read(self) -> str | None:
        """The hash of the secret's value; None (and a logged error) if it cannot be read:
        the key is then refused like any unknown key, never a 500."""
        try:
            if self._client is None:
                self._client = self._client_factory()
            value = self._client.get_secret_value(SecretId=self.secret_id).get("SecretString")
        except Exception as error:  # boto's ClientError, a missing permission, the network
            log.error("cannot read the bootstrap admin key secret %s: %s", self.secret_id, error)
            return None
        if not isinstance(value, str) or not value:
            log.error("the bootstrap admin key secret %s has no string value", self.secret_id)
            return None
        return _sha256(value)


_KEYS: dict[tuple[str, str, str | None], BootstrapKey] = {}
_KEYS_LOCK = threading.Lock()


def bootstrap_key(secret_id: str, region: str, endpoint_url: str | None) -> BootstrapKey:
    """The process-wide ``BootstrapKey`` of a secret (one per warm Lambda container)."""
    with _KEYS_LOCK:
        cache_key = (secret_id, region, endpoint_url)
        if cache_key not in _KEYS:

            def client() -> Any:
                import boto3  # only the API function authenticates: the others never load this

                return boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)

            _KEYS[cache_key] = BootstrapKey(secret_id, client)
        return _KEYS[cache_key]
