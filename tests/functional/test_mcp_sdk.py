"""``POST /mcp`` driven by the official MCP Python SDK (``mcp``) against the real app served on
127.0.0.1, with its SQS worker running, as an AI client would use it.

The SDK client negotiates as it does with any server (its default ``auto`` mode first probes
the newer handshake-free protocol, then falls back to ``initialize``), lists the tools, starts
a workflow, follows it with ``get_execution`` and decides a gate with ``approve_step``.
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from tests.conftest import ADMIN_KEY, Api
from tests.functional.served import serve, working

GREET = {
    "name": "Greet a customer", "description": "Writes a greeting for a customer.",
    "trigger": {"type": "manual", "inputs": [
        {"name": "who", "type": "string", "required": True, "description": "The customer's name"},
        {"name": "tone", "type": "enum", "options": ["warm", "dry"], "required": False, "default": "warm"}]},
    "steps": [{"id": "greet", "agent": "transform", "instructions": "{text: join(' ', ['Hello', input.who]), tone: input.tone}"}],
}
GATED = {
    "name": "Refund", "description": "Refunds an order once a manager agrees.",
    "trigger": {"type": "manual", "inputs": [{"name": "amount", "type": "number", "required": True}]},
    "steps": [{"id": "draft", "agent": "transform", "instructions": "{refund: input.amount}"},
              {"id": "approve", "name": "Manager approval", "agent": "transform", "instructions": "prev",
               "gate": {"type": "approval", "approvers": ["operator"]}},
              {"id": "done", "agent": "transform", "instructions": "{refunded: steps.draft.output.refund}"}],
}
CLIENT = Implementation(name="stepline-test-assistant", version="4.2.0")


@pytest.fixture
def served(api: Api, client: Any) -> Iterator[str]:
    from app import app

    with serve(app) as base, working(app):
        yield base


def _key(api: Api, name: str, role: str) -> str:
    status, body = api.post("/keys", {"name": name, "role": role})
    assert status == 201, body
    return body["key"]


def _client(base: str, key: str, **kw: Any) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return Client(streamable_http_client(f"{base}/mcp", http_client=http), client_info=CLIENT, **kw)


async def _until(client: Client, execution_id: str, statuses: set[str]) -> dict[str, Any]:
    """Poll get_execution (as a model would) until the status is one of ``statuses``."""
    deadline = time.monotonic() + 60
    while True:
        result = await client.call_tool("get_execution", {"execution_id": execution_id})
        assert not result.is_error, result.content
        data = result.structured_content
        if data["status"] in statuses or time.monotonic() > deadline:
            return data
        await asyncio.sleep(0.05)


def test_sdk_client_lists_workflow_tools_starts_one_and_watches_it_complete(api: Api, served: str) -> None:
    workflow_id = api.create_workflow(GREET)
    rest_tools = api.get("/tools")[1]

    async def scenario() -> tuple[Any, ...]:
        async with _client(served, ADMIN_KEY) as client:
            version = client.protocol_version
            tools = {t.name: t for t in (await client.list_tools()).tools}
            name = next(n for n, wid in rest_tools["workflows"].items() if wid == workflow_id)
            started = await client.call_tool(name, {"who": "Ada"})
            finished = await _until(client, started.structured_content["execution_id"], {"completed", "failed"})
            return version, tools, name, started, finished

    version, tools, name, started, finished = asyncio.run(scenario())
    assert version in ("2025-11-25", "2025-06-18")
    assert {"get_execution", "list_executions", "approve_step", "reject_step", name} <= set(tools)
    rest = next(t for t in rest_tools["tools"] if t["name"] == name)
    assert tools[name].input_schema == rest["input_schema"]  # the same schema as GET /tools
    assert "Writes a greeting" in tools[name].description and "The customer's name" in tools[name].description
    assert not started.is_error and started.structured_content["status"] == "running"
    assert json.loads(started.content[1].text) == started.structured_content  # the JSON as text too
    assert finished["status"] == "completed", finished
    assert finished["outputs"]["greet"] == {"text": "Hello Ada", "tone": "warm"}
    trigger = api.execution(finished["execution_id"])["trigger"]
    assert trigger["via"] == "mcp" and trigger["by"] == "admin" and trigger["tool"] == name
    assert trigger["client"] == {"name": "stepline-test-assistant", "version": "4.2.0"}
    status, page = api.get(f"/workflows/{workflow_id}/executions?trigger=manual")
    assert status == 200 and [i["execution_id"] for i in page["items"]] == [finished["execution_id"]]


def test_gate_seen_waiting_viewer_refused_operator_approves_with_comment(api: Api, served: str) -> None:
    workflow_id = api.create_workflow(GATED)
    viewer, operator = _key(api, "vera", "viewer"), _key(api, "otto", "operator")
    tool = next(n for n, wid in api.get("/tools")[1]["workflows"].items() if wid == workflow_id)

    async def scenario() -> tuple[Any, ...]:
        async with _client(served, ADMIN_KEY, mode="legacy") as admin:
            execution_id = (await admin.call_tool(tool, {"amount": 12.5})).structured_content["execution_id"]
            waiting = await _until(admin, execution_id, {"waiting", "failed", "completed"})
        async with _client(served, viewer) as as_viewer:
            refused = await as_viewer.call_tool("approve_step", {"execution_id": execution_id, "step_id": "approve",
                                                                 "comment": "looks fine"})
            seen = await as_viewer.call_tool("get_execution", {"execution_id": execution_id})
        async with _client(served, operator) as as_operator:
            approved = await as_operator.call_tool("approve_step", {"execution_id": execution_id,
                                                                    "step_id": "approve", "comment": "ok by me"})
            done = await _until(as_operator, execution_id, {"completed", "failed"})
        return waiting, refused, seen, approved, done

    waiting, refused, seen, approved, done = asyncio.run(scenario())
    assert waiting["status"] == "waiting", waiting
    assert waiting["current_step"]["id"] == "approve"
    assert waiting["awaiting"][0]["step_id"] == "approve" and waiting["awaiting"][0]["approvers"] == ["operator"]
    assert waiting["awaiting"][0]["output"] == {"refund": 12.5}
    assert refused.is_error and "operator role" in refused.content[0].text
    assert refused.structured_content["error"]["status"] == 403
    assert seen.structured_content["status"] == "waiting"  # the refusal changed nothing
    assert not approved.is_error
    assert done["status"] == "completed" and done["outputs"]["done"] == {"refunded": 12.5}
    history = api.get(f"/executions/{done['execution_id']}/history")[1]["items"]
    granted = [e for e in history if e["type"] == "approval_granted"]
    assert len(granted) == 1 and granted[0]["actor"] == "otto" and granted[0]["details"]["comment"] == "ok by me"


def test_reject_by_a_key_the_gate_does_not_name_is_refused(api: Api, served: str) -> None:
    gated = {**GATED, "steps": [dict(GATED["steps"][0]), {**GATED["steps"][1], "gate": {
        "type": "approval", "approvers": ["manager-key"]}}]}
    workflow_id = api.create_workflow(gated)
    operator = _key(api, "otto", "operator")
    execution_id = api.start(workflow_id, {"amount": 3})["execution_id"]

    async def scenario() -> Any:
        async with _client(served, operator) as client:
            await _until(client, execution_id, {"waiting"})
            return await client.call_tool("reject_step", {"execution_id": execution_id, "step_id": "approve"})

    result = asyncio.run(scenario())
    assert result.is_error and "not an approver" in result.content[0].text
    assert api.execution(execution_id)["status"] == "waiting"


def test_post_mcp_without_or_with_an_unknown_key_is_401(served: str) -> None:
    message = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    for headers in ({}, {"Authorization": "Bearer not-a-key"}):
        request = urllib.request.Request(f"{served}/mcp", data=message, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Accept": "application/json, text/event-stream", **headers})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 401
