"""The recommended operator action for a step error (API.md v2: "Errors carry a recommended action").

A failed step pauses its execution; the operator needs to know which of the actions helps:

- ``retry``: the cause is outside the definition and may pass (a 503, a time-out, throttling);
- ``edit_and_retry``: the same instructions over the same data will fail again (the model said
  it cannot complete the task, a JMESPath error, output that does not match the schema);
- ``update_connection``: the credentials were refused (401/403, an expired OAuth token);
- ``skip_or_cancel``: a person decided (a rejected gate) or nothing else can help.

Agents may set ``action`` themselves; otherwise it is derived here from the kind and
``retryable``, so every error has one, including those recorded before this existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.vocabulary import ErrorKind

__all__ = [
    "ACTIONS",
    "EDIT_AND_RETRY",
    "RETRY",
    "SKIP_OR_CANCEL",
    "UPDATE_CONNECTION",
    "recommended_action",
    "with_action",
]

RETRY = "retry"
EDIT_AND_RETRY = "edit_and_retry"
UPDATE_CONNECTION = "update_connection"
SKIP_OR_CANCEL = "skip_or_cancel"
ACTIONS = (RETRY, EDIT_AND_RETRY, UPDATE_CONNECTION, SKIP_OR_CANCEL)


def recommended_action(error: Mapping[str, Any]) -> str:
    """The action for ``error`` (``{"kind", "message", "retryable", ...}``)."""
    given = error.get("action")
    if given in ACTIONS:
        return str(given)
    kind = error.get("kind")
    raw_details = error.get("details")
    details: Mapping[str, Any] = raw_details if isinstance(raw_details, Mapping) else {}
    status = error.get("status", details.get("status"))
    if kind == ErrorKind.REJECTED:
        return SKIP_OR_CANCEL
    if kind == ErrorKind.INTEGRATION and status in (401, 403):
        return UPDATE_CONNECTION
    if error.get("retryable") or kind in (ErrorKind.TIMEOUT, ErrorKind.INTERNAL):
        return RETRY
    if kind == ErrorKind.AGENT:
        return EDIT_AND_RETRY
    if kind == ErrorKind.INTEGRATION:
        # a 4xx other than auth: the request the step builds is wrong; edit it
        return EDIT_AND_RETRY if isinstance(status, int) and 400 <= status < 500 else SKIP_OR_CANCEL
    return SKIP_OR_CANCEL


def with_action(error: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A copy of ``error`` carrying its ``action`` (None stays None)."""
    if not error:
        return None if error is None else dict(error)
    return {**error, "action": recommended_action(error)}
