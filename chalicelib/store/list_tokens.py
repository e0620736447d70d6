"""Pagination tokens of the execution lists (store/lists.py).

Tokens are base64 JSON bound to the list's filters (``ListFilter.scope``) that name the last
execution returned (``pk``, ``sk``, ``start_sk`` = ``<started_at>#<id>``, and ``g_wf`` per
workflow), plus the month across workflows. They are opaque, not secret: every field is
checked on the way back in, so a tampered or foreign token is a ``ValidationError`` (400)
and a forged one can only move within the same list.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any

from chalicelib.errors import FieldError, ValidationError
from chalicelib.store.commits import HEAD_SK

if TYPE_CHECKING:
    from chalicelib.store.lists import ListFilter

__all__ = ["bad_token", "decode_cross", "decode_workflow", "encode"]

_MONTH = re.compile(r"^\d{4}-\d{2}$")


def encode(f: ListFilter, month: str | None, row: Any | None) -> str:
    """The token of a page that ends at ``row`` (in ``month`` across workflows), or of ``month``'s start."""
    key = None
    if row is not None:
        key = {"pk": {"S": row.pk}, "sk": {"S": HEAD_SK}, "start_sk": {"S": row.l_sk.split("#", 2)[2]}}
        if f.workflow_id:
            key["g_wf"] = {"S": f.workflow_id}
    raw = json.dumps({"s": f.scope(), "m": month, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_workflow(token: str, f: ListFilter) -> str:
    """The position a per-workflow token names (checked field by field)."""
    data = _decode_raw(token, f)
    if data.get("m") is not None or data.get("k") is None:
        raise bad_token()
    return _checked_position(data["k"], f, {"pk", "sk", "start_sk", "g_wf"})


def decode_cross(token: str, f: ListFilter, now: str) -> tuple[str, str | None]:
    """The month and position a cross-workflow token names (checked field by field)."""
    data = _decode_raw(token, f)
    month = data.get("m")
    if not isinstance(month, str) or not _MONTH.match(month) or month > now[:7]:
        raise bad_token()
    if data.get("k") is None:
        return month, None
    position = _checked_position(data["k"], f, {"pk", "sk", "start_sk"})
    if not position.startswith(month):
        raise bad_token()
    return month, position


def _checked_position(key: Any, f: ListFilter, names: set[str]) -> str:
    """The ``<started_at>#<id>`` a token's key names, after checking every field of it."""
    if not isinstance(key, dict) or set(key) != names:
        raise bad_token()
    values = {}
    for name, value in key.items():
        if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str):
            raise bad_token()
        values[name] = value["S"]
    execution_id = values["pk"][3:]
    position = values["start_sk"]
    consistent = (
        values["pk"].startswith("EX#")
        and len(execution_id) > 0
        and values["sk"] == HEAD_SK
        and values.get("g_wf", f.workflow_id) == f.workflow_id
        and position.endswith("#" + execution_id)
        and (not f.start_from or position >= f.start_from)
        and (not f.start_to or position <= f.start_to + "~")
    )
    if not consistent:
        raise bad_token()
    return position


def _decode_raw(token: str, f: ListFilter) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise bad_token() from error
    if not isinstance(data, dict) or data.get("s") != f.scope() or set(data) != {"s", "m", "k"}:
        raise bad_token()
    return data


def bad_token() -> ValidationError:
    return ValidationError(FieldError("next_token", "invalid or foreign pagination token"))
