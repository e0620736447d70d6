"""The REST surface of the core: auth, validation, workflows with versions, manual starts."""

from __future__ import annotations

import copy
from typing import Any

from tests.functional.test_core_flow import THREE_STEPS


def _key(api: Any, role: str, name: str | None = None) -> str:
    status, body = api.post("/keys", {"name": name or f"{role}-key", "role": role})
    assert status == 201, body
    assert body["role"] == role and body["key"].startswith("sl_")
    return body["key"]


def test_health_needs_no_key(api: Any) -> None:
    response = api.client.http.get("/health")
    assert response.status_code == 200
    assert response.json_body["status"] == "ok"


def test_missing_and_unknown_keys_are_401(api: Any) -> None:
    assert api.client.http.get("/workflows").status_code == 401
    status, body = api.get("/workflows", key="sl_not-a-key")
    assert status == 401 and "unknown API key" in body["Message"]


def test_roles_are_enforced_with_403(api: Any) -> None:
    viewer, operator = _key(api, "viewer"), _key(api, "operator")
    assert api.post("/workflows", THREE_STEPS, key=viewer)[0] == 403
    assert api.post("/workflows", THREE_STEPS, key=operator)[0] == 403
    wf = api.create_workflow(THREE_STEPS)
    assert api.get("/workflows", key=viewer)[0] == 200
    assert api.post(f"/workflows/{wf}/executions", {"inputs": {"customer": "a", "amount": 1}}, key=viewer)[0] == 403
    assert api.post(f"/workflows/{wf}/executions", {"inputs": {"customer": "a", "amount": 1}}, key=operator)[0] == 201
    assert api.post("/keys", {"name": "x", "role": "admin"}, key=operator)[0] == 403


def test_keys_are_stored_hashed(api: Any, aws: Any) -> None:
    key = _key(api, "operator", "ops")
    from chalicelib.auth import hash_key

    record = aws.store.catalog.get_key(hash_key(key))
    assert record is not None and record.name == "ops"
    assert aws.store.catalog.get_key(key) is None, "the clear key must not be a lookup key"


def test_bad_key_request_names_fields(api: Any) -> None:
    status, body = api.post("/keys", {"name": "", "role": "root"})
    assert status == 400
    assert {e["field"] for e in body["errors"]} == {"name", "role"}


def test_invalid_definition_is_400_naming_each_field(api: Any) -> None:
    bad = copy.deepcopy(THREE_STEPS)
    bad["steps"][1]["id"] = "draft"
    bad["steps"][2]["agent"] = "teleport"
    bad["steps"][0]["instructions"] = "input.[["
    status, body = api.post("/workflows", bad)
    assert status == 400
    fields = {e["field"] for e in body["errors"]}
    assert {"steps[1].id", "steps[2].agent", "steps[0].instructions"} <= fields, fields


def test_malformed_json_and_non_object_bodies_are_400(api: Any) -> None:
    status, body = api.post("/workflows", "{not json")
    assert status == 400 and body["errors"][0]["field"] == "body"
    status, body = api.post("/workflows", "[1, 2]")
    assert status == 400 and "object" in body["Message"]


def test_invalid_inputs_are_400_naming_each_field(api: Any) -> None:
    wf = api.create_workflow(THREE_STEPS)
    status, body = api.post(f"/workflows/{wf}/executions", {"inputs": {"amount": "ten", "colour": "red"}})
    assert status == 400
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"inputs.customer", "inputs.amount", "inputs.colour"}, body
    assert api.get(f"/workflows/{wf}/executions")[1]["items"] == [], "nothing may start on bad input"


def test_unknown_resources_are_404(api: Any) -> None:
    assert api.get("/workflows/wf_missing")[0] == 404
    assert api.get("/executions/ex_missing")[0] == 404
    assert api.get("/executions/ex_missing/history")[0] == 404
    assert api.post("/workflows/wf_missing/executions", {"inputs": {}})[0] == 404
    assert api.post("/executions/ex_missing/cancel")[0] == 404


def test_update_creates_a_version_and_running_executions_keep_theirs(api: Any, worker: Any) -> None:
    wf = api.create_workflow(THREE_STEPS)
    first = api.start(wf, {"customer": "ACME", "amount": 2})
    changed = copy.deepcopy(THREE_STEPS)
    changed["steps"][2]["instructions"] = "'version two'"
    status, body = api.put(f"/workflows/{wf}", changed)
    assert status == 200 and body["version"] == 2
    second = api.start(wf, {"customer": "ACME", "amount": 2})
    worker.drain()
    one, two = api.execution(first["execution_id"]), api.execution(second["execution_id"])
    assert one["workflow_version"] == 1 and one["steps"][2]["output"] == "ACME owes"
    assert two["workflow_version"] == 2 and two["steps"][2]["output"] == "version two"
    status, body = api.get(f"/workflows/{wf}/versions/1")
    assert status == 200 and body["definition"]["steps"][2]["instructions"] == THREE_STEPS["steps"][2]["instructions"]


def test_disabled_workflow_refuses_manual_start_with_409(api: Any) -> None:
    wf = api.create_workflow(THREE_STEPS)
    status, body = api.post(f"/workflows/{wf}/disable")
    assert status == 200 and body["enabled"] is False
    status, body = api.post(f"/workflows/{wf}/executions", {"inputs": {"customer": "a", "amount": 1}})
    assert status == 409 and "disabled" in body["Message"]
    assert api.post(f"/workflows/{wf}/enable")[1]["enabled"] is True
    assert api.post(f"/workflows/{wf}/executions", {"inputs": {"customer": "a", "amount": 1}})[0] == 201


def test_idempotency_key_returns_the_same_execution(api: Any, worker: Any) -> None:
    wf = api.create_workflow(THREE_STEPS)
    inputs = {"customer": "ACME", "amount": 5}
    one = api.start(wf, inputs, headers={"Idempotency-Key": "order-42"})
    two = api.start(wf, inputs, headers={"Idempotency-Key": "order-42"})
    other = api.start(wf, inputs, headers={"Idempotency-Key": "order-43"})
    assert one["execution_id"] == two["execution_id"] != other["execution_id"]
    assert len(api.get(f"/workflows/{wf}/executions")[1]["items"]) == 2
    assert len(worker.drain()) == 2, "two executions, each chained by one worker"
    for execution_id in (one["execution_id"], other["execution_id"]):
        assert api.history_types(execution_id).count("step_started") == 3  # each step run once


def test_workflow_list_shows_active_count(api: Any, worker: Any) -> None:
    wf = api.create_workflow(THREE_STEPS)
    api.start(wf, {"customer": "a", "amount": 1})
    api.start(wf, {"customer": "b", "amount": 2})
    listed = {w["workflow_id"]: w for w in api.get("/workflows")[1]["items"]}
    assert listed[wf]["active_executions"] == 2
    assert listed[wf]["trigger"]["type"] == "manual" and listed[wf]["version"] == 1
    worker.drain()
    listed = {w["workflow_id"]: w for w in api.get("/workflows")[1]["items"]}
    assert listed[wf]["active_executions"] == 0


def test_json_body_is_read_whatever_content_type_curl_sent(api: Any) -> None:
    response = api.client.http.post(
        "/keys",
        headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/x-www-form-urlencoded"},
        body='{"name": "curl", "role": "viewer"}',
    )
    assert response.status_code == 201, response.body
