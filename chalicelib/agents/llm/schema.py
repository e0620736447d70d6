"""A small JSON Schema checker for ``output_schema`` (the subset models are asked to follow).

The Lambda package stays lean (``jsonschema`` brings four packages, one compiled), and the
structured-output features of the providers accept this subset anyway: ``type``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``enum``, ``const``,
``minimum``/``maximum``, ``minLength``/``maxLength``, ``minItems``/``maxItems``, ``pattern``,
``anyOf``. Descriptive keywords (``description``, ``title``, ``default``, ``examples``,
``format``) are allowed and not checked. ``schema_problem`` refuses other keywords when a
definition is saved, so a schema never silently means less than it says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["schema_problem", "validate"]

_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
_CHECKED = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "anyOf",
}
_DESCRIPTIVE = {"description", "title", "default", "examples", "format", "$schema"}


def schema_problem(schema: Any, path: str = "") -> str | None:
    """Why ``schema`` is not a usable schema of this subset, or None."""
    if not isinstance(schema, Mapping):
        return f"{path or 'schema'} must be an object"
    unknown = sorted(set(schema) - _CHECKED - _DESCRIPTIVE)
    if unknown:
        return f"{path or 'schema'}: unsupported keyword(s) {', '.join(unknown)}"
    kinds = schema.get("type")
    for kind in kinds if isinstance(kinds, list) else [kinds] if kinds is not None else []:
        if kind not in _TYPES:
            return f"{path or 'schema'}.type: unknown type {kind!r}"
    props = schema.get("properties", {})
    if not isinstance(props, Mapping):
        return f"{path}.properties must be an object"
    for name, sub in props.items():
        problem = schema_problem(sub, f"{path}.properties.{name}")
        if problem:
            return problem
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return f"{path}.required must be a list of property names"
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, Mapping):
            problem = schema_problem(sub, f"{path}.{key}")
            if problem:
                return problem
    if "pattern" in schema:
        try:
            re.compile(str(schema["pattern"]))
        except re.error as error:
            return f"{path}.pattern: {error}"
    for index, sub in enumerate(schema.get("anyOf", []) or []):
        problem = schema_problem(sub, f"{path}.anyOf[{index}]")
        if problem:
            return problem
    return None


def validate(value: Any, schema: Mapping[str, Any], path: str = "output") -> list[str]:
    """Every way ``value`` misses ``schema``, as ``"<path>: <problem>"`` strings (empty: it matches)."""
    problems: list[str] = []
    if "anyOf" in schema and not any(not validate(value, sub, path) for sub in schema["anyOf"]):
        problems.append(f"{path}: matches none of the allowed shapes")
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, kind) for kind in allowed):
            return [*problems, f"{path}: expected {' or '.join(allowed)}, got {_name(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: must be one of {', '.join(map(repr, schema['enum']))}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must be {schema['const']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{path}: must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{path}: must be at most {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{path}: must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path}: must have at most {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(str(schema["pattern"]), value):
            problems.append(f"{path}: must match {schema['pattern']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{path}: must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{path}: must have at most {schema['maxItems']} items")
        if isinstance(schema.get("items"), Mapping):
            for index, item in enumerate(value):
                problems += validate(item, schema["items"], f"{path}[{index}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{path}.{name}: required")
        for name, item in value.items():
            if name in props:
                problems += validate(item, props[name], f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}.{name}: not allowed")
            elif isinstance(schema.get("additionalProperties"), Mapping):
                problems += validate(item, schema["additionalProperties"], f"{path}.{name}")
    return problems


def _is(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return kind == "number" or float(value).is_integer()


def _name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )
