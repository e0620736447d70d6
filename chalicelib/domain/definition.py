"""Workflow definitions: parse and validate the JSON of ``POST /workflows``, and manual inputs.

``parse_definition`` turns a request body into frozen dataclasses or raises one
``ValidationError`` naming *every* bad field by its path in the body ("trigger.inputs[1].default",
"steps[0].retry.max_attempts"), so an author fixes a definition in one round trip. It is strict:
unknown keys are errors, so a typo such as ``"timeout"`` for ``"timeout_seconds"`` is caught
instead of silently ignored. ``to_dict`` is the canonical form that is stored and served;
``parse_definition(d.to_dict(), agents) == d``.

Explicit JSON ``null`` on an optional field means "absent" (forms often send it).

Pure: stdlib, jmespath, croniter (through ``cron``) and zoneinfo only; no clock, no AWS.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.fields import JsonObject as _Object
from chalicelib.domain.fields import json_size as _json_size
from chalicelib.domain.fields import reject_duplicates as _reject_duplicates
from chalicelib.domain.fields import without_none as _without_none
from chalicelib.domain.inputs import _coerce, _is_number, validate_inputs
from chalicelib.domain.limits import (
    GATE_TYPES,
    INPUT_TYPES,
    MAX_ATTEMPTS,
    MAX_BACKOFF_SECONDS,
    MAX_CONFIG_BYTES,
    MAX_DEFINITION_BYTES,
    MAX_DESCRIPTION,
    MAX_GATE_TIMEOUT_SECONDS,
    MAX_INPUTS,
    MAX_INSTRUCTIONS,
    MAX_NAME,
    MAX_STEPS,
    MAX_TIMEOUT_SECONDS,
    ON_TIMEOUT,
)
from chalicelib.domain.notify import NotifyTarget, parse_notify
from chalicelib.domain.vocabulary import TriggerKind
from chalicelib.errors import FieldError, PayloadTooLarge, ValidationError

__all__ = [
    "GATE_TYPES",
    "INPUT_TYPES",
    "MAX_ATTEMPTS",
    "MAX_BACKOFF_SECONDS",
    "MAX_CONFIG_BYTES",
    "MAX_DEFINITION_BYTES",
    "MAX_DESCRIPTION",
    "MAX_GATE_TIMEOUT_SECONDS",
    "MAX_INPUTS",
    "MAX_INSTRUCTIONS",
    "MAX_NAME",
    "MAX_STEPS",
    "MAX_TIMEOUT_SECONDS",
    "ON_TIMEOUT",
    "TRIGGER_TYPES",
    "DefinitionTooLarge",
    "Gate",
    "InputField",
    "RetryPolicy",
    "StepDef",
    "Trigger",
    "WorkflowDefinition",
    "parse_definition",
    "parse_input_fields",
    "validate_inputs",
]

#: The trigger kinds' values, in the order the API lists them (``TriggerKind`` is the word).
TRIGGER_TYPES = tuple(kind.value for kind in TriggerKind)

_INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_STEP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

_TOP_KEYS = ("name", "description", "enabled", "trigger", "steps", "notify")
_INPUT_KEYS = ("name", "type", "required", "default", "options", "description", "label")
_STEP_KEYS = ("id", "name", "agent", "instructions", "config", "timeout_seconds", "retry", "gate")
_RETRY_KEYS = ("max_attempts", "backoff_seconds")
_GATE_KEYS = ("type", "approvers", "timeout_seconds", "on_timeout", "separate_from_starter")


@dataclass(frozen=True)
class InputField:
    """One manual-trigger input, as the start form shows it."""

    name: str
    type: str
    required: bool = False
    default: Any = None
    options: tuple[str, ...] | None = None
    description: str | None = None
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        options = None if self.options is None else list(self.options)
        return _without_none(
            {
                "name": self.name,
                "type": self.type,
                "required": self.required,
                "options": options,
                "default": self.default,
                "description": self.description,
                "label": self.label,
            }
        )


@dataclass(frozen=True)
class Trigger:
    """How executions start: ``manual`` (with inputs), ``event`` (a webhook source), ``schedule``,
    or another registered kind (``chalicelib/triggers/``), which keeps its own keys in ``settings``."""

    type: str
    inputs: tuple[InputField, ...] = ()
    source: str | None = None
    event_type: str | None = None
    filter: str | None = None
    cron: str | None = None
    timezone: str | None = None
    #: A kind's keys that have no field above, as (key, value) pairs (frozen, so hashable).
    settings: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The canonical form, as the kind's plugin writes it."""
        from chalicelib.triggers import get_trigger_kind  # the plugins import this module

        return get_trigger_kind(self.type).to_dict(self)


@dataclass(frozen=True)
class Gate:
    """A human decision after the step ran. Empty ``approvers`` means any operator.

    With ``timeout_seconds``, the sweep decides ``on_timeout`` (``fail``, ``approve`` or
    ``reject``) for the system when nobody decided in time.
    """

    type: str
    approvers: tuple[str, ...] = ()
    timeout_seconds: int | None = None
    on_timeout: str | None = None
    #: Separation of duties: the key that started the execution may not decide this gate.
    separate_from_starter: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _without_none(
            {
                "type": self.type,
                "approvers": list(self.approvers),
                "timeout_seconds": self.timeout_seconds,
                "on_timeout": self.on_timeout,
                "separate_from_starter": True if self.separate_from_starter else None,
            }
        )


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts every attempt, the first included (1 = never retry)."""

    max_attempts: int
    backoff_seconds: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"max_attempts": self.max_attempts, "backoff_seconds": self.backoff_seconds}


@dataclass(frozen=True)
class StepDef:
    id: str
    name: str
    agent: str
    instructions: str | None = None
    # A dict (JSON-shaped agent settings); left out of the hash so the dataclass stays hashable.
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)
    timeout_seconds: int = 300
    retry: RetryPolicy | None = None
    gate: Gate | None = None

    def to_dict(self) -> dict[str, Any]:
        return _without_none(
            {
                "id": self.id,
                "name": self.name,
                "agent": self.agent,
                "instructions": self.instructions,
                "config": copy.deepcopy(dict(self.config)) or None,
                "timeout_seconds": self.timeout_seconds,
                "retry": self.retry.to_dict() if self.retry else None,
                "gate": self.gate.to_dict() if self.gate else None,
            }
        )


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    description: str
    enabled: bool
    trigger: Trigger
    steps: tuple[StepDef, ...]
    notify: tuple[NotifyTarget, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON-able form (what is stored and served)."""
        body = {
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "trigger": self.trigger.to_dict(),
            "steps": [step.to_dict() for step in self.steps],
        }
        if self.notify:
            body["notify"] = [target.to_dict() for target in self.notify]
        return body

    def step(self, step_id: str) -> StepDef:
        """The step with this id; ``KeyError`` if there is none."""
        return self.steps[self.index_of(step_id)]

    def index_of(self, step_id: str) -> int:
        """Position of the step with this id; ``KeyError`` if there is none."""
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        raise KeyError(step_id)


# --- parsing ------------------------------------------------------------------------------


class DefinitionTooLarge(PayloadTooLarge):
    """A definition over ``MAX_DEFINITION_BYTES`` (413): it would not fit its DynamoDB item."""

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": [FieldError("body", self.message).to_dict()]}


def parse_definition(body: Any, agents: Mapping[str, Any]) -> WorkflowDefinition:
    """Validate a definition body and build it; raise ``ValidationError`` listing every problem.

    ``agents`` maps agent names to objects with ``validate(step_dict, path) -> list[FieldError]``;
    each step's agent adds its own checks (e.g. ``transform`` compiles its instructions).
    """
    errors: list[FieldError] = []
    top = _Object.read(body, "", errors, _TOP_KEYS, "must be a JSON object (the workflow definition)")
    if top is None:
        raise ValidationError(errors)
    size = _json_size(body)
    if size > MAX_DEFINITION_BYTES:
        raise DefinitionTooLarge(f"the definition is {size} bytes of JSON; the limit is {MAX_DEFINITION_BYTES}")
    name = top.text("name", required=True, max_len=MAX_NAME)
    description = top.text("description", max_len=MAX_DESCRIPTION, blank_ok=True)
    enabled = top.boolean("enabled")
    trigger = _parse_trigger(body.get("trigger"), errors)
    steps = _parse_steps(body.get("steps"), agents, errors)
    notify = parse_notify(body.get("notify"), errors)
    if errors:
        raise ValidationError(errors)
    assert name is not None and trigger is not None and steps is not None
    return WorkflowDefinition(name, description or "", enabled is not False, trigger, steps, notify)


def _parse_trigger(raw: Any, errors: list[FieldError]) -> Trigger | None:
    """The trigger, read by its kind's plugin (``chalicelib/triggers/``)."""
    from chalicelib.triggers import get_trigger_kind, trigger_kind_names  # the plugins import this module

    if raw is None:
        errors.append(FieldError("trigger", 'is required, e.g. {"type": "manual", "inputs": []}'))
        return None
    obj = _Object.read(raw, "trigger", errors, (), "must be an object", check_keys=False)
    kind = obj.choice("type", tuple(trigger_kind_names())) if obj else None
    if obj is None or kind is None:
        return None
    plugin = get_trigger_kind(kind)
    obj.reject_unknown(plugin.keys, where=f" for a {kind} trigger")
    return plugin.parse(obj, raw, errors)


def parse_input_fields(raw: Any, errors: list[FieldError]) -> tuple[InputField, ...]:
    if raw is not None and not isinstance(raw, list):
        errors.append(FieldError("trigger.inputs", "must be a list of input fields"))
    if not isinstance(raw, list):
        return ()
    if len(raw) > MAX_INPUTS:
        errors.append(FieldError("trigger.inputs", f"must have at most {MAX_INPUTS} fields"))
    specs = [_parse_input_field(item, f"trigger.inputs[{i}]", errors) for i, item in enumerate(raw)]
    _reject_duplicates(raw, "name", "trigger.inputs", "input name", errors)
    return tuple(spec for spec in specs if spec is not None)


def _parse_input_field(raw: Any, path: str, errors: list[FieldError]) -> InputField | None:
    obj = _Object.read(raw, path, errors, _INPUT_KEYS, "must be an object with name and type")
    if obj is None:
        return None
    name = obj.text("name", required=True)
    if name is not None and not _INPUT_NAME.fullmatch(name):
        obj.fail("name", "must be 1-64 letters, digits or '_', not starting with a digit")
    kind = obj.choice("type", INPUT_TYPES)
    required = obj.boolean("required")
    options = None
    if kind == "enum":
        options = obj.strings("options", "an enum input needs a non-empty list of string options", non_empty=True)
        if options is not None and len(set(options)) != len(options):
            obj.fail("options", "options must be unique")
    elif kind is not None and raw.get("options") is not None:
        obj.fail("options", "only enum inputs take options")
    description = obj.text("description", max_len=MAX_DESCRIPTION, blank_ok=True)
    label = obj.text("label", max_len=MAX_NAME, blank_ok=True)
    default = raw.get("default")
    if default is not None and kind is not None and (kind != "enum" or options is not None):
        default, problem = _coerce(kind, options, default)
        if problem:
            obj.fail("default", problem)
    if not obj.ok:
        return None
    assert name is not None and kind is not None
    return InputField(name, kind, required is True, default, options, description, label)


def _parse_steps(raw: Any, agents: Mapping[str, Any], errors: list[FieldError]) -> tuple[StepDef, ...] | None:
    if not isinstance(raw, list) or not raw:
        errors.append(
            FieldError("steps", ("is required" if raw is None else "must be") + ": a non-empty list of steps")
        )
        return None
    if len(raw) > MAX_STEPS:
        errors.append(FieldError("steps", f"must have at most {MAX_STEPS} steps"))
    steps = [_parse_step(item, f"steps[{i}]", agents, errors) for i, item in enumerate(raw)]
    _reject_duplicates(raw, "id", "steps", "step id", errors)
    return tuple(step for step in steps if step is not None)


def _parse_step(raw: Any, path: str, agents: Mapping[str, Any], errors: list[FieldError]) -> StepDef | None:
    obj = _Object.read(raw, path, errors, _STEP_KEYS, "must be an object with id and agent")
    if obj is None:
        return None
    step_id = obj.text("id", required=True)
    if step_id is not None and not _STEP_ID.fullmatch(step_id):
        obj.fail("id", "must be 1-64 letters, digits, '_' or '-'")
    name = obj.text("name", max_len=MAX_NAME)
    agent = obj.text("agent", required=True)
    if agent is not None and agent not in agents:
        obj.fail("agent", f"unknown agent '{agent}'; known agents: {', '.join(sorted(agents)) or 'none'}")
    before = len(errors)
    instructions = obj.text("instructions", blank_ok=True, max_len=MAX_INSTRUCTIONS)
    config = raw.get("config")
    if config is not None and not isinstance(config, dict):
        obj.fail("config", "must be an object")
    elif config is not None and (size := _json_size(config)) > MAX_CONFIG_BYTES:
        obj.fail("config", f"is {size} bytes of JSON; the limit is {MAX_CONFIG_BYTES}")
    shapes_ok = len(errors) == before
    timeout = obj.integer("timeout_seconds", 1, MAX_TIMEOUT_SECONDS)
    retry = _parse_retry(raw.get("retry"), f"{path}.retry", errors)
    gate = _parse_gate(raw.get("gate"), f"{path}.gate", errors)
    # The agent checks its own needs, on a well-shaped step only: it would otherwise report
    # bad instructions or config a second time, or trip over them.
    if agent is not None and agent in agents and shapes_ok:
        errors.extend(agents[agent].validate(raw, path))
    if not obj.ok:
        return None
    assert step_id is not None and agent is not None
    return StepDef(
        step_id,
        step_id if name is None else name,
        agent,
        instructions,
        copy.deepcopy(config or {}),
        300 if timeout is None else timeout,
        retry,
        gate,
    )


def _parse_retry(raw: Any, path: str, errors: list[FieldError]) -> RetryPolicy | None:
    if raw is None:
        return None
    obj = _Object.read(
        raw, path, errors, _RETRY_KEYS, 'must be an object, e.g. {"max_attempts": 3, "backoff_seconds": 5}'
    )
    if obj is None:
        return None
    if raw.get("max_attempts") is None:
        obj.fail("max_attempts", "is required (total attempts, the first included)")
    attempts = obj.integer("max_attempts", 1, MAX_ATTEMPTS)
    backoff = raw.get("backoff_seconds")
    if backoff is not None and not (_is_number(backoff) and 0 <= backoff <= MAX_BACKOFF_SECONDS):
        obj.fail("backoff_seconds", f"must be a number from 0 to {MAX_BACKOFF_SECONDS:g}")
    if not obj.ok or attempts is None:
        return None
    return RetryPolicy(attempts, 1.0 if backoff is None else float(backoff))


def _parse_gate(raw: Any, path: str, errors: list[FieldError]) -> Gate | None:
    if raw is None:
        return None
    obj = _Object.read(raw, path, errors, _GATE_KEYS, 'must be an object, e.g. {"type": "approval"}')
    if obj is None:
        return None
    kind = obj.choice("type", GATE_TYPES)
    approvers = obj.strings("approvers", "must be a list of key names or roles")
    timeout = obj.integer("timeout_seconds", 1, MAX_GATE_TIMEOUT_SECONDS)
    on_timeout = raw.get("on_timeout")
    if on_timeout is not None:
        on_timeout = obj.choice("on_timeout", ON_TIMEOUT)
        if raw.get("timeout_seconds") is None:
            obj.fail("on_timeout", "needs timeout_seconds (how long the gate waits for a decision)")
    elif timeout is not None:
        on_timeout = "fail"
    separate = obj.boolean("separate_from_starter")
    return Gate(kind, approvers or (), timeout, on_timeout, bool(separate)) if obj.ok and kind else None
