"""Poison messages: the worker itself keeps failing on a step message (here DynamoDB answers
``InternalServerError`` for that execution, injected at the botocore level, not by patching
our code). Lambda returns the message to the queue; after maxReceiveCount SQS moves it to the
dead-letter queue; the sweep fails the step with an ``internal`` error and counts it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.handlers
import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.local.resources import load_template

#: request-body substring -> DynamoDB error code answered instead of calling (moto)
FAULTS: dict[str, str] = {}


def _inject(params: dict[str, Any], **_: Any) -> Any:
    body = params.get("body") or b""
    body = body.encode() if isinstance(body, str) else body
    for needle, code in FAULTS.items():
        if needle.encode() in body:
            return AWSResponse("https://dynamodb.test", 500, {}, None), {
                "Error": {"Code": code, "Message": "injected by the test"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            }
    return None


# Every botocore session created after this import (the app's are created lazily, during
# tests) answers injected faults; with FAULTS empty it changes nothing.
botocore.handlers.BUILTIN_HANDLERS.append(("before-call.dynamodb", _inject))

FLOW = {
    "name": "Two steps",
    "trigger": {"type": "manual", "inputs": []},
    "steps": [
        {"id": "first", "agent": "transform", "instructions": "`1`"},
        {"id": "second", "agent": "transform", "instructions": "sum([prev, `1`])"},
    ],
}
MAX_RECEIVES = load_template()["Resources"]["StepQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]


@pytest.fixture
def faults() -> Iterator[dict[str, str]]:
    yield FAULTS
    FAULTS.clear()


def _deliver_like_lambda(worker: Any) -> str:
    """One event-source-mapping poll: receive, invoke, delete only if the handler returned."""
    messages = worker.sqs.receive_message(
        QueueUrl=worker.url, MaxNumberOfMessages=1, VisibilityTimeout=0, WaitTimeSeconds=0
    ).get("Messages", [])
    if not messages:
        return "empty"
    try:
        worker.deliver(messages[0]["Body"])
    except Exception:
        return "raised"  # not deleted: visible again at once (VisibilityTimeout=0 above)
    worker.sqs.delete_message(QueueUrl=worker.url, ReceiptHandle=messages[0]["ReceiptHandle"])
    return "ok"


def _dlq_depth(aws: Any) -> int:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=aws.settings.step_dlq)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_message_the_worker_keeps_failing_on_fails_its_step_after_the_dead_letter_queue(
    api: Any, worker: Any, aws: Any, faults: dict[str, str]
) -> None:
    wf = api.create_workflow(FLOW)
    execution_id = api.start(wf)["execution_id"]
    faults[f"EX#{execution_id}"] = "InternalServerError"

    outcomes = [_deliver_like_lambda(worker) for _ in range(int(MAX_RECEIVES) + 1)]
    assert outcomes == ["raised"] * int(MAX_RECEIVES) + ["empty"]
    assert _dlq_depth(aws) == 1
    faults.clear()  # the outage is over; the message is in the dead-letter queue
    assert api.execution(execution_id)["steps"][0]["state"] == "pending"
    assert api.get("/health")[1]["details"] == {"dead_letters": 0, "dead_letters_waiting": 1, "notifications_failed": 0}

    assert worker.sweep().payload is None
    execution = api.execution(execution_id)
    assert execution["status"] == "failed"
    first = execution["steps"][0]
    assert first["state"] == "failed"
    assert first["error"]["kind"] == "internal"
    assert "dead-letter queue" in first["error"]["message"] and f"{MAX_RECEIVES} times" in first["error"]["message"]
    failed = [e for e in api.get(f"/executions/{execution_id}/history")[1]["items"] if e["type"] == "step_failed"]
    assert failed[0]["details"]["dead_letter"] is True and failed[0]["actor"] == "system"
    assert _dlq_depth(aws) == 0
    assert api.get("/health")[1] == {
        "status": "ok",
        "stage": "dev",
        "details": {"dead_letters": 1, "dead_letters_waiting": 0, "notifications_failed": 0},
    }

    # nothing was lost: once the cause is fixed an operator retries the step and it runs
    status, _ = api.post(f"/executions/{execution_id}/steps/first/retry")
    assert status == 200
    worker.drain()
    assert api.execution(execution_id)["status"] == "completed"
    assert api.execution(execution_id)["steps"][1]["output"] == 2


def test_a_dead_letter_for_a_step_that_moved_on_changes_nothing_but_the_count(api: Any, worker: Any, aws: Any) -> None:
    wf = api.create_workflow(FLOW)
    execution_id = api.start(wf)["execution_id"]
    worker.drain()
    assert api.execution(execution_id)["status"] == "completed"
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.get_queue_url(QueueName=aws.settings.step_dlq)["QueueUrl"]
    sqs.send_message(
        QueueUrl=dlq, MessageBody=json.dumps({"execution_id": execution_id, "step_id": "first", "attempt": 1})
    )
    sqs.send_message(QueueUrl=dlq, MessageBody="not a step message")
    worker.sweep()
    assert api.execution(execution_id)["status"] == "completed"
    assert api.get("/health")[1]["details"]["dead_letters"] == 2
    assert _dlq_depth(aws) == 0


def test_health_shows_details_to_admins_only(api: Any) -> None:
    assert api.client.http.get("/health").status_code == 200
    assert json.loads(api.client.http.get("/health").body) == {"status": "ok", "stage": "dev"}
    status, created = api.post("/keys", {"name": "watcher", "role": "operator"})
    assert status == 201
    assert "details" not in api.get("/health", key=created["key"])[1]
    assert api.get("/health", key="not-a-key") == (200, {"status": "ok", "stage": "dev"})
    assert api.get("/health")[1]["details"] == {"dead_letters": 0, "dead_letters_waiting": 0, "notifications_failed": 0}
