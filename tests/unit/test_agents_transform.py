from __future__ import annotations

from typing import Any

import pytest

from chalicelib.agents import AgentContext, AgentError, get_agent


def make_ctx(instructions: str | None, data: dict[str, Any] | None = None) -> AgentContext:
    return AgentContext(
        execution_id="ex-1",
        step_id="draft",
        attempt=1,
        instructions=instructions,
        config={},
        data=data or {"input": {}, "prev": {}, "steps": {}},
        timeout_seconds=5,
    )


DATA = {
    "input": {"customer": "ACME", "amount": 120},
    "prev": {"note": "n-7"},
    "steps": {"fetch": {"output": {"id": "inv-9", "lines": [1, 2, 3]}}},
}


def test_transform_outputs_the_expression_result_over_input_prev_and_steps() -> None:
    agent = get_agent("transform")
    ctx = make_ctx(
        "{customer: input.customer, total: input.amount, note: prev.note, "
        "invoice: steps.fetch.output.id, lines: length(steps.fetch.output.lines)}",
        DATA,
    )

    assert agent.run(ctx) == {"customer": "ACME", "total": 120, "note": "n-7", "invoice": "inv-9", "lines": 3}


def test_transform_accepts_a_valid_step() -> None:
    assert get_agent("transform").validate({"id": "a", "agent": "transform", "instructions": "input"}, "steps[0]") == []


def test_transform_rejects_a_bad_expression_naming_the_field_and_jmespath_message() -> None:
    errors = get_agent("transform").validate({"instructions": "{customer: input.customer"}, "steps[2]")

    assert len(errors) == 1
    assert errors[0].field == "steps[2].instructions"
    assert errors[0].message.startswith("invalid JMESPath: ")
    assert "\n" not in errors[0].message


def test_transform_requires_instructions() -> None:
    errors = get_agent("transform").validate({"id": "a", "agent": "transform"}, "steps[0]")

    assert [e.field for e in errors] == ["steps[0].instructions"]
    assert "required" in errors[0].message


def test_transform_rejects_unknown_functions_and_wrong_arity_at_definition_time() -> None:
    agent = get_agent("transform")

    unknown = agent.validate({"instructions": "input.a.nope(b)"}, "steps[1]")
    arity = agent.validate({"instructions": "length(input, prev)"}, "steps[1]")

    assert "unknown function nope()" in unknown[0].message
    assert "length() expects 1 argument(s), got 2" in arity[0].message


def test_transform_type_error_at_runtime_is_not_retryable() -> None:
    with pytest.raises(AgentError) as caught:
        get_agent("transform").run(make_ctx("abs(input.customer)", DATA))

    assert caught.value.retryable is False
    assert "abs()" in caught.value.message


def test_transform_with_edited_invalid_instructions_fails_without_retry() -> None:
    with pytest.raises(AgentError) as caught:
        get_agent("transform").run(make_ctx("input.[", DATA))

    assert caught.value.retryable is False
    assert caught.value.message.startswith("invalid JMESPath")
    assert caught.value.to_dict()["kind"] == "agent"
