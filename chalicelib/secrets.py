"""Connection secrets in AWS Secrets Manager: one secret per connection, under a stage prefix.

A connection's secret fields (API keys, tokens, passwords) never go to DynamoDB: the catalog
item keeps the non-secret fields and the *names* of the secret ones, and the values live in
the secret ``stepline/<stage>/connections/<name>`` as a JSON object. The IAM policy grants
the functions ``secretsmanager:GetSecretValue`` on ``stepline/<stage>/*`` only, and the write
actions to the API function only (``infra/``).

Reads are cached per container for ``CACHE_SECONDS``: a step that calls a model eight times
reads the secret once. Each cached copy is stamped with the connection record's version, which
callers read (consistently) anyway, so a rotated key (``PUT /connections/{name}`` bumps the
version) is used by every container from its next step on.

Nothing here logs a value; errors name the connection, never the secret's content.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.config import Settings

__all__ = ["CACHE_SECONDS", "SecretUnavailable", "SecretVault", "secret_prefix"]

CACHE_SECONDS = 60.0


class SecretUnavailable(Exception):
    """The secret of a connection could not be read or written (no value is ever included)."""


def secret_prefix(stage: str) -> str:
    """Every secret of a stage starts with this; the IAM policy is scoped to it."""
    return f"stepline/{stage}/"


class SecretVault:
    """Put, read (cached), rotate and delete the secret of each connection."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._client: Any = None
        self._cache: dict[str, tuple[float, str, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def secret_id(self, connection: str) -> str:
        return f"{secret_prefix(self.settings.stage)}connections/{connection}"

    @property
    def client(self) -> Any:
        if self._client is None:  # built on first use: importing the app touches no AWS
            self._client = boto3.client(
                "secretsmanager", region_name=self.settings.region, endpoint_url=self.settings.endpoint_url
            )
        return self._client

    def put(self, connection: str, values: Mapping[str, str]) -> None:
        """Create or replace the connection's secret with ``values`` (a flat string map)."""
        secret_id, blob = self.secret_id(connection), json.dumps(dict(values))
        try:
            try:
                self.client.put_secret_value(SecretId=secret_id, SecretString=blob)
            except ClientError as error:
                if _code(error) != "ResourceNotFoundException":
                    raise
                self.client.create_secret(
                    Name=secret_id,
                    SecretString=blob,
                    Description=f"Stepline connection {connection} ({self.settings.stage})",
                    Tags=[{"Key": "stepline:stage", "Value": self.settings.stage}],
                )
        except (ClientError, BotoCoreError) as error:
            raise SecretUnavailable(f"could not store the secret of connection {connection}: {_code(error)}") from None
        finally:
            self.forget(connection)

    def get(self, connection: str, stamp: str = "") -> dict[str, str]:
        """The connection's secret values; ``{}`` when it has none.

        ``stamp`` identifies the record version the caller read: a cached copy with another
        stamp is not used.
        """
        now = self.clock()
        with self._lock:
            cached = self._cache.get(connection)
            if cached and cached[0] > now and cached[1] == stamp:
                return dict(cached[2])
        try:
            raw = self.client.get_secret_value(SecretId=self.secret_id(connection))["SecretString"]
            values = json.loads(raw)
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                values = {}
            else:
                raise SecretUnavailable(
                    f"could not read the secret of connection {connection}: {_code(error)}"
                ) from None
        except (BotoCoreError, ValueError, KeyError) as error:
            raise SecretUnavailable(
                f"could not read the secret of connection {connection}: {type(error).__name__}"
            ) from None
        values = {str(k): str(v) for k, v in dict(values).items()}
        with self._lock:
            self._cache[connection] = (now + CACHE_SECONDS, stamp, values)
        return dict(values)

    def delete(self, connection: str) -> None:
        """Delete the secret now (no recovery window: the connection is gone)."""
        try:
            self.client.delete_secret(SecretId=self.secret_id(connection), ForceDeleteWithoutRecovery=True)
        except ClientError as error:
            if _code(error) != "ResourceNotFoundException":
                raise SecretUnavailable(
                    f"could not delete the secret of connection {connection}: {_code(error)}"
                ) from None
        finally:
            self.forget(connection)

    def forget(self, connection: str) -> None:
        """Drop this container's cached copy (after a rotation)."""
        with self._lock:
            self._cache.pop(connection, None)


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "ClientError")
    return type(error).__name__
