"""Check a request body against an official SDK's request ``TypedDict`` (openai, anthropic).

The SDKs describe every request as nested ``TypedDict``s; pydantic's ``TypeAdapter`` accepts
unknown keys and validates iterables lazily, so this walks the types itself: unknown keys,
missing required keys, wrong literals and wrong scalar types are all reported.
"""

from __future__ import annotations

import collections.abc
import typing
from typing import Any

try:  # Python 3.12+
    from typing import TypeAliasType  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    TypeAliasType = ()  # type: ignore[assignment,misc]

import typing_extensions


def problems(value: Any, tp: Any, path: str = "body") -> list[str]:
    """Every way ``value`` does not fit ``tp`` (empty: it fits)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if TypeAliasType and isinstance(tp, TypeAliasType):
        return problems(value, tp.__value__, path)
    if isinstance(tp, typing_extensions.TypeAliasType if hasattr(typing_extensions, "TypeAliasType") else ()):
        return problems(value, tp.__value__, path)
    if origin in (typing.Annotated, typing_extensions.Annotated) or origin in (
        typing_extensions.Required,
        typing_extensions.NotRequired,
        typing_extensions.ReadOnly,
    ):
        return problems(value, args[0], path)
    if tp is Any or tp is object:
        return []
    if tp is None or tp is type(None):
        return [] if value is None else [f"{path}: expected null"]
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        found = [problems(value, a, path) for a in args]
        if any(not p for p in found):
            return []
        return min(found, key=len) if found else [f"{path}: no type matched"]
    if origin in (typing.Literal, typing_extensions.Literal):
        return [] if value in args else [f"{path}: {value!r} not one of {args}"]
    if typing_extensions.is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{path}: expected an object for {tp.__name__}"]
        hints = typing_extensions.get_type_hints(tp, include_extras=True)
        found = [f"{path}.{k}: not a field of {tp.__name__}" for k in value if k not in hints]
        required = set(tp.__required_keys__) | {
            k for k, h in hints.items() if typing.get_origin(h) is typing_extensions.Required
        }
        found += [f"{path}.{k}: required by {tp.__name__}" for k in sorted(required) if k not in value]
        for key, item in value.items():
            if key in hints:
                found += problems(item, hints[key], f"{path}.{key}")
        return found
    if origin in (dict, collections.abc.Mapping, dict):
        return [] if isinstance(value, dict) else [f"{path}: expected an object"]
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence, list) or (
        origin is not None and getattr(origin, "__name__", "") in ("SequenceNotStr", "Iterable", "Sequence")
    ):
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for i, item in enumerate(value) for p in problems(item, args[0] if args else Any, f"{path}[{i}]")]
    if getattr(tp, "__name__", "") == "SequenceNotStr":
        return [] if isinstance(value, list) else [f"{path}: expected a list"]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    if tp is float:
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{path}: expected a number"]
    if tp is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: expected an integer"]
    if tp is str:
        return [] if isinstance(value, str) else [f"{path}: expected a string"]
    if isinstance(tp, type):
        return [] if isinstance(value, tp) else [f"{path}: expected {tp.__name__}"]
    return []  # a form this checker does not know: accept rather than guess


def assert_fits(value: Any, tp: Any) -> None:
    found = problems(value, tp)
    assert not found, "request does not fit the SDK's type:\n" + "\n".join(found[:20])
