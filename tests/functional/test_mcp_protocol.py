"""``POST /mcp`` at the wire level, through the real Chalice handler: version negotiation,
stateless sessions, JSON-RPC errors for malformed messages, tool errors for refused calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api

FLOW = {
    "name": "Echo",
    "trigger": {"type": "manual", "inputs": [{"name": "n", "type": "integer", "required": True}]},
    "steps": [{"id": "echo", "agent": "transform", "instructions": "input"}],
}


def _rpc(api: Api, message: Any, headers: dict[str, str] | None = None, key: str | None = None) -> Any:
    body = message if isinstance(message, (str, bytes)) else json.dumps(message)
    return api.client.http.post("/mcp", headers={**api.headers(key), **(headers or {})}, body=body)


def _initialize(api: Api, version: str = "2025-11-25", client: dict[str, str] | None = None) -> Any:
    return _rpc(
        api,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": client or {"name": "raw", "version": "1"},
            },
        },
    )


def _call(api: Api, name: str, arguments: Any, headers: dict[str, str] | None = None, key: str | None = None) -> Any:
    response = _rpc(
        api,
        {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments}},
        headers,
        key,
    )
    assert response.status_code == 200, response.body
    return json.loads(response.body)


@pytest.mark.parametrize(
    "asked, answered",
    [
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
        ("2099-01-01", "2025-11-25"),
    ],
)
def test_initialize_negotiates_the_protocol_version(api: Api, asked: str, answered: str) -> None:
    response = _initialize(api, asked)
    assert response.status_code == 200
    result = json.loads(response.body)["result"]
    assert result["protocolVersion"] == answered
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["serverInfo"]["name"] == "stepline"
    assert response.headers["Mcp-Session-Id"].startswith("s1.")


def test_the_session_id_carries_the_client_to_a_later_call_on_any_container(api: Api, aws: Any) -> None:
    from chalicelib.engine import Engine, reset_engine

    workflow_id = api.create_workflow(FLOW)
    session = _initialize(api, client={"name": "desk-assistant", "version": "0.9"}).headers["Mcp-Session-Id"]
    tool = next(iter(api.get("/tools")[1]["workflows"]))
    # A fresh engine stands in for another Lambda container: nothing is kept between requests.
    reset_engine(Engine.build(aws.settings, clock=aws.executions.clock))
    answer = _call(api, tool, {"n": 3}, {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
    trigger = api.execution(answer["result"]["structuredContent"]["execution_id"])["trigger"]
    assert trigger["client"] == {"name": "desk-assistant", "version": "0.9"} and trigger["via"] == "mcp"
    assert api.get(f"/workflows/{workflow_id}")[0] == 200


def test_a_session_id_the_server_did_not_issue_is_404(api: Api) -> None:
    response = _rpc(api, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, {"Mcp-Session-Id": "forged"})
    assert response.status_code == 404
    assert json.loads(response.body)["error"]["code"] == -32600


def test_an_unsupported_protocol_version_header_is_400_but_initialize_still_negotiates(api: Api) -> None:
    response = _rpc(api, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, {"MCP-Protocol-Version": "2026-07-28"})
    assert response.status_code == 400 and "2025-06-18" in json.loads(response.body)["error"]["message"]
    response = _rpc(
        api,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "x", "version": "1"},
            },
        },
        {"MCP-Protocol-Version": "2026-07-28"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body, status, code",
    [
        ("{not json", 400, -32700),
        ('{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": NaN}}', 400, -32700),
        ("[" * 5000 + "]" * 5000, 400, -32700),
        (b"\xff\xfe", 400, -32700),
        ("[]", 400, -32600),
        ('[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', 400, -32600),
        ('"hello"', 400, -32600),
        ('{"id": 1, "method": "ping"}', 400, -32600),
        ('{"jsonrpc": "2.0", "id": true, "method": "ping"}', 400, -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": 5}', 400, -32600),
        # params must be an object (the OpenAPI says so): refused at the transport, with the JSON-RPC code
        ('{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]}', 400, -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "resources/list"}', 200, -32601),
        ('{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "no_such_tool"}}', 200, -32602),
        (
            '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_execution", "arguments": 3}}',
            200,
            -32602,
        ),
        ('{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {}}}', 200, -32602),
    ],
)
def test_malformed_messages_get_a_json_rpc_error_never_a_500(api: Api, body: Any, status: int, code: int) -> None:
    response = _rpc(api, body)
    assert response.status_code == status, response.body
    answer = json.loads(response.body)
    assert answer["jsonrpc"] == "2.0" and answer["error"]["code"] == code


def test_notifications_and_responses_are_accepted_without_a_body(api: Api) -> None:
    for message in (
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 9, "result": {}},
    ):
        response = _rpc(api, message)
        assert response.status_code == 202 and not response.body


def test_ping_and_a_foreign_browser_origin(api: Api) -> None:
    assert json.loads(_rpc(api, {"jsonrpc": "2.0", "id": "a", "method": "ping"}).body) == {
        "jsonrpc": "2.0",
        "id": "a",
        "result": {},
    }
    response = _rpc(api, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"Origin": "https://evil.example"})
    assert response.status_code == 403


def test_get_offers_no_event_stream_and_delete_ends_nothing(api: Api) -> None:
    assert api.client.http.get("/mcp", headers={"Accept": "text/event-stream"}).status_code == 405
    assert api.client.http.get("/mcp").status_code == 200
    assert api.client.http.delete("/mcp").status_code == 204


def test_refused_calls_are_tool_errors_with_the_reason(api: Api) -> None:
    workflow_id = api.create_workflow(FLOW)
    tool = next(iter(api.get("/tools")[1]["workflows"]))
    bad_input = _call(api, tool, {"n": "three"})["result"]
    assert bad_input["isError"] and bad_input["structuredContent"]["error"]["errors"][0]["field"].endswith("n")
    unknown = _call(api, "get_execution", {"execution_id": "ex_nope"})["result"]
    assert unknown["isError"] and unknown["structuredContent"]["error"]["status"] == 404
    extra = _call(api, "get_execution", {"execution_id": "ex_x", "verbose": True})["result"]
    assert extra["isError"] and "verbose" in extra["content"][0]["text"]
    for arguments in (
        {"status": "sleeping"},
        {"from": "yesterday"},
        {"limit": 0},
        {"next_token": "garbage"},
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    ):
        listed = _call(api, "list_executions", arguments)["result"]
        assert listed["isError"], arguments
    api.post(f"/workflows/{workflow_id}/disable")
    disabled = _call(api, tool, {"n": 1})["result"]
    assert disabled["isError"] and disabled["structuredContent"]["error"]["status"] == 409


def test_viewer_may_read_but_not_start(api: Api) -> None:
    api.create_workflow(FLOW)
    viewer = api.post("/keys", {"name": "vic", "role": "viewer"})[1]["key"]
    tool = next(iter(api.get("/tools")[1]["workflows"]))
    started = _call(api, tool, {"n": 1}, key=viewer)["result"]
    assert started["isError"] and "operator role" in started["content"][0]["text"]
    listed = _call(api, "list_executions", {}, key=viewer)["result"]
    assert not listed["isError"] and listed["structuredContent"]["items"] == []


def test_list_executions_takes_the_rest_filters(api: Api, worker: Any, clock: Any) -> None:
    workflow_id = api.create_workflow(FLOW)
    first = api.start(workflow_id, {"n": 1})["execution_id"]
    worker.drain()
    clock.advance(1)  # newest first: the second starts later
    second = api.start(workflow_id, {"n": 2})["execution_id"]
    done = _call(api, "list_executions", {"workflow_id": workflow_id, "status": "completed"})["result"]
    assert [i["execution_id"] for i in done["structuredContent"]["items"]] == [first]
    page = _call(api, "list_executions", {"workflow_id": workflow_id, "limit": 1})["result"]["structuredContent"]
    assert [i["execution_id"] for i in page["items"]] == [second] and page["next_token"]
    rest = _call(api, "list_executions", {"workflow_id": workflow_id, "limit": 1, "next_token": page["next_token"]})[
        "result"
    ]["structuredContent"]
    assert [i["execution_id"] for i in rest["items"]] == [first]
