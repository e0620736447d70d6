"""The "Support ticket triage" sample end to end through the real handlers: the llm step (against
a scripted OpenAI-compatible server) classifies and drafts, a reviewer amends the draft, and the
email step sends the amended reply with SES on moto."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.samples.workflows import SAMPLE_LLM_CONNECTION, SAMPLE_SENDER, SUPPORT_TRIAGE
from tests.fakes.providers import openai_completion
from tests.fakes.scripted import Answer, ScriptedServer


def test_support_ticket_triage_classifies_waits_for_review_and_emails_the_reply(
    api: Any, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")
    boto3.client("sesv2", region_name="us-east-1").create_email_identity(EmailIdentity=SAMPLE_SENDER)
    draft = {
        "category": "billing",
        "priority": "urgent",
        "summary": "Charged twice for March",
        "reply_draft": "Sorry about that, we are looking into it.",
    }
    with ScriptedServer() as provider:
        provider.script("/v1/chat/completions", Answer(200, openai_completion(json.dumps(draft))))
        status, _ = api.post(
            "/connections", {"name": SAMPLE_LLM_CONNECTION, "kind": "openai", "base_url": provider.url + "/v1"}
        )
        assert status == 201
        workflow_id = api.create_workflow(copy.deepcopy(SUPPORT_TRIAGE))
        execution_id = api.start(
            workflow_id,
            {
                "customer_email": "ada@example.com",
                "subject": "Double charge",
                "message": "I was charged twice in March.",
            },
        )["execution_id"]
        worker.drain()
        sent = provider.requests("/v1/chat/completions")[0].json
    execution = api.execution(execution_id)
    assert execution["status"] == "waiting", execution
    assert execution["steps"][0]["output"] == draft and execution["steps"][0]["usage"]["output_tokens"] == 17
    assert "I was charged twice in March." in sent["messages"][1]["content"]
    assert sent["response_format"]["json_schema"]["schema"] == SUPPORT_TRIAGE["steps"][0]["config"]["output_schema"]

    amended = {**draft, "reply_draft": "Sorry! The second charge is refunded within 3 days."}
    status, body = api.post(
        f"/executions/{execution_id}/steps/review/review", {"comment": "promise the refund timeline", "output": amended}
    )
    assert status == 200, body
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed", execution
    assert execution["steps"][2]["output"]["to"] == ["ada@example.com"]
    [message] = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    assert message.source == SAMPLE_SENDER and message.subject == "Re: Double charge"
    assert message.body == "Sorry! The second charge is refunded within 3 days."
