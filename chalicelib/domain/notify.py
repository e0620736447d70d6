"""Who hears about an execution: the ``notify`` list of a workflow definition.

``"notify": [{"on": ["gate_waiting", "failed", "completed"], "email": "ops@example.com"},
{"on": ["failed"], "webhook": "https://hooks.example.com/stepline"}]``. Each target names the
moments it wants (``NOTIFY_EVENTS``, derived from execution statuses by ``notify_event``)
and exactly one channel. Pure: parsing and the mapping only; delivery is
``chalicelib/engine/notifications.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chalicelib.domain.states import ExecutionStatus
from chalicelib.errors import FieldError

#: A notification moment and the execution status that means it.
NOTIFY_EVENTS: dict[str, ExecutionStatus] = {
    "gate_waiting": ExecutionStatus.WAITING,
    "failed": ExecutionStatus.FAILED,
    "completed": ExecutionStatus.COMPLETED,
}
CHANNELS = ("email", "webhook")
MAX_TARGETS = 10
_KEYS = ("on", *CHANNELS)
# deliberately plain: one @, a dot in the domain, no spaces (SES refuses the rest anyway)
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
#: Plain http is for a receiver on this machine (local mode); anything else must be https.
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class NotifyTarget:
    on: tuple[str, ...]
    email: str | None = None
    webhook: str | None = None

    @property
    def channel(self) -> str:
        return "email" if self.email else "webhook"

    def to_dict(self) -> dict[str, Any]:
        return {"on": list(self.on), self.channel: self.email or self.webhook}


def notify_event(status: str) -> str | None:
    """The notification moment an execution status means (``waiting`` -> ``gate_waiting``), if any."""
    for name, meant in NOTIFY_EVENTS.items():
        if meant.value == status:
            return name
    return None


def parse_notify(raw: Any, errors: list[FieldError]) -> tuple[NotifyTarget, ...]:
    """Validate the ``notify`` list, recording every problem by its path in ``errors``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError("notify", 'must be a list, e.g. [{"on": ["failed"], "email": "ops@example.com"}]'))
        return ()
    if len(raw) > MAX_TARGETS:
        errors.append(FieldError("notify", f"must have at most {MAX_TARGETS} targets"))
    targets = [_parse_target(item, f"notify[{i}]", errors) for i, item in enumerate(raw)]
    return tuple(t for t in targets if t is not None)


def _parse_target(raw: Any, path: str, errors: list[FieldError]) -> NotifyTarget | None:
    if not isinstance(raw, dict):
        errors.append(FieldError(path, 'must be an object with "on" and one of "email" or "webhook"'))
        return None
    start = len(errors)
    for key in raw:
        if key not in _KEYS:
            errors.append(FieldError(f"{path}.{key}", "unknown field; expected one of: " + ", ".join(_KEYS)))
    on = raw.get("on")
    if not isinstance(on, list) or not on:
        errors.append(FieldError(f"{path}.on", "must be a non-empty list of: " + ", ".join(NOTIFY_EVENTS)))
        on = []
    for i, name in enumerate(on):
        if not isinstance(name, str) or name not in NOTIFY_EVENTS:  # a dict or list is not hashable
            errors.append(FieldError(f"{path}.on[{i}]", "must be one of: " + ", ".join(NOTIFY_EVENTS)))
    channels = [c for c in CHANNELS if raw.get(c) is not None]
    if len(channels) != 1:
        errors.append(FieldError(path, 'needs exactly one of "email" or "webhook"'))
    email, webhook = raw.get("email"), raw.get("webhook")
    if email is not None and not (isinstance(email, str) and _EMAIL.fullmatch(email)):
        errors.append(FieldError(f"{path}.email", "must be an email address, e.g. ops@example.com"))
    if webhook is not None and (problem := webhook_url_problem(webhook)):
        errors.append(FieldError(f"{path}.webhook", problem))
    if len(errors) != start:
        return None
    return NotifyTarget(tuple(dict.fromkeys(on)), email, webhook)


def webhook_url_problem(url: Any) -> str | None:
    """Why ``url`` cannot receive notifications, or None."""
    if not isinstance(url, str) or len(url) > 2000:
        return "must be a URL of at most 2000 characters"
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL"
    if parts.username or parts.password:
        return "must not carry a user name or password"
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        return "must be https:// (plain http only to this machine, for local mode)"
    return None
