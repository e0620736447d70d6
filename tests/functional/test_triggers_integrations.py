"""EventBridge integration events through the real ``on_cw_event`` handler, and workflows
as LLM tools through ``GET /tools`` and ``POST /tools/{name}/invoke``."""

from __future__ import annotations

from typing import Any

STEPS = [{"id": "echo", "agent": "transform", "instructions": "input"}]


def s3_workflow(bucket: str = "uploads", name: str = "On upload") -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {
            "type": "event",
            "source": "aws.s3",
            "event_type": "Object Created",
            "filter": f"detail.bucket.name == '{bucket}'",
        },
        "steps": STEPS,
    }


def s3_event(client: Any, bucket: str, key: str, event_id: str) -> dict[str, Any]:
    event = client.events.generate_cw_event(
        source="aws.s3",
        detail_type="Object Created",
        detail={"bucket": {"name": bucket}, "object": {"key": key}},
        resources=[f"arn:aws:s3:::{bucket}"],
    )
    event["id"] = event_id
    return event


def executions_of(api: Any, workflow_id: str) -> list[dict[str, Any]]:
    return api.get(f"/workflows/{workflow_id}/executions")[1]["items"]


def test_eventbridge_s3_event_starts_matching_workflows_once(api: Any, client: Any) -> None:
    uploads = api.create_workflow(s3_workflow("uploads"))
    archive = api.create_workflow(s3_workflow("archive", name="On archive"))
    event = s3_event(client, "uploads", "in/report.csv", "eb-1")
    client.lambda_.invoke("integration_event", event)
    client.lambda_.invoke("integration_event", event)  # EventBridge delivers at least once
    [summary] = executions_of(api, uploads)
    execution = api.execution(summary["execution_id"])
    assert execution["trigger"]["type"] == "event"
    assert execution["trigger"]["source"] == "aws.s3" and execution["trigger"]["event_type"] == "Object Created"
    assert execution["input"]["detail"]["object"]["key"] == "in/report.csv"
    assert executions_of(api, archive) == []
    status, stored = api.get(f"/events/{execution['trigger']['event_id']}")
    assert status == 200 and stored["via"] == "eventbridge" and stored["executions"] == [summary["execution_id"]]
    client.lambda_.invoke("integration_event", s3_event(client, "uploads", "in/second.csv", "eb-2"))
    assert len(executions_of(api, uploads)) == 2


def test_eventbridge_event_without_a_matching_workflow_is_stored_and_starts_nothing(api: Any, client: Any) -> None:
    wf = api.create_workflow(s3_workflow("uploads"))
    event = client.events.generate_cw_event(
        source="aws.ec2",
        detail_type="EC2 Instance State-change Notification",
        detail={"state": "running"},
        resources=[],
    )
    client.lambda_.invoke("integration_event", event)
    assert executions_of(api, wf) == []


def manual(name: str, description: str = "", enabled: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "enabled": enabled,
        "trigger": {
            "type": "manual",
            "inputs": [
                {"name": "amount", "type": "number", "required": True, "description": "Credit amount in EUR"},
                {"name": "tier", "type": "enum", "options": ["gold", "silver"], "required": False, "default": "silver"},
                {"name": "due", "type": "date"},
            ],
        },
        "steps": STEPS,
    }


def test_tools_lists_enabled_manual_workflows_with_json_schemas(api: Any) -> None:
    credit = api.create_workflow(manual("Issue credit note", "Drafts and posts a credit note"))
    api.create_workflow(manual("Paused", enabled=False))
    api.create_workflow(s3_workflow())
    status, body = api.get("/tools")
    assert status == 200
    [tool] = body["tools"]
    assert tool["name"] == f"issue_credit_note__{credit}"
    assert "Drafts and posts a credit note" in tool["description"]
    assert tool["input_schema"] == {
        "type": "object",
        "additionalProperties": False,
        "required": ["amount"],
        "properties": {
            "amount": {"type": "number", "description": "Credit amount in EUR"},
            "tier": {"type": "string", "enum": ["gold", "silver"], "default": "silver"},
            "due": {"type": "string", "format": "date"},
        },
    }
    assert body["workflows"] == {tool["name"]: credit}
    status, openai = api.get("/tools?format=openai")
    assert status == 200
    assert openai["tools"][0]["type"] == "function"
    assert openai["tools"][0]["function"]["parameters"] == tool["input_schema"]
    assert api.get("/tools?format=xml")[0] == 400


def test_invoking_a_tool_records_who_asked_and_the_conversation(api: Any) -> None:
    credit = api.create_workflow(manual("Issue credit note"))
    name = api.get("/tools")[1]["tools"][0]["name"]
    status, execution = api.post(
        f"/tools/{name}/invoke", {"arguments": {"amount": 12.5}, "conversation_id": "conv-42", "tool_call_id": "call_1"}
    )
    assert status == 201, execution
    assert execution["input"] == {"amount": 12.5, "tier": "silver"}
    trigger = execution["trigger"]
    assert trigger["type"] == "manual" and trigger["via"] == "tool" and trigger["by"] == "admin"
    assert trigger["conversation_id"] == "conv-42" and trigger["tool_call_id"] == "call_1"
    # The model repeating the same tool call starts nothing new.
    status, again = api.post(f"/tools/{name}/invoke", {"arguments": {"amount": 12.5}, "tool_call_id": "call_1"})
    assert status == 201 and again["execution_id"] == execution["execution_id"]
    # The conversation may come as a header instead.
    status, other = api.post(
        f"/tools/{name}/invoke", {"arguments": {"amount": 1}}, headers={"X-Conversation-Id": "conv-7"}
    )
    assert status == 201 and other["trigger"]["conversation_id"] == "conv-7"
    assert len(executions_of(api, credit)) == 2


def test_tool_invocation_errors_name_the_field(api: Any) -> None:
    api.create_workflow(manual("Issue credit note"))
    name = api.get("/tools")[1]["tools"][0]["name"]
    status, body = api.post(f"/tools/{name}/invoke", {"arguments": {"amount": "lots"}})
    assert status == 400 and body["errors"][0]["field"].endswith("amount")
    status, body = api.post(f"/tools/{name}/invoke", {"arguments": [], "conversation_id": 5})
    assert status == 400 and {e["field"] for e in body["errors"]} == {"arguments", "conversation_id"}
    assert api.post("/tools/nothing__wf_0000000000000000/invoke", {"arguments": {}})[0] == 404


def test_tool_invocation_needs_the_operator_role(api: Any) -> None:
    api.create_workflow(manual("Issue credit note"))
    name = api.get("/tools")[1]["tools"][0]["name"]
    _, created = api.post("/keys", {"name": "reader", "role": "viewer"})
    assert api.get("/tools", key=created["key"])[0] == 200
    assert api.post(f"/tools/{name}/invoke", {"arguments": {"amount": 1}}, key=created["key"])[0] == 403
