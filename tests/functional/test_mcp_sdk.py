"""``POST /mcp`` driven by the official MCP Python SDK (``mcp``) against the real local server
(``python -m chalicelib.local.server``, what ``make run`` starts: the app, its SQS worker and
moto), as an AI client would use it.

The SDK client negotiates as it does with any server (its default ``auto`` mode first probes
the newer handshake-free protocol, then falls back to ``initialize``), lists the tools, starts
a workflow, follows it with ``get_execution``, decides a gate with ``approve_step`` and retries
a step with ``retry_step`` (its side effects replayed). The server runs in its own process, one
for the module; state is set up and checked over REST.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from tests.fakes.scripted import Answer, ScriptedServer

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "mcp-sdk-test-admin-key"


class Rest:
    """JSON over HTTP to the served API."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: Any = None, key: str | None = ADMIN_KEY) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, body
        return body

    def create_workflow(self, definition: dict[str, Any]) -> str:
        status, body = self.call("POST", "/workflows", definition)
        assert status == 201, body
        return body["workflow_id"]

    def key(self, name: str, role: str) -> str:
        status, body = self.call("POST", "/keys", {"name": name, "role": role})
        assert status == 201, body
        return body["key"]

    def tool_of(self, workflow_id: str) -> str:
        return next(n for n, wid in self.get("/tools")["workflows"].items() if wid == workflow_id)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rest]:
    """The local server on a free port of 127.0.0.1 with a fixed admin key."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", STEPLINE_ADMIN_KEY=ADMIN_KEY, PYTHONUNBUFFERED="1")
    for name in ("AWS_ENDPOINT_URL", "STEPLINE_USE_REAL_AWS", "STEPLINE_MOTO_PORT"):
        env.pop(name, None)  # always the embedded moto, never a real account
    logs = tmp_path_factory.mktemp("mcp") / "server.log"
    with logs.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "chalicelib.local.server"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    rest = Rest(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited ({process.returncode}):\n{logs.read_text()}")
            try:
                if rest.call("GET", "/health", key=None)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /health:\n{logs.read_text()}")
            time.sleep(0.25)
        yield rest
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


GREET = {
    "name": "Greet a customer",
    "description": "Writes a greeting for a customer.",
    "trigger": {
        "type": "manual",
        "inputs": [
            {"name": "who", "type": "string", "required": True, "description": "The customer's name"},
            {"name": "tone", "type": "enum", "options": ["warm", "dry"], "required": False, "default": "warm"},
        ],
    },
    "steps": [
        {
            "id": "greet",
            "agent": "transform",
            "instructions": "{text: join(' ', ['Hello', input.who]), tone: input.tone}",
        }
    ],
}
GATED = {
    "name": "Refund",
    "description": "Refunds an order once a manager agrees.",
    "trigger": {"type": "manual", "inputs": [{"name": "amount", "type": "number", "required": True}]},
    "steps": [
        {"id": "draft", "agent": "transform", "instructions": "{refund: input.amount}"},
        {
            "id": "approve",
            "name": "Manager approval",
            "agent": "transform",
            "instructions": "prev",
            "gate": {"type": "approval", "approvers": ["operator"]},
        },
        {"id": "done", "agent": "transform", "instructions": "{refunded: steps.draft.output.refund}"},
    ],
}
CLIENT = Implementation(name="stepline-test-assistant", version="4.2.0")


@asynccontextmanager
async def _client(base: str, key: str, **kw: Any) -> AsyncIterator[Client]:
    """An SDK client with the key's header; its HTTP connections are closed on the way out."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http), client_info=CLIENT, **kw) as client,
    ):
        yield client


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


def test_sdk_client_lists_workflow_tools_starts_one_and_watches_it_complete(served: Rest) -> None:
    workflow_id = served.create_workflow(GREET)
    rest_tools = served.get("/tools")
    name = served.tool_of(workflow_id)

    async def scenario() -> tuple[Any, ...]:
        async with _client(served.base, ADMIN_KEY) as client:
            version = client.protocol_version
            tools = {t.name: t for t in (await client.list_tools()).tools}
            started = await client.call_tool(name, {"who": "Ada"})
            finished = await _until(client, started.structured_content["execution_id"], {"completed", "failed"})
            return version, tools, started, finished

    version, tools, started, finished = asyncio.run(scenario())
    assert version in ("2025-11-25", "2025-06-18")
    assert {"get_execution", "list_executions", "approve_step", "reject_step", name} <= set(tools)
    rest = next(t for t in rest_tools["tools"] if t["name"] == name)
    assert tools[name].input_schema == rest["input_schema"]  # the same schema as GET /tools
    assert "Writes a greeting" in tools[name].description and "The customer's name" in tools[name].description
    # The server's worker may finish this one-step run before the answer is built.
    assert not started.is_error and started.structured_content["status"] in ("running", "completed")
    assert json.loads(started.content[1].text) == started.structured_content  # the JSON as text too
    assert finished["status"] == "completed", finished
    assert finished["outputs"]["greet"] == {"text": "Hello Ada", "tone": "warm"}
    trigger = served.get(f"/executions/{finished['execution_id']}")["trigger"]
    assert trigger["via"] == "mcp" and trigger["by"] == "admin" and trigger["tool"] == name
    assert trigger["client"] == {"name": "stepline-test-assistant", "version": "4.2.0"}
    page = served.get(f"/workflows/{workflow_id}/executions?trigger=manual")
    assert [i["execution_id"] for i in page["items"]] == [finished["execution_id"]]


def test_gate_seen_waiting_viewer_refused_operator_approves_with_comment(served: Rest) -> None:
    workflow_id = served.create_workflow(GATED)
    viewer, operator = served.key("vera", "viewer"), served.key("otto", "operator")
    tool = served.tool_of(workflow_id)

    async def scenario() -> tuple[Any, ...]:
        async with _client(served.base, ADMIN_KEY, mode="legacy") as admin:
            execution_id = (await admin.call_tool(tool, {"amount": 12.5})).structured_content["execution_id"]
            waiting = await _until(admin, execution_id, {"waiting", "failed", "completed"})
        async with _client(served.base, viewer) as as_viewer:
            refused = await as_viewer.call_tool(
                "approve_step", {"execution_id": execution_id, "step_id": "approve", "comment": "looks fine"}
            )
            seen = await as_viewer.call_tool("get_execution", {"execution_id": execution_id})
        async with _client(served.base, operator) as as_operator:
            approved = await as_operator.call_tool(
                "approve_step", {"execution_id": execution_id, "step_id": "approve", "comment": "ok by me"}
            )
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
    history = served.get(f"/executions/{done['execution_id']}/history")["items"]
    granted = [e for e in history if e["type"] == "approval_granted"]
    assert len(granted) == 1 and granted[0]["actor"] == "otto" and granted[0]["details"]["comment"] == "ok by me"


def test_reject_by_a_key_the_gate_does_not_name_is_refused(served: Rest) -> None:
    gated = {
        **GATED,
        "name": "Refund to a manager",
        "steps": [
            dict(GATED["steps"][0]),
            {**GATED["steps"][1], "gate": {"type": "approval", "approvers": ["manager-key"]}},
        ],
    }
    workflow_id = served.create_workflow(gated)
    operator = served.key("olga", "operator")
    status, started = served.call("POST", f"/workflows/{workflow_id}/executions", {"inputs": {"amount": 3}})
    assert status == 201, started
    execution_id = started["execution_id"]

    async def scenario() -> Any:
        async with _client(served.base, operator) as client:
            await _until(client, execution_id, {"waiting"})
            return await client.call_tool(
                "reject_step", {"execution_id": execution_id, "step_id": "approve", "comment": "the amount is wrong"}
            )

    result = asyncio.run(scenario())
    assert result.is_error and "not an approver" in result.content[0].text
    assert served.get(f"/executions/{execution_id}")["status"] == "waiting"


def test_post_mcp_without_or_with_an_unknown_key_is_401(served: Rest) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for key in (None, "not-a-key"):
        status, body = served.call("POST", "/mcp", message, key=key)
        assert status == 401, body

    async def scenario() -> None:
        async with _client(served.base, "not-a-key"):
            pass

    with pytest.raises(Exception):  # noqa: B017 - the SDK's error type for a refused connection is not public API; the SDK cannot connect without a valid key
        asyncio.run(scenario())


def test_retry_step_replays_the_post_the_failed_step_already_made(served: Rest) -> None:
    with ScriptedServer() as integration:
        integration.script("/charges", Answer(201, {"charge": "C-1"}), Answer(201, {"charge": "C-2"}))
        workflow_id = served.create_workflow(
            {
                "name": "Charge over MCP",
                "trigger": {"type": "manual"},
                "steps": [
                    {
                        "id": "charge",
                        "agent": "http",
                        "config": {"url": integration.url + "/charges", "method": "POST"},
                        "gate": {"type": "approval"},
                    }
                ],
            }
        )
        status, started = served.call("POST", f"/workflows/{workflow_id}/executions", {"inputs": {}})
        assert status == 201, started
        execution_id = started["execution_id"]

        async def scenario() -> tuple[Any, ...]:
            async with _client(served.base, ADMIN_KEY) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                await _until(client, execution_id, {"waiting"})
                served.call("POST", f"/executions/{execution_id}/steps/charge/reject", {"comment": "wrong customer"})
                failed = await _until(client, execution_id, {"failed"})
                retried = await client.call_tool(
                    "retry_step", {"execution_id": execution_id, "step_id": "charge", "side_effects": "replay"}
                )
                again = await _until(client, execution_id, {"waiting"})
                return tools, failed, retried, again

        tools, failed, retried, again = asyncio.run(scenario())
        assert tools["retry_step"].input_schema["properties"]["side_effects"]["enum"] == ["replay", "rerun"]
        assert failed["awaiting"][0]["side_effects_summary"] == "made 1 POST call"
        assert not retried.is_error and "side effects: replay" in retried.content[0].text
        assert again["status"] == "waiting"
        assert len(integration.requests("/charges")) == 1  # replayed, not called again
        step = served.get(f"/executions/{execution_id}")["steps"][0]
        assert [e["status"] for e in step["side_effects"]] == ["succeeded", "replayed"]
