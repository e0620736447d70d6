"""Reading a JSON object field by field, collecting every problem instead of stopping at the first.

``definition.py`` reads a workflow definition with it, so that one ``ValidationError`` names
every bad field by its path ("steps[0].retry.max_attempts"); other validators of request
bodies may do the same. Pure: stdlib and jmespath only.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from chalicelib.domain.expressions import compile_bounded
from chalicelib.domain.inputs import _integral
from chalicelib.errors import FieldError

__all__ = ["JsonObject", "jmespath_problem", "json_size", "reject_duplicates", "without_none"]


class JsonObject:
    """Reads one JSON object found at ``path``, recording each problem in the shared ``errors``."""

    def __init__(self, raw: dict[str, Any], path: str, errors: list[FieldError]) -> None:
        self.raw, self.path, self.errors, self._start = raw, path, errors, len(errors)

    @classmethod
    def read(
        cls,
        raw: Any,
        path: str,
        errors: list[FieldError],
        allowed: tuple[str, ...],
        not_object: str,
        check_keys: bool = True,
    ) -> JsonObject | None:
        """The reader, or None (error recorded) when ``raw`` is not an object."""
        if not isinstance(raw, dict):
            errors.append(FieldError(path or "body", not_object))
            return None
        obj = cls(raw, path, errors)
        if check_keys:
            obj.reject_unknown(allowed)
        return obj

    def reject_unknown(self, allowed: tuple[str, ...], where: str = "") -> None:
        """Strict keys: a typo such as "timeout" must not be silently ignored."""
        for key in self.raw:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "expected one of: " + ", ".join(allowed)
                self.fail(key, f"unknown field{where}; {hint}")

    @property
    def ok(self) -> bool:
        """True when nothing was wrong in this object (or anything parsed below it since)."""
        return len(self.errors) == self._start

    def fail(self, key: str, message: str) -> None:
        """Record that ``key`` (relative to this object) is wrong."""
        self.errors.append(FieldError(f"{self.path}.{key}" if self.path else key, message))

    def text(
        self, key: str, *, required: bool = False, max_len: int | None = None, blank_ok: bool = False
    ) -> str | None:
        value = self.raw.get(key)
        if value is None:
            problem = "is required" if required else None
        elif not isinstance(value, str):
            problem = "must be a string"
        elif not blank_ok and not value.strip():
            problem = "must not be empty"
        elif max_len is not None and len(value) > max_len:
            problem = f"must be at most {max_len} characters"
        else:
            return value
        if problem:
            self.fail(key, problem)
        return None

    def boolean(self, key: str) -> bool | None:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, bool):
            self.fail(key, "must be true or false")
            return None
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.raw.get(key)
        if isinstance(value, str) and value in choices:
            return value
        self.fail(key, "must be one of: " + ", ".join(choices))
        return None

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not _integral(value) or not low <= value <= high:
            self.fail(key, f"must be an integer from {low} to {high}")
            return None
        return int(value)

    def strings(self, key: str, not_list: str, *, non_empty: bool = False) -> tuple[str, ...] | None:
        """A list of non-blank strings; an absent key is None unless ``non_empty`` makes it an error."""
        value = self.raw.get(key)
        if value is None and not non_empty:
            return None
        if not isinstance(value, list) or (non_empty and not value):
            self.fail(key, not_list)
            return None
        bad = [i for i, item in enumerate(value) if not isinstance(item, str) or not item.strip()]
        for i in bad:
            self.fail(f"{key}[{i}]", "must be a non-empty string")
        return None if bad else tuple(value)


def reject_duplicates(items: list[Any], key: str, path: str, what: str, errors: list[FieldError]) -> None:
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        value = item.get(key) if isinstance(item, dict) else None
        if isinstance(value, str) and first.setdefault(value, index) != index:
            errors.append(
                FieldError(f"{path}[{index}].{key}", f"duplicate {what} '{value}' (also {path}[{first[value]}])")
            )


def without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def jmespath_problem(expression: Any) -> str | None:
    if not isinstance(expression, str) or not expression.strip():
        return "must be a non-empty JMESPath expression"
    try:
        compile_bounded(expression)
    except ValueError as exc:
        return f"is not a usable JMESPath expression: {exc}"
    return None


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (how it is stored)."""
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        return 0  # not JSON-shaped: the field checks report it
