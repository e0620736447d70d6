"""The side-effect ledger through the real handlers on moto: an llm step's POST tool call, an
http step and an email, each against a real third party (a scripted integration on loopback
that counts its calls, SES on moto), then retried with ``replay`` (the default) and ``rerun``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.domain.machine import HANDOVER_GRACE_SECONDS
from tests.fakes.providers import openai_completion
from tests.fakes.scripted import Answer, ScriptedServer
from tests.functional.charge_kit import charge_workflow, charged_and_rejected

CHAT = "/v1/chat/completions"
SENDER = "support@stepline.example"


@pytest.fixture
def provider() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def integration() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def _refund_workflow(api: Any, provider: ScriptedServer, integration: ScriptedServer) -> str:
    status, body = api.post("/connections", {"name": "model", "kind": "openai", "base_url": provider.url + "/v1"})
    assert status == 201, body
    return api.create_workflow(
        {
            "name": "Refund",
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "act",
                    "agent": "llm",
                    "instructions": "Refund order A1",
                    "retry": {"max_attempts": 1, "backoff_seconds": 0},
                    "config": {
                        "connection": "model",
                        "model": "m",
                        "tools": [
                            {
                                "name": "refund",
                                "description": "Refund an order",
                                "method": "POST",
                                "url": integration.url + "/refunds",
                                "parameters": {
                                    "type": "object",
                                    "properties": {"order": {"type": "string"}, "amount": {"type": "number"}},
                                },
                            },
                            {
                                "name": "order",
                                "description": "Look an order up",
                                "method": "GET",
                                "url": integration.url + "/orders/{{ order }}",
                                "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
                            },
                        ],
                    },
                }
            ],
        }
    )


def _refund_then_give_up(provider: ScriptedServer) -> None:
    provider.script(
        CHAT,
        Answer(200, openai_completion(None, [("order", {"order": "A1"})])),
        Answer(200, openai_completion(None, [("refund", {"order": "A1", "amount": 12})])),
        Answer(
            200, openai_completion(None, [("cannot_complete", {"reason": "Which reason code?", "missing": ["code"]})])
        ),
    )


def _failed_after_one_refund(api: Any, worker: Any, provider: ScriptedServer, integration: ScriptedServer) -> str:
    integration.script("/orders/A1", Answer(200, {"order": "A1", "total": 12}))
    integration.script("/refunds", Answer(201, {"refund": "R-9"}), Answer(201, {"refund": "R-10"}))
    _refund_then_give_up(provider)
    execution_id = api.start(_refund_workflow(api, provider, integration))["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "failed", execution
    assert len(integration.requests("/refunds")) == 1
    return execution_id


def test_the_step_lists_its_post_call_with_key_and_status_and_the_history_entered_it_before_the_result(
    api: Any, worker: Any, provider: ScriptedServer, integration: ScriptedServer
) -> None:
    execution_id = _failed_after_one_refund(api, worker, provider, integration)
    step = api.execution(execution_id)["steps"][0]
    [effect] = step["side_effects"]  # the GET lookup is not a side effect
    assert effect["attempt"] == 1 and effect["n"] == 1 and effect["kind"] == "tool_call"
    assert effect["name"] == "refund" and effect["status"] == "succeeded" and effect["http_status"] == 201
    assert effect["target"] == f"POST {integration.url}/refunds"
    assert effect["idempotency_key"] == f"{execution_id}:act:1:2"  # the second tool call of attempt 1
    assert effect["at"] and effect["finished_at"] and "result" not in effect and "fingerprint" not in effect
    assert integration.requests("/refunds")[0].headers["idempotency-key"] == effect["idempotency_key"]
    assert step["side_effects_summary"] == "made 1 POST call"
    types = api.history_types(execution_id)
    assert types.index("side_effect_started") < types.index("step_failed")


def test_a_retry_replays_the_recorded_post_without_calling_the_integration_again(
    api: Any, worker: Any, provider: ScriptedServer, integration: ScriptedServer
) -> None:
    execution_id = _failed_after_one_refund(api, worker, provider, integration)
    provider.script(
        CHAT,
        Answer(200, openai_completion(None, [("refund", {"order": "A1", "amount": 12})])),
        Answer(200, openai_completion("Refunded: R-9")),
    )
    status, body = api.post(f"/executions/{execution_id}/steps/act/retry")  # replay is the default
    assert status == 200, body
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed", execution
    assert len(integration.requests("/refunds")) == 1  # not called again
    first, replayed = execution["steps"][0]["side_effects"]
    assert replayed["attempt"] == 2 and replayed["status"] == "replayed"
    assert replayed["idempotency_key"] == first["idempotency_key"] == f"{execution_id}:act:1:2"
    assert replayed["replayed_from"] == {"attempt": 1, "n": 1} and replayed["http_status"] == 201
    # the model got the recorded answer as the tool's result
    tool_turn = provider.requests(CHAT)[-1].json["messages"][-1]
    assert tool_turn["role"] == "tool" and "R-9" in tool_turn["content"]
    assert execution["steps"][0]["side_effects_summary"] == "made 1 POST call"
    status, history = api.get(f"/executions/{execution_id}/history")
    [retried] = [e for e in history["items"] if e["type"] == "step_retried"]
    assert retried["details"]["side_effects"] == "replay"
    assert retried["details"]["side_effects_before"] == "made 1 POST call"
    assert "side effects replayed" in retried["message"]


def test_edit_and_retry_with_rerun_calls_the_integration_again_with_a_new_key(
    api: Any, worker: Any, provider: ScriptedServer, integration: ScriptedServer
) -> None:
    execution_id = _failed_after_one_refund(api, worker, provider, integration)
    provider.script(
        CHAT,
        Answer(200, openai_completion(None, [("refund", {"order": "A1", "amount": 12})])),
        Answer(200, openai_completion("Refunded: R-10")),
    )
    status, body = api.post(
        f"/executions/{execution_id}/steps/act/retry",
        {"instructions": "Refund order A1 with code goodwill", "side_effects": "rerun"},
    )
    assert status == 200, body
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed", execution
    calls = integration.requests("/refunds")
    assert [c.headers["idempotency-key"] for c in calls] == [f"{execution_id}:act:1:2", f"{execution_id}:act:2:1"]
    assert calls[1].json == {"order": "A1", "amount": 12}
    second = execution["steps"][0]["side_effects"][1]
    assert second["attempt"] == 2 and second["status"] == "succeeded" and "replayed_from" not in second
    status, history = api.get(f"/executions/{execution_id}/history")
    [retried] = [e for e in history["items"] if e["type"] == "step_retried"]
    assert retried["details"]["side_effects"] == "rerun" and retried["details"]["edited"] is True
    assert "side effects rerun" in retried["message"]


def test_a_replay_makes_a_call_whose_arguments_differ(
    api: Any, worker: Any, provider: ScriptedServer, integration: ScriptedServer
) -> None:
    execution_id = _failed_after_one_refund(api, worker, provider, integration)
    provider.script(
        CHAT,
        Answer(200, openai_completion(None, [("refund", {"order": "A1", "amount": 13})])),
        Answer(200, openai_completion("Refunded: R-10")),
    )
    assert api.post(f"/executions/{execution_id}/steps/act/retry", {"side_effects": "replay"})[0] == 200
    worker.drain()
    assert [c.json["amount"] for c in integration.requests("/refunds")] == [12, 13]
    assert [e["status"] for e in api.execution(execution_id)["steps"][0]["side_effects"]] == ["succeeded"] * 2


@pytest.mark.parametrize("value", ["again", 5, "REPLAY", ["rerun"]])
def test_an_unknown_side_effects_choice_is_a_400_naming_the_field_and_changes_nothing(
    api: Any, worker: Any, provider: ScriptedServer, integration: ScriptedServer, value: Any
) -> None:
    execution_id = _failed_after_one_refund(api, worker, provider, integration)
    status, body = api.post(f"/executions/{execution_id}/steps/act/retry", {"side_effects": value})
    assert status == 400, body
    assert body["errors"][0]["field"] == "side_effects" and "replay" in body["errors"][0]["message"]
    assert api.execution(execution_id)["steps"][0]["attempt"] == 1
    assert "step_retried" not in api.history_types(execution_id)


def _http_workflow(api: Any, integration: ScriptedServer) -> str:
    return charge_workflow(
        api,
        integration,
        instructions="{amount: `30`}",
        retry={"max_attempts": 1, "backoff_seconds": 0},
        config={"url": integration.url + "/charges", "method": "POST", "timeout_seconds": 0.3},
    )


def test_an_http_call_that_timed_out_is_unknown_and_replay_leaves_it_to_a_person(
    api: Any, worker: Any, integration: ScriptedServer
) -> None:
    integration.script(
        "/charges", Answer(201, {"charge": "C-1"}, delay=1.5), Answer(201, {"charge": "C-2"}), Answer(201, {})
    )
    execution_id = api.start(_http_workflow(api, integration))["execution_id"]
    worker.drain()
    step = api.execution(execution_id)["steps"][0]
    assert step["state"] == "failed" and "timed out" in step["error"]["message"]
    [effect] = step["side_effects"]
    assert effect["kind"] == "http" and effect["status"] == "unknown"
    assert effect["target"] == f"POST {integration.url}/charges"
    assert integration.requests("/charges")[0].headers["idempotency-key"] == f"{execution_id}:charge:1:1"
    assert step["side_effects_summary"] == "made 1 POST call (1 with unknown outcome)"

    assert api.post(f"/executions/{execution_id}/steps/charge/retry")[0] == 200  # replay
    worker.drain()
    step = api.execution(execution_id)["steps"][0]
    assert len(integration.requests("/charges")) == 1  # not repeated blindly
    assert step["state"] == "failed" and step["error"]["retryable"] is False
    assert "unknown outcome" in step["error"]["message"] and '"rerun"' in step["error"]["message"]

    assert api.post(f"/executions/{execution_id}/steps/charge/retry", {"side_effects": "rerun"})[0] == 200
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed", execution
    assert execution["steps"][0]["output"]["body"] == {"charge": "C-2"}
    keys = [r.headers["idempotency-key"] for r in integration.requests("/charges")]
    assert keys == [f"{execution_id}:charge:1:1", f"{execution_id}:charge:3:1"]


def test_a_rejected_http_step_retried_replays_its_answer_without_a_second_post(
    api: Any, worker: Any, integration: ScriptedServer
) -> None:
    integration.script("/charges", Answer(201, {"charge": "C-1"}), Answer(201, {"charge": "C-2"}))
    execution_id = charged_and_rejected(api, worker, integration)
    assert api.post(f"/executions/{execution_id}/steps/charge/retry")[0] == 200
    worker.drain()
    step = api.execution(execution_id)["steps"][0]
    assert step["state"] == "waiting_for_approval" and step["output"]["body"] == {"charge": "C-1"}
    assert len(integration.requests("/charges")) == 1
    assert [e["status"] for e in step["side_effects"]] == ["succeeded", "replayed"]


def _email_workflow(api: Any) -> str:
    return api.create_workflow(
        {
            "name": "Reply",
            "trigger": {"type": "manual", "inputs": [{"name": "email", "type": "string"}]},
            "steps": [
                {
                    "id": "reply",
                    "agent": "email",
                    "config": {
                        "to": ["{{ input.email }}"],
                        "from": SENDER,
                        "subject": "Your refund",
                        "body": "Done.",
                    },
                    "gate": {"type": "approval"},
                }
            ],
        }
    )


def test_a_replayed_email_is_not_sent_again_and_a_rerun_sends_it(api: Any, worker: Any, aws: Any) -> None:
    boto3.client("sesv2", region_name="us-east-1").create_email_identity(EmailIdentity=SENDER)
    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    execution_id = api.start(_email_workflow(api), {"email": "ada@example.com"})["execution_id"]
    worker.drain()
    first = api.execution(execution_id)["steps"][0]
    assert len(sent) == 1 and first["state"] == "waiting_for_approval"
    [effect] = first["side_effects"]
    assert effect["kind"] == "email" and effect["target"] == "email to ada@example.com"
    assert effect["status"] == "succeeded" and effect["message_id"] == first["output"]["message_id"]
    assert first["side_effects_summary"] == "sent 1 email"

    assert api.post(f"/executions/{execution_id}/steps/reply/reject", {"comment": "check the amount"})[0] == 200
    assert api.post(f"/executions/{execution_id}/steps/reply/retry")[0] == 200
    worker.drain()
    second = api.execution(execution_id)["steps"][0]
    assert len(sent) == 1  # moto's SES saw no second message
    assert second["output"]["message_id"] == first["output"]["message_id"]
    assert second["side_effects"][1]["status"] == "replayed"

    assert api.post(f"/executions/{execution_id}/steps/reply/reject", {"comment": "send it once more"})[0] == 200
    assert api.post(f"/executions/{execution_id}/steps/reply/retry", {"side_effects": "rerun"})[0] == 200
    worker.drain()
    third = api.execution(execution_id)["steps"][0]
    assert len(sent) == 2
    assert third["output"]["message_id"] != first["output"]["message_id"]
    assert third["side_effects_summary"] == "sent 2 emails"


def test_the_mcp_retry_tool_shows_the_calls_and_takes_the_choice(
    api: Any, worker: Any, integration: ScriptedServer
) -> None:
    from tests.functional.test_mcp_protocol import _call

    integration.script("/charges", Answer(201, {"charge": "C-1"}), Answer(201, {"charge": "C-2"}))
    execution_id = charged_and_rejected(api, worker, integration)
    seen = _call(api, "get_execution", {"execution_id": execution_id})["result"]
    [failed] = seen["structuredContent"]["awaiting"]
    assert failed["tools"] == ["retry_step"] and failed["side_effects_summary"] == "made 1 POST call"
    assert "already made 1 POST call" in seen["content"][0]["text"]

    bad = _call(api, "retry_step", {"execution_id": execution_id, "step_id": "charge", "side_effects": "twice"})
    assert bad["result"]["isError"] and bad["result"]["structuredContent"]["error"]["errors"][0]["field"] == (
        "side_effects"
    )
    done = _call(api, "retry_step", {"execution_id": execution_id, "step_id": "charge", "side_effects": "rerun"})
    assert not done["result"]["isError"] and "side effects: rerun" in done["result"]["content"][0]["text"]
    worker.drain()
    keys = [r.headers["idempotency-key"] for r in integration.requests("/charges")]
    assert keys == [f"{execution_id}:charge:1:1", f"{execution_id}:charge:2:1"]
    _, history = api.get(f"/executions/{execution_id}/history")
    assert [e["details"]["side_effects"] for e in history["items"] if e["type"] == "step_retried"] == ["rerun"]


def test_cancel_lists_the_calls_it_does_not_undo_in_the_view_and_the_history(
    api: Any, worker: Any, provider: ScriptedServer, integration: ScriptedServer
) -> None:
    execution_id = _failed_after_one_refund(api, worker, provider, integration)
    status, cancelled = api.post(f"/executions/{execution_id}/cancel", {"reason": "customer withdrew"})
    assert status == 200 and cancelled["status"] == "cancelled"
    [call] = cancelled["side_effects_not_undone"]
    assert call["step_id"] == "act" and call["target"] == f"POST {integration.url}/refunds"
    assert call["status"] == "succeeded" and call["idempotency_key"] == f"{execution_id}:act:1:2"
    _, history = api.get(f"/executions/{execution_id}/history")
    [event] = [e for e in history["items"] if e["type"] == "execution_cancelled"]
    assert event["details"]["side_effects_not_undone"] == [{"step_id": "act", "summary": "made 1 POST call"}]
    assert "step act made 1 POST call" in event["message"]


def test_a_worker_that_stops_mid_call_leaves_the_call_unknown_and_a_replay_does_not_repeat_it(
    api: Any, worker: Any, integration: ScriptedServer, clock: Any
) -> None:
    arrived, release = threading.Event(), threading.Event()

    def hang(seen: Any) -> Answer:  # the worker's call reaches the integration, then hears nothing back
        arrived.set()
        release.wait(30)
        return Answer(201, {"charge": "C-1"})

    integration.script("/charges", hang, Answer(201, {"charge": "C-2"}))
    workflow_id = charge_workflow(api, integration, timeout_seconds=60)
    execution_id = api.start(workflow_id)["execution_id"]
    [message] = worker.receive(1)
    stuck = threading.Thread(target=worker.deliver, args=(message["Body"],), daemon=True)
    stuck.start()
    assert arrived.wait(30)  # the worker is inside the call: for the rest of the system it is gone
    # its deadline (60 s) passes; the claim wrote no due entry, so the start's (120 s) brings the sweep
    clock.advance(HANDOVER_GRACE_SECONDS + 1)
    worker.sweep()  # past its deadline: timed out
    step = api.execution(execution_id)["steps"][0]
    assert step["state"] == "failed" and step["error"]["kind"] == "timeout"
    [effect] = step["side_effects"]
    assert effect["status"] == "unknown" and effect["idempotency_key"] == f"{execution_id}:charge:1:1"
    assert step["side_effects_summary"] == "made 1 POST call (1 with unknown outcome)"

    release.set()  # the stuck worker comes back late: its result is kept as late, and it tells the truth
    stuck.join(30)
    step = api.execution(execution_id)["steps"][0]
    assert "late_result_discarded" in api.history_types(execution_id)
    assert step["state"] == "failed" and step["side_effects"][0]["status"] == "succeeded"
    assert len(integration.requests("/charges")) == 1
