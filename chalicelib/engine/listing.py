"""Execution list filters, checked once for every entry that lists executions.

``GET /executions``, ``GET /workflows/{id}/executions`` and the MCP ``list_executions`` tool
take the same filters; each value is checked here, so a filter means the same thing (and is
refused with the same message) whichever door it came through.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.states import ExecutionStatus
from chalicelib.domain.timefmt import iso, parse_iso
from chalicelib.errors import FieldError, ValidationError
from chalicelib.triggers import trigger_kind_names

STATUSES = tuple(s.value for s in ExecutionStatus)
TRIGGERS = tuple(trigger_kind_names())
LIST_PARAMS = ("status", "trigger", "from", "to", "limit", "next_token")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    """``value`` if it is one of ``allowed``; empty means no filter."""
    if value is None or value == "":
        return None
    if value not in allowed:
        raise ValidationError(FieldError(name, f"must be one of {', '.join(allowed)}"))
    return str(value)


def moment(name: str, value: Any) -> str | None:
    """A normalised ISO timestamp (``from``/``to`` on the start time); empty means no bound."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(FieldError(name, "must be an ISO 8601 timestamp, e.g. 2026-01-31T00:00:00Z"))
    try:
        parsed = parse_iso(value)
    except (ValueError, OverflowError) as error:
        raise ValidationError(FieldError(name, "must be an ISO 8601 timestamp, e.g. 2026-01-31T00:00:00Z")) from error
    if not 1000 <= parsed.year <= 9998:  # four-digit years keep ISO strings in time order
        raise ValidationError(FieldError(name, "must be a timestamp between the years 1000 and 9998"))
    return iso(parsed)


def span(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """``from`` and ``to`` of a list; ``from`` after ``to`` could match nothing, so it is a 400."""
    if start and end and start > end:
        raise ValidationError(FieldError("to", f"is before from ({end} < {start}): no execution could match"))
    return start, end


def page_size(value: Any) -> int:
    """The page size: an integer (or its digits) from 1 to ``MAX_LIMIT``; default ``DEFAULT_LIMIT``."""
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ValidationError(FieldError("limit", f"must be an integer from 1 to {MAX_LIMIT}"))
    return value


def token(value: Any) -> str | None:
    """The opaque next-page token (the store checks its content)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 4096:
        raise ValidationError(FieldError("next_token", "must be the next_token string of the previous page"))
    return value
