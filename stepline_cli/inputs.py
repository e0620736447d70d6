"""A manual start's inputs: ``-i name=value`` coerced by the workflow's declared types, and a
prompt for each declared field that was not given."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click


class DateType(click.ParamType):
    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            self.fail(f"{value!r} is not a date written YYYY-MM-DD", param, ctx)


def click_type(spec: dict[str, Any]) -> click.ParamType:
    """The click type that reads one declared input."""
    kind = spec.get("type")
    if kind == "enum":
        return click.Choice([str(o) for o in spec.get("options") or []])
    types: dict[str, click.ParamType] = {
        "number": click.FLOAT,
        "integer": click.INT,
        "boolean": click.BOOL,
        "date": DateType(),
    }
    return types.get(str(kind), click.STRING)


def parse_assignments(pairs: tuple[str, ...], specs: list[dict[str, Any]]) -> dict[str, Any]:
    """``("amount=12.5", "vip=yes")`` -> ``{"amount": 12.5, "vip": True}`` by the declared types.

    Undeclared names are passed on as strings (the API answers which names it expects).
    """
    by_name = {spec["name"]: spec for spec in specs}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="'--input'")
        spec = by_name.get(name)
        try:
            values[name] = _number(click_type(spec).convert(raw, None, None), spec) if spec else raw
        except click.BadParameter as error:
            raise click.BadParameter(error.message, param_hint=f"'--input {name}'") from error
    return values


def _number(value: Any, spec: dict[str, Any]) -> Any:
    """JSON numbers as the user wrote them: ``12`` stays an integer for a ``number`` field."""
    if spec.get("type") == "number" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def prompt_missing(specs: list[dict[str, Any]], given: dict[str, Any]) -> dict[str, Any]:
    """Ask for every declared input not in ``given``; a blank optional answer leaves it out."""
    values = dict(given)
    for spec in specs:
        name = spec["name"]
        if name in values:
            continue
        label = spec.get("label") or name
        if spec.get("description"):
            label += f" ({spec['description']})"
        kind = click_type(spec)
        default = spec.get("default")
        if default is None and not spec.get("required"):
            while True:  # as click.prompt re-asks on a bad value, but a blank answer means "leave out"
                answer = click.prompt(f"{label} [optional]", default="", show_default=False)
                if answer == "":
                    break
                try:
                    values[name] = _number(kind.convert(answer, None, None), spec)
                    break
                except click.BadParameter as error:
                    click.echo(f"Error: {error.message}", err=True)
        else:
            values[name] = _number(
                click.prompt(label, type=kind, default=default, show_default=default is not None), spec
            )
    return values


def parse_json_object(text: str | None, option: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise click.BadParameter(f"not valid JSON: {error}", param_hint=option) from error
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return value
