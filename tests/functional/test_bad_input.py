"""The probe's bad-input repros through the real handlers: each used to be a 500
or an accepted value that broke later; each is now a clear 4xx naming the field, and nothing
is stored or started."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functional.operator_kit import REVIEW, step_of
from tests.functional.test_triggers_webhooks import Sender, create_source, event_workflow

DEEP = 10_000
PATHOLOGICAL = ["(" * 5000, "|".join(["a"] * 5000), "!" * 10000 + "a", "[" * 3000, "a" + ".a" * 6000]


def deep_json(depth: int = DEEP) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def transform_flow(instructions: str = "input", name: str = "Bad input") -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"type": "manual", "inputs": []},
        "steps": [{"id": "t", "agent": "transform", "instructions": instructions}],
    }


def post_raw(api: Any, path: str, body: str) -> tuple[int, Any]:
    return api.post(path, body)


def assert_400(status: int, body: Any, field: str | None = None) -> None:
    assert status == 400, body
    if field is not None:
        assert field in json.dumps(body), body


def test_json_nested_10000_deep_is_a_400_on_every_body(api: Any, client: Any, clock: Any) -> None:
    wf = api.create_workflow(transform_flow())
    execution_id = api.start(wf)["execution_id"]
    for path in (
        "/workflows",
        f"/workflows/{wf}/executions",
        f"/executions/{execution_id}/cancel",
        f"/executions/{execution_id}/steps/t/retry",
        "/executions/bulk",
        "/keys",
    ):
        status, body = post_raw(api, path, deep_json())
        assert_400(status, body, "nested deeper")
    nested_inputs = '{"inputs": ' + deep_json(40) + "}"
    assert_400(*post_raw(api, f"/workflows/{wf}/executions", nested_inputs), "inputs")
    sender = Sender(client, clock, "billing", create_source(api))
    raw = ('{"type": "invoice.created", "x": ' + deep_json() + "}").encode()
    status, body = sender.post(raw, sender.headers(raw))
    assert_400(status, body, "nested deeper")


@pytest.mark.parametrize("expression", PATHOLOGICAL)
def test_pathological_jmespath_is_a_400_in_instructions_and_filters(api: Any, expression: str) -> None:
    status, body = api.post("/workflows", transform_flow(expression))
    assert_400(status, body, "steps[0].instructions")
    status, body = api.post("/workflows", event_workflow(filter=expression))
    assert_400(status, body, "trigger.filter")


def test_pathological_jmespath_in_edit_and_retry_is_a_400(api: Any, worker: Any) -> None:
    wf = api.create_workflow(transform_flow("input.missing.to_number(@)"))
    execution_id = api.start(wf)["execution_id"]
    worker.drain()
    for expression in PATHOLOGICAL:
        status, body = api.post(f"/executions/{execution_id}/steps/t/retry", {"instructions": expression})
        assert_400(status, body, "instructions")


def test_a_definition_over_the_item_size_is_a_413_naming_the_body(api: Any) -> None:
    steps = [
        {
            "id": f"s{i}",
            "agent": "transform",
            "instructions": "input",
            "name": f"step {i}",
            "config": {"pad": "x" * 3000},
        }
        for i in range(100)
    ]
    definition = {"name": "Huge", "trigger": {"type": "manual", "inputs": []}, "steps": steps}
    status, body = api.post("/workflows", definition)
    assert status == 413, body
    assert body["errors"][0]["field"] == "body"
    assert api.get("/workflows")[1]["items"] == []


def test_per_field_limits_name_the_field(api: Any) -> None:
    status, body = api.post("/workflows", transform_flow("input" + " " * 20_001))
    assert_400(status, body, "steps[0].instructions")
    big_config = transform_flow()
    big_config["steps"][0]["config"] = {"pad": "x" * 70_000}
    status, body = api.post("/workflows", big_config)
    assert_400(status, body, "steps[0].config")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused_where_json_enters(
    api: Any, client: Any, clock: Any, worker: Any, constant: str
) -> None:
    config = (
        '{"name": "N", "trigger": {"type": "manual", "inputs": []}, "steps": [{"id": "h", "agent": "http", '
        '"config": {"url": "https://example.com/", "timeout_seconds": ' + constant + "}}]}"
    )
    assert_400(*post_raw(api, "/workflows", config), "body")
    inputs_flow = dict(transform_flow(), trigger={"type": "manual", "inputs": [{"name": "n", "type": "number"}]})
    wf = api.create_workflow(inputs_flow)
    assert_400(*post_raw(api, f"/workflows/{wf}/executions", '{"inputs": {"n": ' + constant + "}}"), "body")

    review_wf = api.create_workflow(REVIEW)
    execution_id = api.start(review_wf)["execution_id"]
    worker.drain()
    assert step_of(api.execution(execution_id), "review")["state"] == "waiting_for_approval"
    status, body = post_raw(
        api, f"/executions/{execution_id}/steps/review/review", '{"output": {"total": ' + constant + "}}"
    )
    assert_400(status, body, "body")
    assert step_of(api.execution(execution_id), "review")["state"] == "waiting_for_approval"

    event_wf = api.create_workflow(event_workflow(source="nan-src"))
    sender = Sender(client, clock, "nan-src", create_source(api, "nan-src"))
    raw = ('{"type": "invoice.created", "amount": ' + constant + "}").encode()
    status, body = sender.post(raw, sender.headers(raw))
    assert_400(status, body, "body")
    assert api.get(f"/workflows/{event_wf}/executions")[1]["items"] == []


def test_null_inputs_do_not_start_a_run(api: Any) -> None:
    wf = api.create_workflow(transform_flow())
    status, body = api.post(f"/workflows/{wf}/executions", {"inputs": None})
    assert_400(status, body, "inputs")
    assert api.get(f"/workflows/{wf}/executions")[1]["items"] == []
    status, body = api.post(f"/workflows/{wf}/executions", {"inputs": []})
    assert_400(status, body, "inputs")


@pytest.mark.parametrize("name", ["workflow_id", "status", "trigger", "from", "to"])
def test_a_null_bulk_filter_is_refused_and_starts_no_job(api: Any, worker: Any, name: str) -> None:
    wf = api.create_workflow(transform_flow("input.missing.to_number(@)"))
    api.start(wf)
    worker.drain()
    status, body = api.post("/executions/bulk", {"action": "retry", "dry_run": False, "filters": {name: None}})
    assert_400(status, body, f"filters.{name}")
    assert worker.receive() == []


def test_an_eventbridge_event_with_non_json_numbers_starts_nothing(api: Any, client: Any) -> None:
    api.create_workflow(event_workflow(source="aws.s3", event_type="Object Created"))
    event = {
        "version": "0",
        "id": "evt-nan",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"size": float("nan")},
    }
    client.lambda_.invoke("integration_event", event)
    assert api.get("/executions")[1]["items"] == []


def test_rotate_grace_is_an_integer_in_the_json_schema_sense(api: Any) -> None:
    from chalicelib.api.schemas import _MAX_GRACE_SECONDS
    from chalicelib.engine.events import MAX_GRACE

    assert int(MAX_GRACE.total_seconds()) == _MAX_GRACE_SECONDS
    create_source(api, "rotating")
    status, body = api.post("/sources/rotating/rotate", {"grace_seconds": 48417.0})
    assert status == 200, body
    status, body = api.post("/sources/rotating/rotate", {"grace_seconds": 1.5})
    assert_400(status, body, "grace_seconds")
