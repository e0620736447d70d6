"""Manual inputs: check the values a person (or an AI agent) gives when starting a workflow.

Pure: stdlib only. Types are strict (``True`` is not a number, ``"3"`` is not an integer), so a
form bug shows up as a named field error instead of a surprising value downstream.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import TYPE_CHECKING, Any

from chalicelib.errors import FieldError, ValidationError

if TYPE_CHECKING:
    from chalicelib.domain.definition import Trigger

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def validate_inputs(trigger: Trigger, inputs: Any) -> dict[str, Any]:
    """Check a manual start's ``inputs`` against the trigger's fields; return them with defaults.

    A missing or null value counts as not given: the default applies, else a required field
    is an error. Optional fields with neither value nor default are left out.
    """
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise ValidationError([FieldError("inputs", "must be an object mapping input names to values")])
    specs = {spec.name: spec for spec in trigger.inputs}
    expected = ", ".join(specs) or "none (this workflow takes no inputs)"
    errors = [FieldError(f"inputs.{key}", f"unknown input; expected: {expected}") for key in inputs if key not in specs]
    result: dict[str, Any] = {}
    for spec in trigger.inputs:
        value = inputs.get(spec.name)
        if value is None:
            if spec.default is not None:
                result[spec.name] = spec.default
            elif spec.required:
                errors.append(FieldError(f"inputs.{spec.name}", "is required"))
            continue
        value, problem = _coerce(spec.type, spec.options, value)
        if problem:
            errors.append(FieldError(f"inputs.{spec.name}", problem))
        else:
            result[spec.name] = value
    if errors:
        raise ValidationError(errors)
    return result


def _coerce(kind: str, options: tuple[str, ...] | None, value: Any) -> tuple[Any, str | None]:
    """``(value, None)`` when ``value`` fits the input type (integers normalised), else ``(None, why)``."""
    if kind == "string":
        return (value, None) if isinstance(value, str) else (None, "must be a string")
    if kind == "number":
        return (value, None) if _is_number(value) else (None, "must be a number")
    if kind == "integer":
        return (int(value), None) if _integral(value) else (None, "must be an integer")
    if kind == "boolean":
        return (value, None) if isinstance(value, bool) else (None, "must be true or false")
    if kind == "enum":
        if isinstance(value, str) and value in (options or ()):
            return value, None
        return None, "must be one of: " + ", ".join(options or ())
    if not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):  # kind == "date"
        return None, "must be a date written YYYY-MM-DD"
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        return None, f"'{value}' is not a calendar date"
    return value, None


def _is_number(value: Any) -> bool:
    """JSON numbers only: ``True`` is not 1 here, and NaN/infinity are not numbers."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _integral(value: Any) -> bool:
    """An int, or a float with no fraction (JSON writers may send 3.0 for 3)."""
    return _is_number(value) and (isinstance(value, int) or value.is_integer())
