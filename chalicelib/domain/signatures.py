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
  (``X-GitHub-Delivery``) dedupe alone.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping, Sequence

__all__ = ["TOLERANCE_SECONDS", "SignatureProblem", "Verified", "verify_standard", "verify_github", "secret_key",
           "sign_standard"]

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
    body = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
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
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureProblem("webhook-timestamp must be whole seconds since the Unix epoch")
    timestamp = int(stamp)
    drift = timestamp - now.astimezone(timezone.utc).timestamp()
    if drift < -TOLERANCE_SECONDS:
        raise SignatureProblem("webhook-timestamp is more than 5 minutes old")
    if drift > TOLERANCE_SECONDS:
        raise SignatureProblem("webhook-timestamp is more than 5 minutes in the future")
    offered = [_b64(entry[3:]) for entry in signature.split() if entry.startswith("v1,")]
    offered = [value for value in offered if value is not None]
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
