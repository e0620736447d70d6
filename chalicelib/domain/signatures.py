"""Webhook signatures: Standard Webhooks and GitHub's ``X-Hub-Signature-256``.

Verification runs on the raw body bytes, before anything parses them, and compares in
constant time. Pure: the caller passes the headers, the body, the candidate secrets
(current and, during a rotation, previous) and ``now``.

* Standard Webhooks (https://www.standardwebhooks.com/, spec "Verifying webhook
  authenticity"): HMAC-SHA256 keyed with the base64-decoded part of ``whsec_<base64>``
  over ``<webhook-id>.<webhook-timestamp>.<body>``; ``webhook-signature`` holds one or more
  space-separated ``v1,<base64>`` entries; the timestamp must be within 5 minutes of now,
  either way.
* GitHub (https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries):
  ``X-Hub-Signature-256: sha256=<hex>`` HMAC-SHA256 of the body keyed with the secret's
  UTF-8 bytes. GitHub signs no timestamp, so replays are stopped by the delivery id
  (``X-GitHub-Delivery``) dedupe alone. A form-encoded delivery (``payload=<json>``) is signed
  the same way: over the form body as sent.
* Stripe (https://docs.stripe.com/webhooks, "Verify signatures manually"):
  ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]``, HMAC-SHA256 keyed with the
  endpoint secret's UTF-8 bytes (``whsec_...`` as a whole) over ``<t>.<body>``; any ``v1``
  may match (during a secret roll Stripe signs with both); ``t`` within 5 minutes.
* Slack (https://api.slack.com/authentication/verifying-requests-from-slack):
  ``X-Slack-Signature: v0=<hex>``, HMAC-SHA256 keyed with the signing secret's UTF-8 bytes
  over ``v0:<X-Slack-Request-Timestamp>:<body>``; the timestamp within 5 minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "TOLERANCE_SECONDS",
    "SignatureProblem",
    "Verified",
    "secret_key",
    "sign_standard",
    "verify_github",
    "verify_slack",
    "verify_standard",
    "verify_stripe",
]

TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"
MAX_ID_LENGTH = 255


class SignatureProblem(Exception):
    """Why a delivery is not authentic (the API answers 401 with this text)."""


@dataclass(frozen=True)
class Verified:
    """An authentic delivery: its id (for dedupe) and which secret matched."""

    delivery_id: str
    secret_index: int
    timestamp: int | None = None


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the Standard Webhooks rule)."""
    body = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(body + "==")
    except (binascii.Error, ValueError) as error:
        raise SignatureProblem("the source's secret is not base64") from error


def sign_standard(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for an outgoing delivery (``v1,<base64>``)."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: datetime) -> Verified:
    """Check the Standard Webhooks headers against ``body``; raise ``SignatureProblem`` if not authentic."""
    delivery_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signature = _header(headers, "webhook-signature")
    if len(delivery_id) > MAX_ID_LENGTH:
        raise SignatureProblem(f"webhook-id is longer than {MAX_ID_LENGTH} characters")
    timestamp = _fresh("webhook-timestamp", stamp, now)
    decoded = [_b64(entry[3:]) for entry in signature.split() if entry.startswith("v1,")]
    offered = [value for value in decoded if value is not None]
    if not offered:
        raise SignatureProblem("webhook-signature has no 'v1,<base64>' entry")
    signed = f"{delivery_id}.{stamp}.".encode() + body
    for index, secret in enumerate(secrets):
        expected = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
        # Compare against every offered entry, never stopping early on a mismatch.
        if any([hmac.compare_digest(expected, value) for value in offered]):
            return Verified(delivery_id, index, timestamp)
    raise SignatureProblem("no webhook-signature entry matches")


def verify_github(headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> Verified:
    """Check ``X-Hub-Signature-256`` against ``body``; the delivery id is ``X-GitHub-Delivery``."""
    delivery_id = _header(headers, "x-github-delivery")
    signature = _header(headers, "x-hub-signature-256")
    if len(delivery_id) > MAX_ID_LENGTH:
        raise SignatureProblem(f"X-GitHub-Delivery is longer than {MAX_ID_LENGTH} characters")
    if not signature.startswith("sha256="):
        raise SignatureProblem("X-Hub-Signature-256 must look like 'sha256=<hex>'")
    try:
        offered = bytes.fromhex(signature[7:])
    except ValueError as error:
        raise SignatureProblem("X-Hub-Signature-256 is not hexadecimal") from error
    for index, secret in enumerate(secrets):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, offered):
            return Verified(delivery_id, index)
    raise SignatureProblem("X-Hub-Signature-256 does not match")


def verify_stripe(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: datetime) -> Verified:
    """Check ``Stripe-Signature`` against ``body``. The delivery id is the event's ``id`` in the
    body (Stripe retries an event with the same id), so it is left for the caller to read."""
    header = _header(headers, "stripe-signature")
    stamps, offered = [], []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamps.append(value)
        elif key == "v1":
            try:
                offered.append(bytes.fromhex(value))
            except ValueError:
                continue
    if len(stamps) != 1:
        raise SignatureProblem("Stripe-Signature needs exactly one 't=<unix time>'")
    timestamp = _fresh("Stripe-Signature t", stamps[0], now)
    if not offered:
        raise SignatureProblem("Stripe-Signature has no 'v1=<hex>' entry")
    signed = f"{stamps[0]}.".encode() + body
    for index, secret in enumerate(secrets):
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
        if any([hmac.compare_digest(expected, value) for value in offered]):
            return Verified("", index, timestamp)
    raise SignatureProblem("no Stripe-Signature v1 entry matches")


def verify_slack(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: datetime) -> Verified:
    """Check ``X-Slack-Signature`` against ``body``; the delivery id (``event_id``) is in the body."""
    stamp = _header(headers, "x-slack-request-timestamp")
    signature = _header(headers, "x-slack-signature")
    timestamp = _fresh("X-Slack-Request-Timestamp", stamp, now)
    if not signature.startswith("v0="):
        raise SignatureProblem("X-Slack-Signature must look like 'v0=<hex>'")
    try:
        offered = bytes.fromhex(signature[3:])
    except ValueError as error:
        raise SignatureProblem("X-Slack-Signature is not hexadecimal") from error
    signed = f"v0:{stamp}:".encode() + body
    for index, secret in enumerate(secrets):
        if hmac.compare_digest(hmac.new(secret.encode(), signed, hashlib.sha256).digest(), offered):
            return Verified("", index, timestamp)
    raise SignatureProblem("X-Slack-Signature does not match")


def _fresh(name: str, stamp: str, now: datetime) -> int:
    """A signed Unix timestamp within ``TOLERANCE_SECONDS`` of now, either way (a replay window)."""
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureProblem(f"{name} must be whole seconds since the Unix epoch")
    timestamp = int(stamp)
    drift = timestamp - now.astimezone(UTC).timestamp()
    if drift < -TOLERANCE_SECONDS:
        raise SignatureProblem(f"{name} is more than 5 minutes old")
    if drift > TOLERANCE_SECONDS:
        raise SignatureProblem(f"{name} is more than 5 minutes in the future")
    return timestamp


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value or not value.strip():
        raise SignatureProblem(f"missing {name} header")
    return value.strip()


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
