"""Webhook schemes: how each provider's delivery is verified, and where its id, type and payload are.

A scheme reads one delivery (headers and raw body, verified before anything parses them)
into an ``Inbound``: the delivery id that dedupes it, the event type that matches workflows,
the payload, and how long the delivery id is remembered. A scheme is one entry in ``SCHEMES``.

* ``standard`` (Standard Webhooks): id ``webhook-id``, type the body's ``type``.
* ``github``: id ``X-GitHub-Delivery``, type ``X-GitHub-Event``; the body is JSON or, with
  GitHub's default content type, ``application/x-www-form-urlencoded`` ``payload=<json>``.
  GitHub signs no timestamp, so its delivery ids are kept for the long dedupe window
  (``STEPLINE_WEBHOOK_DEDUPE_DAYS``, 30 days by default): a captured delivery posted again
  within that window starts nothing.
* ``stripe``: id the event's ``id``, type its ``type``.
* ``slack`` (Events API): id ``event_id``, type ``event.type`` of an ``event_callback``; a
  ``url_verification`` is answered with its ``challenge`` and stored nowhere.

Schemes with a signed timestamp refuse anything older than 5 minutes, so their ids need only
outlive that (48 hours, for slow retries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from chalicelib.domain.signatures import (
    MAX_ID_LENGTH,
    SignatureProblem,
    secret_key,
    verify_github,
    verify_slack,
    verify_standard,
    verify_stripe,
)
from chalicelib.errors import FieldError, ValidationError
from chalicelib.jsonlimits import parse_json_object

#: Delivery ids of schemes with a signed timestamp (the 5-minute window makes replays stale).
TIMESTAMPED_DEDUPE = timedelta(hours=48)
#: Default for schemes without one (GitHub); ``STEPLINE_WEBHOOK_DEDUPE_DAYS`` overrides it.
DEFAULT_UNSIGNED_DEDUPE_DAYS = 30
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Inbound:
    """A verified delivery: what dedupes it, what it is, and its content."""

    delivery_id: str
    event_type: str
    payload: dict[str, Any]
    signed_timestamp: bool
    #: Answered at once, started nothing, stored nowhere (Slack's url_verification).
    direct_answer: dict[str, Any] | None = None


@dataclass(frozen=True)
class Scheme:
    name: str
    read: Callable[[Mapping[str, str], bytes, Sequence[str], datetime], Inbound]
    #: The provider issues the secret (Stripe, Slack): ``POST /sources`` must be given it.
    provider_secret: bool
    check_secret: Callable[[str], str | None]


# ------------------------------------------------------------------ readers
def _read_standard(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: datetime) -> Inbound:
    verified = verify_standard(headers, body, secrets, now)
    payload = parse_json(body)
    return Inbound(verified.delivery_id, _body_type(payload, "type"), payload, True)


def _read_github(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: datetime) -> Inbound:
    verified = verify_github(headers, body, secrets)
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    payload = parse_json(_form_payload(body) if content_type == FORM else body)
    event_type = headers.get("x-github-event") or ""
    if not event_type.strip():
        raise ValidationError(FieldError("X-GitHub-Event", "header is required"))
    return Inbound(verified.delivery_id, event_type.strip(), payload, False)


def _read_stripe(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: datetime) -> Inbound:
    verify_stripe(headers, body, secrets, now)
    payload = parse_json(body)
    return Inbound(_body_id(payload.get("id"), "id"), _body_type(payload, "type"), payload, True)


def _read_slack(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: datetime) -> Inbound:
    verify_slack(headers, body, secrets, now)
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == FORM:
        raise ValidationError(
            FieldError(
                "body",
                "slack sources take Events API deliveries (JSON); slash "
                "commands and interactivity are not event triggers",
            )
        )
    payload = parse_json(body)
    if payload.get("type") == "url_verification":
        challenge = payload.get("challenge")
        if not isinstance(challenge, str) or not challenge:
            raise ValidationError(FieldError("challenge", "a url_verification body needs its challenge string"))
        return Inbound("", "url_verification", payload, True, direct_answer={"challenge": challenge})
    if payload.get("type") != "event_callback":
        raise ValidationError(FieldError("type", "must be event_callback or url_verification"))
    event = payload.get("event")
    if not isinstance(event, dict):
        raise ValidationError(FieldError("event", "an event_callback body needs the event object"))
    return Inbound(_body_id(payload.get("event_id"), "event_id"), _body_type(event, "event.type"), payload, True)


# ------------------------------------------------------------------ secrets
def _standard_secret(secret: str) -> str | None:
    try:
        key = secret_key(secret) if secret.startswith("whsec_") else b""
    except SignatureProblem:
        key = b""
    return None if len(key) >= 16 else "must be whsec_ followed by the base64 of at least 16 random bytes"


def _github_secret(secret: str) -> str | None:
    return None if 16 <= len(secret) <= 1024 else "must be 16 to 1024 characters (GitHub: your webhook's secret)"


def _stripe_secret(secret: str) -> str | None:
    if not secret.startswith("whsec_") or len(secret) > 256:
        return "must be the endpoint's signing secret, whsec_... (Dashboard > Webhooks), not an API key"
    return None


def _slack_secret(secret: str) -> str | None:
    ok = 16 <= len(secret) <= 256 and secret.isalnum()
    return None if ok else "must be your Slack app's Signing Secret (Basic Information > App Credentials)"


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("standard", _read_standard, False, _standard_secret),
        Scheme("github", _read_github, False, _github_secret),
        Scheme("stripe", _read_stripe, True, _stripe_secret),
        Scheme("slack", _read_slack, True, _slack_secret),
    )
}


def scheme(name: str) -> Scheme:
    """The scheme of a stored source (a source of an unknown scheme was never accepted)."""
    return SCHEMES[name]


# ------------------------------------------------------------------ parsing
def parse_json(body: bytes) -> dict[str, Any]:
    """The delivery's JSON object, or a 400 naming ``body``: bounded like every JSON that enters
    (``chalicelib.jsonlimits``: depth, no NaN/Infinity, nothing too large for a float)."""
    return parse_json_object(body)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _form_payload(body: bytes) -> bytes:
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationError(FieldError("body", f"not a valid form body: {error}")) from error
    values = fields.get("payload") or []
    if len(values) != 1:
        raise ValidationError(FieldError("payload", "a form-encoded GitHub delivery carries one payload=<json>"))
    return values[0].encode()


def _body_type(payload: dict[str, Any], name: str) -> str:
    value = payload.get("type")
    if not isinstance(value, str) or not value:
        raise ValidationError(FieldError(name, "the event body needs a non-empty string type"))
    return value


def _body_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise ValidationError(
            FieldError(name, f"the event body needs its id (a string of 1 to {MAX_ID_LENGTH} characters)")
        )
    return value


__all__ = [
    "DEFAULT_UNSIGNED_DEDUPE_DAYS",
    "SCHEMES",
    "TIMESTAMPED_DEDUPE",
    "Inbound",
    "Scheme",
    "parse_json",
    "scheme",
]
