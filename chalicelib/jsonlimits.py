"""Bounds on the JSON that enters Stepline, at every entry point (REST, webhooks, EventBridge,
MCP, agent answers): size, nesting depth, and numbers JSON can carry.

Why each bound:

- **Depth** (``MAX_DEPTH`` = 32, DynamoDB's own limit for nested attributes): Python's JSON
  decoder, ``json.dumps``, JMESPath and every recursive walk over a value recurse once per
  level, so a body nested 10,000 deep raised ``RecursionError`` (a 500) in whichever of them
  met it first. Checked once at the entry, everything after it may recurse safely.
- **NaN and Infinity**: Python's ``json`` reads and writes them, but they are not JSON; once
  stored they are served as invalid JSON and every client (the UI first) fails to parse the
  execution. Refused where JSON enters, and ``ensure_json_value`` catches values produced
  inside (a ``python`` callable returning ``float('nan')``).
- **Size**: callers pass the byte limit that fits their item (request bodies 1 MB).

``parse_json`` is the one function an entry point calls on a raw body; ``check_json_value``
bounds a value that was already decoded by someone else (Lambda's EventBridge event, an
MCP library's JSON-RPC message). Both raise ``ValidationError`` (400) or ``PayloadTooLarge``
(413) naming the field, so the boundary maps them like any other bad input.
"""

from __future__ import annotations

import json
import math
from typing import Any

from chalicelib.errors import FieldError, PayloadTooLarge, ValidationError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "check_json_value",
    "json_value_problem",
    "parse_json",
    "parse_json_object",
]

MAX_BODY_BYTES = 1_000_000
MAX_DEPTH = 32


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def parse_json(
    raw: bytes | str, *, field: str = "body", max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Decode ``raw`` as strict JSON within the size and depth bounds, or raise a 400/413.

    Strict: ``NaN``, ``Infinity`` and ``-Infinity`` are refused, and so are numbers too
    large for a float (``1e999``, which Python reads as infinity).
    """
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise PayloadTooLarge(f"{field} is {size} bytes; the limit is {max_bytes} bytes")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValidationError(FieldError(field, f"JSON nested deeper than {max_depth} levels")) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationError(FieldError(field, f"not valid JSON: {error}")) from None
    check_json_value(value, field=field, max_depth=max_depth)
    return value


def parse_json_object(
    raw: bytes | str, *, field: str = "body", max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """``parse_json`` that also requires a JSON object at the top."""
    value = parse_json(raw, field=field, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(value, dict):
        raise ValidationError(FieldError(field, "must be a JSON object"))
    return value


def check_json_value(value: Any, *, field: str = "body", max_depth: int = MAX_DEPTH) -> None:
    """Raise a 400 naming the place if ``value`` is nested too deep or holds a non-JSON value."""
    problem = json_value_problem(value, max_depth=max_depth)
    if problem is not None:
        where, why = problem
        raise ValidationError(FieldError(field + where, why))


def json_value_problem(value: Any, *, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """``(path suffix, why)`` for the first place ``value`` is not bounded JSON, else None.

    Iterative (an explicit stack), so it is safe on values of any depth.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                return path, f"JSON nested deeper than {max_depth} levels"
            for key, child in item.items():
                if not isinstance(key, str):
                    return path, "object keys must be strings"
                stack.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(item, (list, tuple)):
            if depth > max_depth:
                return path, f"JSON nested deeper than {max_depth} levels"
            for index, child in enumerate(item):
                stack.append((child, f"{path}[{index}]", depth + 1))
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, "numbers must be finite (NaN and Infinity are not JSON)"
        elif item is None or isinstance(item, (str, int, bool)):
            continue
        else:
            # Decimals come back from DynamoDB and are finite unless someone stored NaN.
            try:
                if not math.isfinite(float(item)):
                    return path, "numbers must be finite (NaN and Infinity are not JSON)"
            except (TypeError, ValueError):
                return path, f"{type(item).__name__} is not a JSON value"
    return None
