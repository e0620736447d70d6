"""Connections through the real handlers on moto: secrets in Secrets Manager only, the 400s of
definitions that name them, and DELETE refused while an enabled workflow uses one."""

from __future__ import annotations

import json
from typing import Any

import boto3

SECRET = "sk-test-7f3a9c2e51"


def _key(api: Any, role: str) -> str:
    status, body = api.post("/keys", {"name": f"{role}-1", "role": role})
    assert status == 201, body
    return body["key"]


def _http_workflow(connection: str, url: str = "https://api.example.com/x") -> dict[str, Any]:
    return {
        "name": "Call with a connection",
        "trigger": {"type": "manual"},
        "steps": [{"id": "call", "agent": "http", "config": {"url": url, "connection": connection}}],
    }


def _dump_table(name: str) -> str:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    return json.dumps(ddb.scan(TableName=name)["Items"])


def test_create_answers_no_secret_and_keeps_it_in_secrets_manager_only(api: Any, aws: Any) -> None:
    status, body = api.post("/connections", {"name": "openai-main", "kind": "openai", "api_key": SECRET})
    assert status == 201, body
    assert body["name"] == "openai-main" and body["kind"] == "openai"
    assert body["base_url"] == "https://api.openai.com/v1"
    assert body["secret_fields"] == ["api_key"]
    assert SECRET not in json.dumps(body)
    for path in ("/connections", "/connections/openai-main"):
        status, listed = api.get(path)
        assert status == 200 and SECRET not in json.dumps(listed)
    assert [c["name"] for c in api.get("/connections")[1]["items"]] == ["openai-main"]
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    stored = sm.get_secret_value(SecretId="stepline/dev/connections/openai-main")["SecretString"]
    assert json.loads(stored) == {"api_key": SECRET}
    assert SECRET not in _dump_table(aws.settings.catalog_table)


def test_put_rotates_the_secret_and_keeps_other_fields(api: Any, aws: Any) -> None:
    api.post("/connections", {"name": "billing", "kind": "basic", "username": "svc", "password": "old-pass-1"})
    status, body = api.put("/connections/billing", {"password": "new-pass-2"})
    assert status == 200, body
    assert body["username"] == "svc" and body["secret_fields"] == ["password"] and body["version"] == 2
    from chalicelib.engine.connections import connections_for

    resolved = connections_for(aws.settings).resolve("billing")
    assert resolved.secrets == {"password": "new-pass-2"} and "new-pass-2" not in repr(resolved)
    status, body = api.put("/connections/billing", {"kind": "bearer"})
    assert status == 400 and body["errors"][0]["field"] == "kind"


def test_bad_bodies_are_400_naming_the_field_and_taken_names_409(api: Any) -> None:
    cases = [
        ({"name": "Bad Name", "kind": "bearer", "token": "t0k3n-abc"}, "name"),
        ({"name": "x", "kind": "smtp"}, "kind"),
        ({"name": "x", "kind": ["openai"]}, "kind"),
        ({"name": ["x"], "kind": "bearer", "token": "t0k3n-abc"}, "name"),
        ({"name": "x", "kind": "bearer"}, "token"),
        ({"name": "x", "kind": "header", "header": "bad header", "value": "v-123"}, "header"),
        ({"name": "x", "kind": "openai", "base_url": "ftp://host/v1"}, "base_url"),
        ({"name": "x", "kind": "oauth2", "client_id": "c", "client_secret": "s-123"}, "token_url"),
        ({"name": "x", "kind": "bearer", "token": "t0k3n-abc", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        status, answer = api.post("/connections", body)
        assert status == 400, (body, answer)
        assert field in [e["field"] for e in answer["errors"]], answer
    assert api.post("/connections", {"name": "dup", "kind": "bearer", "token": "t0k3n-abc"})[0] == 201
    assert api.post("/connections", {"name": "dup", "kind": "bearer", "token": "t0k3n-xyz"})[0] == 409
    assert api.get("/connections/nope")[0] == 404


def test_viewer_and_operator_get_403_on_connections(api: Any) -> None:
    for role in ("viewer", "operator"):
        key = _key(api, role)
        assert api.get("/connections", key=key)[0] == 403
        assert api.post("/connections", {"name": "x", "kind": "bearer", "token": "t0k3n-abc"}, key=key)[0] == 403


def test_definitions_naming_unknown_or_wrong_kind_connections_are_400(api: Any) -> None:
    status, body = api.post("/workflows", _http_workflow("missing"))
    assert status == 400 and body["errors"][0]["field"] == "steps[0].config.connection"
    assert "unknown connection" in body["errors"][0]["message"]
    api.post("/connections", {"name": "model", "kind": "openai"})
    status, body = api.post("/workflows", _http_workflow("model"))
    assert status == 400 and body["errors"][0]["field"] == "steps[0].config.connection"
    assert "kind openai" in body["errors"][0]["message"]


def test_delete_is_409_while_an_enabled_workflow_uses_the_connection(api: Any, aws: Any) -> None:
    api.post("/connections", {"name": "crm", "kind": "bearer", "token": "t0k3n-crm-1"})
    workflow_id = api.create_workflow(_http_workflow("crm"))
    status, body = api.call("DELETE", "/connections/crm")
    assert status == 409 and workflow_id in body["Message"]
    assert api.get("/connections/crm")[1]["used_by"] == [workflow_id]
    assert api.post(f"/workflows/{workflow_id}/disable")[0] == 200
    status, _ = api.call("DELETE", "/connections/crm")
    assert status == 204
    assert api.get("/connections/crm")[0] == 404
    assert api.call("DELETE", "/connections/crm")[0] == 404
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    assert sm.list_secrets()["SecretList"] == []
