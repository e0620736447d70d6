"""Workflow definitions and manual inputs: every validation rule, by the field it names."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jmespath.exceptions import JMESPathError

from chalicelib.domain.definition import (
    Gate,
    InputField,
    RetryPolicy,
    StepDef,
    Trigger,
    WorkflowDefinition,
    parse_definition,
    validate_inputs,
)
from chalicelib.errors import FieldError, ValidationError

# --- fakes and helpers ---------------------------------------------------------------------


class FakeTransform:
    """Like the real transform agent: instructions are a required JMESPath expression."""

    def validate(self, step: Mapping[str, Any], path: str) -> list[FieldError]:
        instructions = step.get("instructions")
        if not instructions:
            return [FieldError(f"{path}.instructions", "required for transform")]
        try:
            jmespath.compile(instructions)
        except JMESPathError as exc:
            return [FieldError(f"{path}.instructions", str(exc))]
        return []


class FakeHttp:
    def validate(self, step: Mapping[str, Any], path: str) -> list[FieldError]:
        if not (step.get("config") or {}).get("url"):
            return [FieldError(f"{path}.config.url", "required for http")]
        return []


class RecordingAgent:
    def __init__(self) -> None:
        self.calls: list[tuple[dict, str]] = []

    def validate(self, step: Mapping[str, Any], path: str) -> list[FieldError]:
        self.calls.append((dict(step), path))
        return []


AGENTS = {"transform": FakeTransform(), "http": FakeHttp()}

API_EXAMPLE: dict[str, Any] = {
    "name": "Invoice approval",
    "description": "Drafts a credit note, posts it to billing, waits for a manager",
    "enabled": True,
    "trigger": {
        "type": "manual",
        "inputs": [
            {"name": "amount", "type": "number", "required": True},
            {"name": "customer", "type": "string", "required": False, "default": "ACME"},
        ],
    },
    "steps": [
        {
            "id": "draft",
            "name": "Draft the note",
            "agent": "transform",
            "instructions": "{customer: input.customer, total: input.amount}",
            "timeout_seconds": 300,
            "retry": {"max_attempts": 3, "backoff_seconds": 5},
        },
        {
            "id": "post",
            "name": "Post to billing",
            "agent": "http",
            "config": {"url": "https://billing.example/notes", "method": "POST"},
        },
        {
            "id": "approve",
            "name": "Manager approval",
            "agent": "transform",
            "instructions": "prev",
            "gate": {"type": "approval", "approvers": ["manager-key-name"]},
        },
    ],
}


def minimal(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "wf",
        "trigger": {"type": "manual"},
        "steps": [{"id": "only", "agent": "transform", "instructions": "input"}],
    }
    body.update(overrides)
    return body


def with_step(**fields: Any) -> dict[str, Any]:
    return minimal(steps=[{"id": "s", "agent": "transform", "instructions": "input", **fields}])


def with_trigger(**trigger: Any) -> dict[str, Any]:
    return minimal(trigger=trigger)


def with_inputs(*inputs: dict[str, Any]) -> dict[str, Any]:
    return with_trigger(type="manual", inputs=list(inputs))


def errors_of(body: Any, agents: Mapping[str, Any] = AGENTS) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_definition(body, agents)
    return {e.field: e.message for e in caught.value.errors}


def input_errors(trigger: Trigger, inputs: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate_inputs(trigger, inputs)
    return {e.field: e.message for e in caught.value.errors}


def manual(*fields: InputField) -> Trigger:
    return Trigger("manual", inputs=fields)


# --- the API example and the canonical form ---------------------------------------------------


def test_parses_the_api_example() -> None:
    d = parse_definition(copy.deepcopy(API_EXAMPLE), AGENTS)
    assert d.name == "Invoice approval"
    assert d.enabled is True
    assert d.trigger == Trigger(
        "manual",
        inputs=(
            InputField("amount", "number", required=True),
            InputField("customer", "string", required=False, default="ACME"),
        ),
    )
    assert [s.id for s in d.steps] == ["draft", "post", "approve"]
    assert d.steps[0].retry == RetryPolicy(3, 5.0)
    assert d.steps[1].config == {"url": "https://billing.example/notes", "method": "POST"}
    assert d.steps[1].timeout_seconds == 300
    assert d.steps[2].gate == Gate("approval", ("manager-key-name",))


def test_to_dict_round_trips_the_api_example() -> None:
    d = parse_definition(copy.deepcopy(API_EXAMPLE), AGENTS)
    assert parse_definition(d.to_dict(), AGENTS) == d
    assert d.to_dict()["steps"][0]["retry"] == {"max_attempts": 3, "backoff_seconds": 5.0}


@pytest.mark.parametrize(
    "trigger",
    [
        {
            "type": "manual",
            "inputs": [
                {
                    "name": "kind",
                    "type": "enum",
                    "options": ["a", "b"],
                    "default": "b",
                    "label": "Kind",
                    "description": "which kind",
                },
                {"name": "n", "type": "integer", "default": 2.0},
                {"name": "flag", "type": "boolean", "default": False},
                {"name": "day", "type": "date", "required": True},
            ],
        },
        {"type": "event", "source": "billing", "event_type": "invoice.created", "filter": "amount > `100`"},
        {"type": "event", "source": "billing", "event_type": "invoice.created"},
        {"type": "schedule", "cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris"},
    ],
)
def test_to_dict_round_trips_every_trigger_type(trigger: dict[str, Any]) -> None:
    d = parse_definition(with_trigger(**trigger), AGENTS)
    again = parse_definition(d.to_dict(), AGENTS)
    assert again == d
    assert again.to_dict() == d.to_dict()


def test_to_dict_does_not_share_config_with_the_definition() -> None:
    d = parse_definition(copy.deepcopy(API_EXAMPLE), AGENTS)
    d.to_dict()["steps"][1]["config"]["url"] = "changed"
    assert d.steps[1].config["url"] == "https://billing.example/notes"


def test_parse_copies_config_so_the_body_can_change_later() -> None:
    body = copy.deepcopy(API_EXAMPLE)
    d = parse_definition(body, AGENTS)
    body["steps"][1]["config"]["url"] = "changed"
    assert d.steps[1].config["url"] == "https://billing.example/notes"


def test_definitions_are_hashable_and_frozen() -> None:
    d = parse_definition(copy.deepcopy(API_EXAMPLE), AGENTS)
    assert hash(d) == hash(parse_definition(copy.deepcopy(API_EXAMPLE), AGENTS))
    with pytest.raises(AttributeError):
        d.name = "other"  # type: ignore[misc]


def test_defaults_fill_optional_fields() -> None:
    d = parse_definition(minimal(), AGENTS)
    assert d.description == ""
    assert d.enabled is True
    assert d.trigger == Trigger("manual")
    step = d.steps[0]
    assert (step.name, step.timeout_seconds, step.retry, step.gate, step.config) == ("only", 300, None, None, {})


def test_null_optional_fields_count_as_absent() -> None:
    d = parse_definition(minimal(description=None, enabled=None), AGENTS)
    assert (d.description, d.enabled) == ("", True)


def test_enabled_false_is_kept() -> None:
    assert parse_definition(minimal(enabled=False), AGENTS).enabled is False


def test_step_and_index_of_find_steps_by_id() -> None:
    d = parse_definition(copy.deepcopy(API_EXAMPLE), AGENTS)
    assert d.step("post").agent == "http"
    assert d.index_of("approve") == 2
    with pytest.raises(KeyError):
        d.step("missing")
    with pytest.raises(KeyError):
        d.index_of("missing")


# --- top level ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, [], "x", 3])
def test_rejects_a_body_that_is_not_an_object(body: Any) -> None:
    assert list(errors_of(body)) == ["body"]


@pytest.mark.parametrize("name", [None, "", "   ", 7, "x" * 201])
def test_rejects_a_bad_name(name: Any) -> None:
    body = minimal(name=name)
    assert "name" in errors_of(body)


def test_accepts_a_name_of_200_characters() -> None:
    assert parse_definition(minimal(name="x" * 200), AGENTS).name == "x" * 200


@pytest.mark.parametrize("description", [5, "x" * 2001])
def test_rejects_a_bad_description(description: Any) -> None:
    assert "description" in errors_of(minimal(description=description))


@pytest.mark.parametrize("enabled", ["true", 1, 0])
def test_rejects_enabled_that_is_not_a_boolean(enabled: Any) -> None:
    assert errors_of(minimal(enabled=enabled)) == {"enabled": "must be true or false"}


def test_rejects_unknown_top_level_fields_and_suggests_the_right_one() -> None:
    errors = errors_of(minimal(step=[]))
    assert errors == {"step": "unknown field; did you mean 'steps'?"}


def test_unknown_field_without_a_close_match_lists_the_fields() -> None:
    assert "expected one of: name, description, enabled, trigger, steps" in errors_of(minimal(zzz=1))["zzz"]


def test_collects_every_error_in_one_raise() -> None:
    body = {
        "name": "",
        "enabled": "yes",
        "trigger": {"type": "manual", "inputs": [{"name": "a", "type": "number", "default": "x"}]},
        "steps": [
            {"id": "a", "agent": "nope"},
            {"id": "a", "agent": "transform", "instructions": "input", "retry": {"max_attempts": 0}},
            {"id": "c", "agent": "transform", "instructions": "input", "gate": {"type": "vote"}},
        ],
    }
    assert set(errors_of(body)) == {
        "name",
        "enabled",
        "trigger.inputs[0].default",
        "steps[0].agent",
        "steps[1].id",
        "steps[1].retry.max_attempts",
        "steps[2].gate.type",
    }


def test_the_error_message_names_each_field() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_definition(minimal(name="", enabled="no"), AGENTS)
    assert "name:" in caught.value.message and "enabled:" in caught.value.message
    assert caught.value.status == 400


# --- trigger ----------------------------------------------------------------------------------


def test_trigger_is_required() -> None:
    body = minimal()
    del body["trigger"]
    assert "is required" in errors_of(body)["trigger"]


@pytest.mark.parametrize("trigger", ["manual", [], 1])
def test_rejects_a_trigger_that_is_not_an_object(trigger: Any) -> None:
    assert errors_of(minimal(trigger=trigger)) == {"trigger": "must be an object"}


@pytest.mark.parametrize("kind", [None, "webhook", "", ["manual"]])
def test_rejects_an_unknown_trigger_type(kind: Any) -> None:
    errors = errors_of(minimal(trigger={"type": kind}))
    assert errors == {"trigger.type": "must be one of: manual, event, schedule"}


def test_rejects_fields_of_another_trigger_type() -> None:
    errors = errors_of(with_trigger(type="manual", cron="0 9 * * *"))
    assert "unknown field for a manual trigger" in errors["trigger.cron"]


# manual inputs


@pytest.mark.parametrize("inputs", [{}, "amount", 3])
def test_rejects_inputs_that_are_not_a_list(inputs: Any) -> None:
    assert "trigger.inputs" in errors_of(with_trigger(type="manual", inputs=inputs))


@pytest.mark.parametrize("name", ["1st", "has space", "", "x" * 65, "é", "a-b", 5, None])
def test_rejects_a_bad_input_name(name: Any) -> None:
    assert "trigger.inputs[0].name" in errors_of(with_inputs({"name": name, "type": "string"}))


@pytest.mark.parametrize("name", ["a", "_private", "Amount2", "x" * 64])
def test_accepts_input_names_of_the_documented_form(name: str) -> None:
    d = parse_definition(with_inputs({"name": name, "type": "string"}), AGENTS)
    assert d.trigger.inputs[0].name == name


def test_rejects_duplicate_input_names() -> None:
    errors = errors_of(with_inputs({"name": "a", "type": "string"}, {"name": "a", "type": "number"}))
    assert errors == {"trigger.inputs[1].name": "duplicate input name 'a' (also trigger.inputs[0])"}


@pytest.mark.parametrize("kind", [None, "text", "float", "list"])
def test_rejects_an_unknown_input_type(kind: Any) -> None:
    errors = errors_of(with_inputs({"name": "a", "type": kind}))
    assert errors["trigger.inputs[0].type"] == "must be one of: string, number, integer, boolean, enum, date"


def test_rejects_required_that_is_not_a_boolean() -> None:
    assert "trigger.inputs[0].required" in errors_of(with_inputs({"name": "a", "type": "string", "required": "yes"}))


def test_rejects_an_input_item_that_is_not_an_object() -> None:
    assert "trigger.inputs[1]" in errors_of(with_inputs({"name": "a", "type": "string"}, "b"))


def test_rejects_unknown_input_field_keys() -> None:
    errors = errors_of(with_inputs({"name": "a", "type": "string", "requried": True}))
    assert errors == {"trigger.inputs[0].requried": "unknown field; did you mean 'required'?"}


@pytest.mark.parametrize("options", [None, [], "a,b", [""], ["a", 1]])
def test_enum_needs_a_non_empty_list_of_string_options(options: Any) -> None:
    errors = errors_of(with_inputs({"name": "a", "type": "enum", "options": options}))
    assert any(field.startswith("trigger.inputs[0].options") for field in errors)


def test_enum_options_must_be_unique() -> None:
    errors = errors_of(with_inputs({"name": "a", "type": "enum", "options": ["x", "x"]}))
    assert "trigger.inputs[0].options" in errors


def test_options_belong_to_enum_inputs_only() -> None:
    errors = errors_of(with_inputs({"name": "a", "type": "string", "options": ["x"]}))
    assert errors == {"trigger.inputs[0].options": "only enum inputs take options"}


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "string", "default": 3},
        {"type": "number", "default": "3"},
        {"type": "number", "default": True},
        {"type": "integer", "default": 2.5},
        {"type": "integer", "default": False},
        {"type": "boolean", "default": 0},
        {"type": "enum", "options": ["x", "y"], "default": "z"},
        {"type": "date", "default": "2026-02-30"},
        {"type": "date", "default": "26-01-01"},
    ],
)
def test_rejects_a_default_that_does_not_fit_the_type(spec: dict[str, Any]) -> None:
    assert "trigger.inputs[0].default" in errors_of(with_inputs({"name": "a", **spec}))


def test_integer_default_written_as_a_float_becomes_an_int() -> None:
    d = parse_definition(with_inputs({"name": "n", "type": "integer", "default": 3.0}), AGENTS)
    assert d.trigger.inputs[0].default == 3 and isinstance(d.trigger.inputs[0].default, int)


def test_input_description_and_label_must_be_strings() -> None:
    errors = errors_of(with_inputs({"name": "a", "type": "string", "label": 1, "description": []}))
    assert set(errors) == {"trigger.inputs[0].label", "trigger.inputs[0].description"}


# event


def test_parses_an_event_trigger() -> None:
    d = parse_definition(
        with_trigger(type="event", source="billing", event_type="invoice.created", filter="amount > `100`"), AGENTS
    )
    assert d.trigger == Trigger("event", source="billing", event_type="invoice.created", filter="amount > `100`")


def test_event_trigger_needs_source_and_event_type() -> None:
    errors = errors_of(with_trigger(type="event"))
    assert errors == {"trigger.source": "is required", "trigger.event_type": "is required"}


@pytest.mark.parametrize("source", ["", 5, ["billing"]])
def test_rejects_a_source_that_is_not_a_non_empty_string(source: Any) -> None:
    assert "trigger.source" in errors_of(with_trigger(type="event", source=source, event_type="x"))


@pytest.mark.parametrize("expression", ["amount >", "[", "", 5])
def test_rejects_an_event_filter_that_does_not_compile(expression: Any) -> None:
    errors = errors_of(with_trigger(type="event", source="b", event_type="x", filter=expression))
    assert list(errors) == ["trigger.filter"]


# schedule


@pytest.mark.parametrize("cron", ["0 9 * * MON-FRI", "*/15 * * * *", "0 0 1 jan *", "30 8 1,15 * 1-5", "0 0 29 2 *"])
def test_accepts_five_field_unix_cron(cron: str) -> None:
    d = parse_definition(with_trigger(type="schedule", cron=cron, timezone="Europe/Paris"), AGENTS)
    assert d.trigger == Trigger("schedule", cron=cron, timezone="Europe/Paris")


def test_schedule_timezone_defaults_to_utc() -> None:
    d = parse_definition(with_trigger(type="schedule", cron="0 9 * * *"), AGENTS)
    assert d.trigger.timezone == "UTC"


def test_schedule_cron_whitespace_is_normalised() -> None:
    d = parse_definition(with_trigger(type="schedule", cron="  0  9 * *   1 "), AGENTS)
    assert d.trigger.cron == "0 9 * * 1"


def test_schedule_needs_a_cron() -> None:
    assert "trigger.cron" in errors_of(with_trigger(type="schedule"))


@pytest.mark.parametrize("cron", ["0 9 ? * MON-FRI *", "cron(0 9 ? * MON-FRI *)"])
def test_refuses_aws_six_field_cron_and_says_what_to_write(cron: str) -> None:
    message = errors_of(with_trigger(type="schedule", cron=cron))["trigger.cron"]
    assert "five-field Unix cron" in message and "AWS-style" in message
    assert "'0 9 * * MON-FRI'" in message


@pytest.mark.parametrize(
    "cron", ["0 9 L * ?", "0 9 * * 1L", "0 9 15W * *", "0 9 * * 2#1", "0 0 9 * * ?", "0 9 ? * 2-6 *", "rate(7 minutes)"]
)
def test_refuses_aws_only_syntax(cron: str) -> None:
    message = errors_of(with_trigger(type="schedule", cron=cron))["trigger.cron"]
    assert "AWS-style expressions" in message and "not accepted" in message


def test_does_not_guess_aws_day_numbers() -> None:
    # AWS counts 1 = Sunday and Unix 0 = Sunday: no suggestion rather than a wrong one.
    message = errors_of(with_trigger(type="schedule", cron="0 9 ? * 2-6 *"))["trigger.cron"]
    assert "instead" not in message


def test_suggests_the_unix_form_of_an_aws_rate() -> None:
    message = errors_of(with_trigger(type="schedule", cron="rate(5 minutes)"))["trigger.cron"]
    assert "'*/5 * * * *'" in message


def test_month_and_day_names_are_not_mistaken_for_aws_letters() -> None:
    d = parse_definition(with_trigger(type="schedule", cron="0 9 * JUL WED"), AGENTS)
    assert d.trigger.cron == "0 9 * JUL WED"


def test_suggests_five_fields_for_a_cron_alias() -> None:
    message = errors_of(with_trigger(type="schedule", cron="@daily"))["trigger.cron"]
    assert "'0 0 * * *'" in message


@pytest.mark.parametrize(
    "cron",
    [
        "",
        "   ",
        5,
        "* * *",
        "60 * * * *",
        "0 25 * * *",
        "0 9 * * 8",
        "H 9 * * *",
        "*/0 * * * *",
        "0 9 * * JUL",
        "0 0 30 2 *",
    ],
)
def test_rejects_invalid_cron(cron: Any) -> None:
    assert "trigger.cron" in errors_of(with_trigger(type="schedule", cron=cron))


def test_a_cron_that_can_never_fire_is_rejected() -> None:
    assert "never fires" in errors_of(with_trigger(type="schedule", cron="0 0 31 4 *"))["trigger.cron"]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "utc", "", "localtime", "../etc/passwd", "/etc/localtime", 1])
def test_rejects_a_bad_timezone(zone: Any) -> None:
    errors = errors_of(with_trigger(type="schedule", cron="0 9 * * *", timezone=zone))
    assert list(errors) == ["trigger.timezone"]


# --- steps ------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [None, [], {}, "draft"])
def test_steps_must_be_a_non_empty_list(steps: Any) -> None:
    body = minimal(steps=steps)
    if steps is None:
        del body["steps"]
    assert "non-empty list of steps" in errors_of(body)["steps"]


def test_at_most_100_steps() -> None:
    steps = [{"id": f"s{i}", "agent": "transform", "instructions": "input"} for i in range(101)]
    assert errors_of(minimal(steps=steps)) == {"steps": "must have at most 100 steps"}
    assert len(parse_definition(minimal(steps=steps[:100]), AGENTS).steps) == 100


def test_rejects_a_step_that_is_not_an_object() -> None:
    body = minimal(steps=[{"id": "a", "agent": "transform", "instructions": "input"}, "b"])
    assert list(errors_of(body)) == ["steps[1]"]


@pytest.mark.parametrize("step_id", [None, "", "has space", "x" * 65, "a.b", 3])
def test_rejects_a_bad_step_id(step_id: Any) -> None:
    assert "steps[0].id" in errors_of(with_step(id=step_id))


@pytest.mark.parametrize("step_id", ["a", "draft-1", "Post_2", "x" * 64])
def test_accepts_step_ids_of_the_documented_form(step_id: str) -> None:
    assert parse_definition(with_step(id=step_id), AGENTS).steps[0].id == step_id


def test_rejects_duplicate_step_ids() -> None:
    step = {"id": "a", "agent": "transform", "instructions": "input"}
    errors = errors_of(minimal(steps=[step, dict(step, id="b"), dict(step)]))
    assert errors == {"steps[2].id": "duplicate step id 'a' (also steps[0])"}


def test_step_name_defaults_to_the_id_and_must_be_a_string() -> None:
    assert parse_definition(with_step(), AGENTS).steps[0].name == "s"
    assert "steps[0].name" in errors_of(with_step(name=4))


def test_unknown_agent_error_lists_the_known_agents() -> None:
    errors = errors_of(with_step(agent="llm"))
    assert errors == {"steps[0].agent": "unknown agent 'llm'; known agents: http, transform"}


def test_step_needs_an_agent() -> None:
    body = minimal(steps=[{"id": "s"}])
    assert errors_of(body) == {"steps[0].agent": "is required"}


def test_agent_validation_errors_are_added_with_the_step_path() -> None:
    body = minimal(
        steps=[
            {"id": "a", "agent": "transform", "instructions": "input"},
            {"id": "b", "agent": "transform", "instructions": "foo["},
            {"id": "c", "agent": "http"},
        ]
    )
    assert set(errors_of(body)) == {"steps[1].instructions", "steps[2].config.url"}


def test_agent_validate_receives_the_raw_step_and_its_path() -> None:
    recorder = RecordingAgent()
    step = {"id": "a", "agent": "rec", "config": {"k": 1}}
    parse_definition(minimal(steps=[{"id": "z", "agent": "rec"}, step]), {"rec": recorder})
    assert recorder.calls[1] == (step, "steps[1]")


def test_agent_is_not_asked_about_badly_shaped_instructions_or_config() -> None:
    recorder = RecordingAgent()
    errors = errors_of(
        minimal(steps=[{"id": "a", "agent": "rec", "instructions": 5}, {"id": "b", "agent": "rec", "config": []}]),
        {"rec": recorder},
    )
    assert errors == {"steps[0].instructions": "must be a string", "steps[1].config": "must be an object"}
    assert recorder.calls == []


def test_rejects_unknown_step_fields_so_typos_are_caught() -> None:
    errors = errors_of(with_step(timeout=30))
    assert errors == {"steps[0].timeout": "unknown field; did you mean 'timeout_seconds'?"}


@pytest.mark.parametrize("timeout", [0, -1, 86401, 1.5, True, "300"])
def test_rejects_a_bad_timeout(timeout: Any) -> None:
    assert errors_of(with_step(timeout_seconds=timeout)) == {
        "steps[0].timeout_seconds": "must be an integer from 1 to 86400"
    }


@pytest.mark.parametrize("timeout", [1, 86400, 60.0])
def test_accepts_timeouts_in_range(timeout: Any) -> None:
    step = parse_definition(with_step(timeout_seconds=timeout), AGENTS).steps[0]
    assert step.timeout_seconds == timeout and isinstance(step.timeout_seconds, int)


def test_instructions_are_optional_for_agents_that_do_not_need_them() -> None:
    step = parse_definition(minimal(steps=[{"id": "p", "agent": "http", "config": {"url": "u"}}]), AGENTS).steps[0]
    assert step.instructions is None


# retry


@pytest.mark.parametrize(
    "retry, field",
    [
        ({}, "steps[0].retry.max_attempts"),
        ({"max_attempts": 0}, "steps[0].retry.max_attempts"),
        ({"max_attempts": 21}, "steps[0].retry.max_attempts"),
        ({"max_attempts": True}, "steps[0].retry.max_attempts"),
        ({"max_attempts": 2.5}, "steps[0].retry.max_attempts"),
        ({"max_attempts": 3, "backoff_seconds": -1}, "steps[0].retry.backoff_seconds"),
        ({"max_attempts": 3, "backoff_seconds": "5"}, "steps[0].retry.backoff_seconds"),
        ({"max_attempts": 3, "backoff_seconds": float("inf")}, "steps[0].retry.backoff_seconds"),
        ({"max_attempts": 3, "backoff_seconds": True}, "steps[0].retry.backoff_seconds"),
        ({"max_attempts": 3, "delay": 5}, "steps[0].retry.delay"),
        (3, "steps[0].retry"),
    ],
)
def test_rejects_a_bad_retry_policy(retry: Any, field: str) -> None:
    assert list(errors_of(with_step(retry=retry))) == [field]


@pytest.mark.parametrize(
    "retry, policy",
    [
        ({"max_attempts": 1}, RetryPolicy(1, 1.0)),
        ({"max_attempts": 20, "backoff_seconds": 0}, RetryPolicy(20, 0.0)),
        ({"max_attempts": 3, "backoff_seconds": 0.5}, RetryPolicy(3, 0.5)),
    ],
)
def test_parses_a_retry_policy(retry: dict[str, Any], policy: RetryPolicy) -> None:
    assert parse_definition(with_step(retry=retry), AGENTS).steps[0].retry == policy


# gate


@pytest.mark.parametrize(
    "gate, field",
    [
        ({}, "steps[0].gate.type"),
        ({"type": "vote"}, "steps[0].gate.type"),
        ({"type": "approval", "approvers": "manager"}, "steps[0].gate.approvers"),
        ({"type": "approval", "approvers": ["ok", ""]}, "steps[0].gate.approvers[1]"),
        ({"type": "approval", "approvers": [7]}, "steps[0].gate.approvers[0]"),
        ({"type": "approval", "who": []}, "steps[0].gate.who"),
        ("approval", "steps[0].gate"),
    ],
)
def test_rejects_a_bad_gate(gate: Any, field: str) -> None:
    assert list(errors_of(with_step(gate=gate))) == [field]


def test_gate_without_approvers_means_any_operator() -> None:
    assert parse_definition(with_step(gate={"type": "review"}), AGENTS).steps[0].gate == Gate("review", ())


def test_step_to_dict_leaves_out_absent_optional_fields() -> None:
    assert StepDef("a", "a", "http").to_dict() == {"id": "a", "name": "a", "agent": "http", "timeout_seconds": 300}


# --- manual inputs at start time ---------------------------------------------------------------


def test_validate_inputs_applies_defaults_and_keeps_given_values() -> None:
    trigger = parse_definition(copy.deepcopy(API_EXAMPLE), AGENTS).trigger
    assert validate_inputs(trigger, {"amount": 12.5}) == {"amount": 12.5, "customer": "ACME"}
    assert validate_inputs(trigger, {"amount": 1, "customer": "Initech"}) == {"amount": 1, "customer": "Initech"}


def test_missing_required_input_is_named() -> None:
    trigger = manual(InputField("amount", "number", required=True))
    assert input_errors(trigger, {}) == {"inputs.amount": "is required"}
    assert input_errors(trigger, None) == {"inputs.amount": "is required"}
    assert input_errors(trigger, {"amount": None}) == {"inputs.amount": "is required"}


def test_optional_input_without_default_is_left_out() -> None:
    assert validate_inputs(manual(InputField("note", "string")), {}) == {}


def test_none_inputs_mean_no_inputs() -> None:
    assert validate_inputs(manual(), None) == {}


@pytest.mark.parametrize("inputs", [[], "x", 3, True])
def test_inputs_must_be_an_object(inputs: Any) -> None:
    assert list(input_errors(manual(), inputs)) == ["inputs"]


def test_unknown_inputs_are_named() -> None:
    errors = input_errors(manual(InputField("a", "string")), {"a": "x", "b": 1})
    assert errors == {"inputs.b": "unknown input; expected: a"}


def test_every_bad_input_is_named_at_once() -> None:
    trigger = manual(InputField("a", "number", required=True), InputField("b", "boolean"), InputField("c", "date"))
    assert set(input_errors(trigger, {"b": "yes", "c": "tomorrow", "d": 1})) == {
        "inputs.a",
        "inputs.b",
        "inputs.c",
        "inputs.d",
    }


@pytest.mark.parametrize(
    "kind, value",
    [
        ("string", "x"),
        ("string", ""),
        ("number", 3),
        ("number", 2.5),
        ("number", -0.0),
        ("integer", 7),
        ("integer", -2),
        ("boolean", True),
        ("boolean", False),
        ("date", "2024-02-29"),
        ("date", "2026-12-31"),
    ],
)
def test_accepts_values_of_the_right_type(kind: str, value: Any) -> None:
    assert validate_inputs(manual(InputField("v", kind)), {"v": value}) == {"v": value}


@pytest.mark.parametrize(
    "kind, value",
    [
        ("string", 3),
        ("string", True),
        ("string", ["x"]),
        ("number", True),
        ("number", False),
        ("number", "3"),
        ("number", float("nan")),
        ("number", float("inf")),
        ("integer", True),
        ("integer", 2.5),
        ("integer", "2"),
        ("boolean", 1),
        ("boolean", "true"),
        ("boolean", 0),
        ("date", "2026-02-30"),
        ("date", "2025-02-29"),
        ("date", "2026-13-01"),
        ("date", "20260101"),
        ("date", "2026-1-1"),
        ("date", "2026-01-01T00:00:00"),
        ("date", 20260101),
    ],
)
def test_rejects_values_of_the_wrong_type(kind: str, value: Any) -> None:
    assert list(input_errors(manual(InputField("v", kind)), {"v": value})) == ["inputs.v"]


def test_integer_input_written_as_an_integral_float_becomes_an_int() -> None:
    result = validate_inputs(manual(InputField("n", "integer")), {"n": 4.0})
    assert result == {"n": 4} and isinstance(result["n"], int)


def test_enum_input_must_be_one_of_the_options_and_the_message_lists_them() -> None:
    trigger = manual(InputField("size", "enum", options=("small", "large")))
    assert validate_inputs(trigger, {"size": "large"}) == {"size": "large"}
    assert input_errors(trigger, {"size": "medium"}) == {"inputs.size": "must be one of: small, large"}


def test_invalid_calendar_date_says_so() -> None:
    assert input_errors(manual(InputField("d", "date")), {"d": "2026-02-30"}) == {
        "inputs.d": "'2026-02-30' is not a calendar date"
    }


def test_a_workflow_without_inputs_refuses_any() -> None:
    errors = input_errors(manual(), {"x": 1})
    assert errors == {"inputs.x": "unknown input; expected: none (this workflow takes no inputs)"}


def test_parsed_defaults_flow_into_inputs() -> None:
    body = with_inputs(
        {"name": "n", "type": "integer", "default": 5},
        {"name": "on", "type": "boolean", "default": False},
        {"name": "size", "type": "enum", "options": ["s", "l"], "default": "s"},
    )
    trigger = parse_definition(body, AGENTS).trigger
    assert validate_inputs(trigger, {}) == {"n": 5, "on": False, "size": "s"}


def test_input_field_to_dict_is_minimal() -> None:
    assert InputField("a", "string").to_dict() == {"name": "a", "type": "string", "required": False}
    assert InputField("e", "enum", options=("x",), default="x").to_dict() == {
        "name": "e",
        "type": "enum",
        "required": False,
        "options": ["x"],
        "default": "x",
    }


def test_workflow_definition_is_constructible_directly() -> None:
    d = WorkflowDefinition("w", "", True, Trigger("manual"), (StepDef("a", "a", "transform", "input"),))
    assert parse_definition(d.to_dict(), AGENTS) == d


# --- never a crash on bad input ----------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += _paths(child, (*prefix, key))
    return found


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_any_single_mutation_parses_or_raises_a_validation_error(data: st.DataObject) -> None:
    body = copy.deepcopy(API_EXAMPLE)
    path = data.draw(st.sampled_from(_paths(body)[1:]))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(JSON_VALUES)
    try:
        parsed = parse_definition(body, AGENTS)
    except ValidationError as exc:
        assert exc.errors
    else:
        assert parse_definition(parsed.to_dict(), AGENTS) == parsed


@settings(max_examples=100, deadline=None)
@given(JSON_VALUES)
def test_any_inputs_are_accepted_or_refused_cleanly(inputs: Any) -> None:
    trigger = manual(
        InputField("a", "number"),
        InputField("b", "date", default="2026-01-01"),
        InputField("c", "enum", options=("x",)),
        InputField("d", "integer"),
    )
    try:
        validate_inputs(trigger, inputs)
    except ValidationError as exc:
        assert exc.errors and all(e.field.startswith("inputs") for e in exc.errors)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="0123456789*,/-? LW#HJANMOSU", max_size=30))
def test_any_cron_text_is_accepted_or_refused_cleanly(cron: str) -> None:
    try:
        parse_definition(with_trigger(type="schedule", cron=cron), AGENTS)
    except ValidationError as exc:
        assert [e.field for e in exc.errors] == ["trigger.cron"]
