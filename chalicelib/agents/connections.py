"""How agents reach connections at run time, and how they name them in a definition.

``resolve_connection`` turns a name into a ``ResolvedConnection`` (fields plus secrets, read
through the container's cached vault). A missing connection or an unreadable secret is an
``integration`` error naming the connection, with the ``update_connection`` action.
"""

from __future__ import annotations

from typing import Any

from chalicelib.agents.base import IntegrationError
from chalicelib.domain.actions import UPDATE_CONNECTION
from chalicelib.domain.connections import ResolvedConnection

__all__ = ["redact", "resolve_connection"]


def resolve_connection(name: str) -> ResolvedConnection:
    """The named connection of this process's deployment, with its secrets."""
    from chalicelib.engine import get_engine  # late: the engine imports the agents
    from chalicelib.engine.connections import connections_for
    from chalicelib.errors import NotFound
    from chalicelib.secrets import SecretUnavailable

    try:
        return connections_for(get_engine().settings).resolve(name)
    except NotFound:
        raise IntegrationError(
            f"connection {name} does not exist any more: create it again or edit the step",
            retryable=False,
            details={"connection": name},
            action=UPDATE_CONNECTION,
        ) from None
    except SecretUnavailable as error:
        raise IntegrationError(str(error), retryable=True, details={"connection": name}) from None


def redact(text: str, connection: ResolvedConnection | None) -> str:
    """``text`` with every secret value of ``connection`` replaced (a server may echo a header back)."""
    if connection is None:
        return text
    for value in connection.secret_values():
        text = text.replace(value, "[secret]")
    return text


def step_connection_ref(config: Any, path: str, kinds: tuple[str, ...], *, required: bool) -> list[Any]:
    """The ``config.connection`` reference of a step, if any (see ``ConnectionRef``)."""
    from chalicelib.domain.connections import ConnectionRef

    if not isinstance(config, dict) or ("connection" not in config and not required):
        return []
    return [ConnectionRef(f"{path}.config.connection", config.get("connection"), kinds)]
