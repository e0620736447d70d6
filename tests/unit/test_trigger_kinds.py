"""Trigger kinds are plugins: a new kind is one module and its registration, and the
definition, its canonical form and the workflow-change hook all go through the registry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.agents import AGENTS
from chalicelib.domain.definition import Trigger, parse_definition
from chalicelib.domain.fields import JsonObject
from chalicelib.domain.vocabulary import served
from chalicelib.engine.triggers import Triggers
from chalicelib.errors import FieldError, ValidationError
from chalicelib.triggers import TriggerKindPlugin, get_trigger_kind, register, trigger_kind_names, unregister
from chalicelib.triggers.registry import UnknownTriggerKind


class EveryMinutes(TriggerKindPlugin):
    """A made-up kind, as a new module would define it: start every N minutes."""

    name = "every"
    keys = ("type", "minutes")

    def parse(self, obj: JsonObject, raw: Mapping[str, Any], errors: list[FieldError]) -> Trigger | None:
        minutes = obj.integer("minutes", 1, 1440)
        return Trigger(self.name, settings=(("minutes", minutes),)) if obj.ok else None

    def sync(self, services: Any, workflow: Any, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        services.calls.append(("every", before.get("type"), after.get("type")))


@pytest.fixture
def every() -> Iterator[TriggerKindPlugin]:
    plugin = register(EveryMinutes())
    try:
        yield plugin
    finally:
        unregister(plugin.name)


def _definition(trigger: dict[str, Any]) -> dict[str, Any]:
    return {"name": "wf", "trigger": trigger, "steps": [{"id": "a", "agent": "transform", "instructions": "prev"}]}


def test_the_built_in_kinds_are_registered_in_api_order() -> None:
    assert trigger_kind_names() == ["manual", "event", "schedule"]
    assert served()["trigger_kinds"] == ["manual", "event", "schedule"]


def test_a_new_kind_is_parsed_checked_and_served_through_its_plugin(every: TriggerKindPlugin) -> None:
    parsed = parse_definition(_definition({"type": "every", "minutes": 15}), AGENTS)
    assert parsed.trigger.to_dict() == {"type": "every", "minutes": 15}
    assert parse_definition(parsed.to_dict(), AGENTS) == parsed
    with pytest.raises(ValidationError) as refused:
        parse_definition(_definition({"type": "every", "minutes": 0, "cron": "* * * * *"}), AGENTS)
    fields = {e.field for e in refused.value.errors}
    assert fields == {"trigger.minutes", "trigger.cron"}, refused.value.errors
    assert "every" in served()["trigger_kinds"]


def test_an_unknown_kind_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_definition(_definition({"type": "hourly"}), AGENTS)
    assert "manual, event, schedule" in refused.value.errors[0].message
    with pytest.raises(UnknownTriggerKind, match="known kinds: manual, event, schedule"):
        get_trigger_kind("hourly")


def test_a_kind_needs_a_free_name() -> None:
    class Clash(EveryMinutes):
        name = "manual"

    with pytest.raises(ValueError, match="already registered"):
        register(Clash())


@dataclass
class _Store:
    calls: list[tuple[Any, ...]]

    def subscribe(self, source: str, event_type: str, workflow_id: str, version: int) -> None:
        self.calls.append(("subscribe", source, event_type, workflow_id, version))

    def unsubscribe(self, source: str, event_type: str, workflow_id: str) -> None:
        self.calls.append(("unsubscribe", source, event_type, workflow_id))


@dataclass
class _Schedules:
    calls: list[tuple[Any, ...]]

    def sync(self, workflow: Any) -> None:
        self.calls.append(("schedule", workflow.workflow_id))


@dataclass
class _Services:
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store, self.schedules = _Store(self.calls), _Schedules(self.calls)


@dataclass
class _Workflow:
    definition: dict[str, Any]
    workflow_id: str = "wf_1"
    version: int = 2


def test_a_workflow_change_reaches_each_kinds_hook(every: TriggerKindPlugin) -> None:
    services = _Services()
    before = _Workflow({"trigger": {"type": "event", "source": "shop", "event_type": "order"}}, version=1)
    after = _Workflow({"trigger": {"type": "schedule", "cron": "0 9 * * *"}})
    # the hooks get the engine's services duck-typed: these record what they were asked
    Triggers.on_workflow_change(services, after, before)
    assert services.calls == [
        ("unsubscribe", "shop", "order", "wf_1"),
        ("schedule", "wf_1"),
        ("every", "event", "schedule"),
    ]
