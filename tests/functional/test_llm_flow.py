"""The llm agent through the real handlers on moto, against a scripted OpenAI-compatible server:
structured output with usage, cannot_complete then edit-and-retry, a revoked key, and a whole
execution whose stored items, history and log lines never contain the connection's key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.fakes.providers import openai_completion, openai_error
from tests.fakes.scripted import Answer, ScriptedServer

KEY = "sk-live-3f9a1c77e2d54b"
CHAT = "/v1/chat/completions"
SCHEMA = {
    "type": "object",
    "properties": {"category": {"enum": ["billing", "bug", "other"]}, "summary": {"type": "string"}},
    "required": ["category", "summary"],
}


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")
    with ScriptedServer() as server:
        yield server


def _workflow(api: Any, provider: ScriptedServer, instructions: str = "Classify the ticket") -> str:
    status, body = api.post(
        "/connections", {"name": "local-llm", "kind": "openai", "base_url": provider.url + "/v1", "api_key": KEY}
    )
    assert status == 201, body
    return api.create_workflow(
        {
            "name": "Triage",
            "trigger": {"type": "manual", "inputs": [{"name": "ticket", "type": "string"}]},
            "steps": [
                {
                    "id": "triage",
                    "agent": "llm",
                    "instructions": instructions,
                    "config": {"connection": "local-llm", "model": "llama3.2", "output_schema": SCHEMA},
                    "retry": {"max_attempts": 1, "backoff_seconds": 0},
                },
                {"id": "route", "agent": "transform", "instructions": "prev.category"},
            ],
        }
    )


def test_structured_output_completes_with_usage_and_the_key_is_never_stored_or_logged(
    api: Any,
    worker: Any,
    provider: ScriptedServer,
    aws: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider.script(
        CHAT,
        Answer(
            200,
            openai_completion(
                '{"category": "billing", "summary": "charged twice"}', prompt_tokens=120, completion_tokens=30
            ),
        ),
    )
    workflow_id = _workflow(api, provider)
    execution_id = api.start(workflow_id, {"ticket": "I was charged twice"})["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed", execution
    triage = execution["steps"][0]
    assert triage["output"] == {"category": "billing", "summary": "charged twice"}
    assert triage["usage"] == {
        "model": "llama3.2",
        "input_tokens": 120,
        "output_tokens": 30,
        "requests": 1,
        "cost_usd": None,  # the connection has no prices
    }
    assert execution["steps"][1]["output"] == "billing"
    assert provider.requests(CHAT)[0].headers["authorization"] == f"Bearer {KEY}"

    answers = [
        json.dumps(api.get(path)[1])
        for path in (
            f"/executions/{execution_id}",
            f"/executions/{execution_id}/history",
            "/connections",
            "/connections/local-llm",
            f"/workflows/{workflow_id}",
            f"/workflows/{workflow_id}/stats",
        )
    ]
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    stored = [json.dumps(ddb.scan(TableName=t)["Items"]) for t in ddb.list_tables()["TableNames"]]
    s3 = boto3.client("s3", region_name="us-east-1")
    objects = [
        s3.get_object(Bucket=b["Name"], Key=o["Key"])["Body"].read().decode("utf-8", "replace")
        for b in s3.list_buckets()["Buckets"]
        for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])
    ]
    out, err = capfd.readouterr()
    logs = [out, err, caplog.text]
    assert "triage" in out + caplog.text  # the step's log lines were captured
    for text in answers + stored + objects + logs:
        assert KEY not in text


def test_cannot_complete_then_edit_and_retry_sends_the_new_instructions(
    api: Any, worker: Any, provider: ScriptedServer
) -> None:
    provider.script(
        CHAT,
        Answer(
            200,
            openai_completion(
                None,
                [
                    (
                        "cannot_complete",
                        {"reason": "The instructions do not say which categories exist", "missing": ["categories"]},
                    )
                ],
            ),
        ),
        Answer(200, openai_completion('{"category": "bug", "summary": "crash on save"}')),
    )
    workflow_id = _workflow(api, provider, instructions="Classify it")
    execution_id = api.start(workflow_id, {"ticket": "The app crashes on save"})["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "failed"
    error = execution["steps"][0]["error"]
    assert error["kind"] == "agent" and error["message"] == "The instructions do not say which categories exist"
    assert error["missing"] == ["categories"] and error["action"] == "edit_and_retry"
    assert execution["steps"][0]["usage"]["requests"] == 1

    new = "Classify it as billing, bug or other"
    status, body = api.post(f"/executions/{execution_id}/steps/triage/retry", {"instructions": new})
    assert status == 200, body
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed"
    assert execution["steps"][0]["output"]["category"] == "bug"
    retried = provider.requests(CHAT)[1].json["messages"][1]["content"]
    assert new in retried and "Instructions:\nClassify it\n" not in retried


def test_a_revoked_key_fails_as_integration_naming_the_connection(
    api: Any, worker: Any, provider: ScriptedServer
) -> None:
    provider.script(
        CHAT, openai_error(401, f"Incorrect API key provided: {KEY[:8]}...", "invalid_request_error", "invalid_api_key")
    )
    workflow_id = _workflow(api, provider)
    execution_id = api.start(workflow_id, {"ticket": "?"})["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    error = execution["steps"][0]["error"]
    assert execution["status"] == "failed" and error["kind"] == "integration"
    assert error["retryable"] is False and error["action"] == "update_connection"
    assert "local-llm" in error["message"] and KEY not in json.dumps(execution)


def test_no_model_server_answering_says_how_to_connect_one(api: Any, worker: Any, provider: ScriptedServer) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    status, _ = api.post(
        "/connections", {"name": "nobody", "kind": "openai", "base_url": f"http://127.0.0.1:{closed}/v1"}
    )
    assert status == 201
    workflow_id = api.create_workflow(
        {
            "name": "Lonely",
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "ask",
                    "agent": "llm",
                    "instructions": "Say hi",
                    "config": {"connection": "nobody", "model": "m"},
                    "retry": {"max_attempts": 1, "backoff_seconds": 0},
                }
            ],
        }
    )
    execution_id = api.start(workflow_id)["execution_id"]
    worker.drain()
    error = api.execution(execution_id)["steps"][0]["error"]
    assert error["kind"] == "integration" and error["retryable"] is True and error["action"] == "retry"
    assert "could not reach the model provider of connection nobody" in error["message"]
    assert "PUT /connections/nobody" in error["message"]


def test_stepline_show_lists_usage_tool_calls_and_the_recommended_action(
    api: Any, worker: Any, provider: ScriptedServer
) -> None:
    from stepline_cli.agentnotes import agent_notes

    provider.script(
        CHAT,
        Answer(200, openai_completion(None, [("cannot_complete", {"reason": "Which ticket?", "missing": ["ticket"]})])),
    )
    execution_id = api.start(_workflow(api, provider), {"ticket": ""})["execution_id"]
    worker.drain()
    step = api.execution(execution_id)["steps"][0]
    assert agent_notes(step) == ["llama3.2: 57 in / 17 out tokens", "missing: ticket", "recommended: edit and retry"]
    done = {
        "usage": {"model": "m", "input_tokens": 3, "output_tokens": 4},
        "output": {"text": "x", "tool_calls": [{"name": "lookup", "status": 200}]},
    }
    assert agent_notes(done) == ["m: 3 in / 4 out tokens", "tool calls: lookup→200"]


def test_tokens_of_every_attempt_are_summed_per_bucket_in_the_stats(
    api: Any, worker: Any, provider: ScriptedServer
) -> None:
    provider.script(
        CHAT,
        Answer(200, openai_completion("not json", prompt_tokens=100, completion_tokens=10)),
        Answer(200, openai_completion("still not json", prompt_tokens=110, completion_tokens=11)),
        Answer(200, openai_completion('{"category": "bug", "summary": "s"}', prompt_tokens=50, completion_tokens=5)),
    )
    workflow_id = _workflow(api, provider)
    execution_id = api.start(workflow_id, {"ticket": "crash"})["execution_id"]
    worker.drain()  # two requests (one repair), then the step fails as agent
    assert api.execution(execution_id)["steps"][0]["error"]["kind"] == "agent"
    assert api.post(f"/executions/{execution_id}/steps/triage/retry")[0] == 200
    worker.drain()
    assert api.execution(execution_id)["status"] == "completed"
    status, stats = api.get(f"/workflows/{workflow_id}/stats?bucket=hour")
    assert status == 200
    assert stats["totals"]["tokens"] == {"input_tokens": 260, "output_tokens": 26, "requests": 3}
    assert sum(b["tokens"]["input_tokens"] for b in stats["buckets"]) == 260
    assert [b["tokens"]["requests"] for b in stats["buckets"] if b["tokens"]["requests"]] == [3]


def test_cancel_report_lists_the_tool_calls_cancelling_does_not_undo(
    api: Any, worker: Any, provider: ScriptedServer
) -> None:
    with ScriptedServer() as tools:
        tools.script("/refunds", Answer(201, {"refund": "R-9"}))
        provider.script(
            CHAT,
            Answer(200, openai_completion(None, [("refund", {"amount": 12})])),
            Answer(200, openai_completion("Refunded.")),
        )
        api.post("/connections", {"name": "model", "kind": "openai", "base_url": provider.url + "/v1"})
        workflow_id = api.create_workflow(
            {
                "name": "Refund",
                "trigger": {"type": "manual"},
                "steps": [
                    {
                        "id": "act",
                        "agent": "llm",
                        "instructions": "Refund the customer",
                        "config": {
                            "connection": "model",
                            "model": "m",
                            "tools": [
                                {
                                    "name": "refund",
                                    "description": "Refund",
                                    "method": "POST",
                                    "url": tools.url + "/refunds",
                                    "parameters": {"type": "object", "properties": {"amount": {"type": "number"}}},
                                }
                            ],
                        },
                    },
                    {"id": "confirm", "agent": "transform", "instructions": "prev", "gate": {"type": "approval"}},
                ],
            }
        )
        execution_id = api.start(workflow_id)["execution_id"]
        worker.drain()
        assert tools.requests("/refunds")[0].headers["idempotency-key"] == f"{execution_id}:act:1:1"
    status, cancelled = api.post(f"/executions/{execution_id}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    [call] = cancelled["tool_calls_not_undone"]
    assert call["step_id"] == "act" and call["name"] == "refund" and call["status"] == 201
    assert call["arguments"] == {"amount": 12} and call["idempotency_key"] == f"{execution_id}:act:1:1"
