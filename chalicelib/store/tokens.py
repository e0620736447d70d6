"""Opaque pagination tokens for Query-backed pages (history pages, bulk results).

A token is base64 JSON of the page's last key and the scope of the query that made it; on
the way back in it is checked against that scope and the key's expected attributes, so a
tampered or foreign token is a ``ValidationError`` (400), never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from chalicelib.errors import FieldError, ValidationError

__all__ = ["decode_token", "encode_token"]


def encode_token(key: dict[str, Any] | None, scope: str) -> str | None:
    """Opaque pagination token bound to the query it came from."""
    if not key:
        return None
    raw = json.dumps({"s": scope, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, scope: str, attributes: set[str]) -> dict[str, Any] | None:
    """Read a token made by ``encode_token`` for the same query; anything else is a 400."""
    if not token:
        return None
    bad = ValidationError(FieldError("next_token", "invalid or foreign pagination token"))
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise bad from error
    if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("k"), dict):
        raise bad
    key = data["k"]
    if set(key) != attributes or not all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()
    ):
        raise bad
    return key
