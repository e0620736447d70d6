"""The email agent through the real handlers, sending with SES v2 on moto."""

from __future__ import annotations

from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

SENDER = "support@stepline.example"


def _workflow(api: Any, sender: str = SENDER) -> str:
    return api.create_workflow(
        {
            "name": "Reply",
            "trigger": {
                "type": "manual",
                "inputs": [{"name": "customer", "type": "string"}, {"name": "email", "type": "string"}],
            },
            "steps": [
                {
                    "id": "reply",
                    "agent": "email",
                    "retry": {"max_attempts": 1, "backoff_seconds": 0},
                    "config": {
                        "to": ["{{ input.email }}"],
                        "cc": ["desk@stepline.example"],
                        "from": sender,
                        "subject": "About your ticket, {{ input.customer }}",
                        "body": "Hello {{ input.customer }},\nwe are on it.",
                    },
                }
            ],
        }
    )


def test_sends_the_rendered_message_and_outputs_its_id(api: Any, worker: Any, aws: Any) -> None:
    boto3.client("sesv2", region_name="us-east-1").create_email_identity(EmailIdentity=SENDER)
    execution_id = api.start(_workflow(api), {"customer": "Ada", "email": "ada@example.com"})["execution_id"]
    worker.drain()
    execution = api.execution(execution_id)
    assert execution["status"] == "completed", execution
    output = execution["steps"][0]["output"]
    assert output["to"] == ["ada@example.com"] and output["message_id"]
    [sent] = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    assert sent.source == SENDER and sent.subject == "About your ticket, Ada"
    assert sent.body == "Hello Ada,\nwe are on it."
    assert sent.destinations["ToAddresses"] == ["ada@example.com"]
    assert sent.destinations["CcAddresses"] == ["desk@stepline.example"]


def test_a_rejected_message_is_a_non_retryable_integration_error(api: Any, worker: Any) -> None:
    execution_id = api.start(
        _workflow(api, "nobody@unverified.example"), {"customer": "Bo", "email": "bo@example.com"}
    )["execution_id"]
    worker.drain()
    error = api.execution(execution_id)["steps"][0]["error"]
    assert error["kind"] == "integration" and error["retryable"] is False
    assert "MessageRejected" in error["message"] and error["action"] == "skip_or_cancel"


def test_bad_email_config_is_a_400_naming_the_field(api: Any) -> None:
    status, body = api.post(
        "/workflows",
        {
            "name": "Bad",
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "mail",
                    "agent": "email",
                    "config": {"to": ["not-an-address"], "subject": "", "body": "{{ input. }}"},
                }
            ],
        },
    )
    assert status == 400
    fields = {e["field"] for e in body["errors"]}
    assert {"steps[0].config.to[0]", "steps[0].config.subject", "steps[0].config.body"} <= fields
