from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.agents import AgentContext, AgentError, PythonAgent, get_agent


def make_ctx(callable_spec: str, data: dict[str, Any] | None = None, **config: Any) -> AgentContext:
    return AgentContext(
        execution_id="ex-1",
        step_id="enrich",
        attempt=1,
        instructions=None,
        config={"callable": callable_spec, **config},
        data=data or {"input": {}, "prev": {}, "steps": {}},
        timeout_seconds=5,
    )


ORDER = {"id": "o-1", "customer": "ACME", "items": [{"sku": "A", "qty": 2, "price": 9.5}, {"sku": "B", "price": 1}]}


def returns_a_set(ctx: AgentContext) -> Any:
    return {1, 2}


def test_python_agent_calls_the_function_with_the_context_and_outputs_its_result() -> None:
    output = get_agent("python").run(
        make_ctx(
            "chalicelib.samples.callables:enrich_order", {"input": ORDER, "prev": ORDER, "steps": {}}, vip_threshold=10
        )
    )

    assert output["total"] == 20.0
    assert output["priority"] == "high"
    assert [line["line_total"] for line in output["items"]] == [19.0, 1.0]
    assert output["enriched_by"] == "enrich"


def test_python_agent_accepts_an_allowed_callable_without_instructions() -> None:
    step = {"id": "enrich", "agent": "python", "config": {"callable": "chalicelib.samples.callables:enrich_order"}}

    assert get_agent("python").validate(step, "steps[1]") == []


def test_exception_from_the_callable_becomes_a_retryable_agent_error() -> None:
    with pytest.raises(AgentError) as caught:
        get_agent("python").run(make_ctx("chalicelib.samples.callables:always_fails", message="boom"))

    assert caught.value.message == "RuntimeError: boom"
    assert caught.value.retryable is True


def test_step_error_from_the_callable_passes_through_unchanged() -> None:
    with pytest.raises(AgentError) as caught:
        get_agent("python").run(make_ctx("chalicelib.samples.callables:fails_permanently", message="bad data"))

    assert caught.value.message == "bad data"
    assert caught.value.retryable is False


def test_flaky_sample_succeeds_from_the_configured_attempt() -> None:
    ctx = make_ctx("chalicelib.samples.callables:flaky", succeed_on_attempt=2)
    with pytest.raises(AgentError):
        get_agent("python").run(ctx)

    second = replace(ctx, attempt=2)
    assert get_agent("python").run(second)["attempt"] == 2


def test_disallowed_module_is_refused_at_validation_and_at_run_time() -> None:
    agent = get_agent("python")

    errors = agent.validate({"config": {"callable": "os:system"}}, "steps[0]")
    with pytest.raises(AgentError) as caught:
        agent.run(make_ctx("os:system"))

    assert [e.field for e in errors] == ["steps[0].config.callable"]
    assert "module 'os' is not allowed" in errors[0].message
    assert "chalicelib.samples.*" in errors[0].message
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    "spec, expected",
    [
        (None, "required"),
        ("chalicelib.samples.callables.enrich_order", "is not of the form"),
        ("chalicelib.samples.callables:no_such_function", "has no attribute 'no_such_function'"),
        ("chalicelib.samples.missing:fn", "cannot import module 'chalicelib.samples.missing'"),
        ("chalicelib.samples.callables:__dict__", "is not a function name"),
        ("chalicelib.samples.callables:MAX_SLEEP_SECONDS", "is not callable"),
        ("chalicelib.samplesX.evil:fn", "is not allowed"),
    ],
)
def test_validation_explains_each_bad_callable(spec: Any, expected: str) -> None:
    errors = get_agent("python").validate({"config": {"callable": spec}}, "steps[3]")

    assert len(errors) == 1 and expected in errors[0].message, errors


def test_non_json_output_is_a_non_retryable_error() -> None:
    agent = PythonAgent(allowed_prefixes=(f"{__name__}.",))

    with pytest.raises(AgentError) as caught:
        agent.run(make_ctx(f"{__name__}:returns_a_set"))

    assert "not JSON-serialisable" in caught.value.message
    assert caught.value.retryable is False
