"""Execution list filters, checked once for every entry that lists executions.

``GET /executions``, ``GET /workflows/{id}/executions`` and the MCP ``list_executions`` tool
take the same filters; each value is checked here, so a filter means the same thing (and is
refused with the same message) whichever door it came through.
"""

from __future__ import annotations

import re
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
#: What a ``from``/``to`` bound must look like: an RFC 3339 date-time (the OpenAPI's ``format:
#: date-time``: date, ``T``, time with seconds, a zone) whose year is 1000 to 9998, so that its
#: UTC form keeps four digits and ISO strings sort in time order. The OpenAPI states this pattern.
TIMESTAMP_PATTERN = (
    r"^(1[0-9]{3}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
TIMESTAMP_HINT = "must be an RFC 3339 timestamp with a zone, years 1000 to 9998, e.g. 2026-01-31T00:00:00Z"


def choice(name: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    """``value`` if it is one of ``allowed``; empty means no filter."""
    if value is None or value == "":
        return None
    if value not in allowed:
        raise ValidationError(FieldError(name, f"must be one of {', '.join(allowed)}"))
    return str(value)


def moment(name: str, value: Any) -> str | None:
    """A normalised UTC timestamp (``from``/``to`` on the start time); absent (None) means no bound.

    An empty value is refused like any other non-timestamp: a bound the caller meant to set
    but left blank must not silently widen the list."""
    if value is None:
        return None
    problem = moment_problem(value)
    if problem:
        raise ValidationError(FieldError(name, problem))
    return iso(parse_iso(value))


def moment_problem(value: Any) -> str | None:
    """Why ``value`` is not a bound ``moment`` takes (``TIMESTAMP_PATTERN`` and a real date), or None."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return TIMESTAMP_HINT
    try:
        parse_iso(value)
    except (ValueError, OverflowError):  # 2026-02-30, which the pattern lets through
        return TIMESTAMP_HINT
    return None


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
