"""``manual``: started by a person or a program (Run button, API, CLI, /tools, MCP), with the
inputs the definition declares (``trigger.inputs``, checked by ``domain/inputs.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.definition import Trigger, parse_input_fields
from chalicelib.domain.fields import JsonObject
from chalicelib.domain.vocabulary import TriggerKind
from chalicelib.errors import FieldError
from chalicelib.triggers.base import TriggerKindPlugin


class ManualTrigger(TriggerKindPlugin):
    name = TriggerKind.MANUAL.value
    keys = ("type", "inputs")
    docs = {"inputs": "manual: the start form's fields"}

    def parse(self, obj: JsonObject, raw: Mapping[str, Any], errors: list[FieldError]) -> Trigger | None:
        inputs = parse_input_fields(raw.get("inputs"), errors)
        return Trigger(self.name, inputs=inputs) if obj.ok else None

    def to_dict(self, trigger: Trigger) -> dict[str, Any]:
        return {"type": self.name, "inputs": [spec.to_dict() for spec in trigger.inputs]}
