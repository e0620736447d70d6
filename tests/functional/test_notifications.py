"""Notifications: EventBridge on every status change, SES email and signed webhooks per workflow.

Through the real handlers on moto: EventBridge events are caught by a rule whose target is
an SQS queue; SES v2 messages are read from moto's SES backend; webhooks go to a receiver
on 127.0.0.1 and are verified with the independent ``standardwebhooks`` package.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.functional.operator_kit import Keys, act, py, step_of, tf, workflow


def gated(notify: list[dict[str, Any]]) -> dict[str, Any]:
    body = workflow(
        tf("draft", "{total: `10`}"), tf("approve", "prev", gate={"type": "approval"}), tf("post", "{sent: prev}")
    )
    return {**body, "notify": notify}


class Receiver:
    """A scripted webhook receiver on loopback: records requests, answers ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        #: Answers for the first requests, in order; ``status`` after them.
        self.script: list[int] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.script.pop(0) if receiver.script else receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/stepline"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def bus(aws: Any) -> Any:
    """An SQS queue that an EventBridge rule fills with Stepline's events."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="status-changes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(
        Name="stepline-status",
        EventPattern=json.dumps({"source": ["stepline"], "detail-type": ["Execution Status Change"]}),
    )
    events.put_targets(Rule="stepline-status", Targets=[{"Id": "queue", "Arn": arn}])

    def received() -> list[dict[str, Any]]:
        out = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return out
            for m in messages:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    return received


def sent_emails() -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def test_every_status_change_is_an_eventbridge_event(api: Any, worker: Any, bus: Any) -> None:
    keys = Keys(api)
    wf = api.create_workflow(gated([]))
    ex = api.start(wf)["execution_id"]
    worker.drain()
    assert act(api, ex, "approve", "approve", key=keys.operator)[0] == 200
    worker.drain()
    events = bus()
    assert {(e["source"], e["detail-type"]) for e in events} == {("stepline", "Execution Status Change")}
    changes = [
        (e["detail"]["previous_status"], e["detail"]["status"]) for e in events if e["detail"]["execution_id"] == ex
    ]
    assert changes == [(None, "running"), ("running", "waiting"), ("waiting", "running"), ("running", "completed")]
    waiting = next(e["detail"] for e in events if e["detail"]["status"] == "waiting")
    assert waiting["workflow_id"] == wf and waiting["workflow_name"] == "Operator test"
    assert waiting["step"]["id"] == "approve" and waiting["step"]["output"] == {"total": 10}


def test_a_waiting_gate_and_a_failure_are_emailed_through_ses(api: Any, worker: Any) -> None:
    definition = gated([{"on": ["gate_waiting", "failed"], "email": "approvers@example.com"}])
    wf = api.create_workflow(definition)
    ex = api.start(wf)["execution_id"]
    worker.drain()
    mails = [m for m in sent_emails() if m.destinations["ToAddresses"] == ["approvers@example.com"]]
    assert len(mails) == 1
    assert mails[0].source == "notifications@stepline.invalid"
    assert mails[0].subject == "[Stepline] Operator test: execution waits for a decision"
    assert f"stepline approve {ex} approve" in mails[0].body and '{"total": 10}' in mails[0].body
    assert act(api, ex, "reject", "approve", {"comment": "totals are wrong"})[0] == 200
    mails = [m for m in sent_emails() if m.destinations["ToAddresses"] == ["approvers@example.com"]]
    assert len(mails) == 2 and "failed and waits for an operator" in mails[1].subject
    assert "rejected: rejected by admin: totals are wrong" in mails[1].body
    assert f"stepline retry {ex} approve" in mails[1].body


def test_webhooks_are_signed_with_the_workflows_secret_shown_once(
    api: Any, worker: Any, clock: Any, receiver: Receiver
) -> None:
    clock.now = datetime.now(UTC)  # Standard Webhooks receivers check the timestamp against now
    status, created = api.post(
        "/workflows",
        {**workflow(tf("draft", "{total: `10`}")), "notify": [{"on": ["completed"], "webhook": receiver.url}]},
    )
    assert status == 201, created
    secret = created["notification_secret"]
    assert secret.startswith("whsec_")
    wf = created["workflow_id"]
    assert "notification_secret" not in api.get(f"/workflows/{wf}")[1]
    assert api.get(f"/workflows/{wf}")[1]["notify"] == [{"on": ["completed"], "webhook": receiver.url}]
    ex = api.start(wf)["execution_id"]
    worker.drain()
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "execution.completed"
    assert payload["data"]["execution_id"] == ex and payload["data"]["status"] == "completed"
    assert headers["webhook-id"].startswith(f"msg_{ex}_")
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)  # another secret does not verify
    # a new version keeps the secret: it is not shown again
    status, updated = api.put(
        f"/workflows/{wf}",
        {
            "name": "Operator test",
            "trigger": {"type": "manual"},
            "steps": [tf("draft", "input")],
            "notify": [{"on": ["failed"], "webhook": receiver.url}],
        },
    )
    assert status == 200 and "notification_secret" not in updated


def test_a_failing_receiver_never_fails_the_step_and_is_counted(api: Any, worker: Any, receiver: Receiver) -> None:
    receiver.status = 500
    body = {
        **workflow(tf("draft", "{total: `10`}")),
        "notify": [{"on": ["completed"], "webhook": receiver.url}, {"on": ["completed"], "email": "a@example.com"}],
    }
    wf = api.create_workflow(body)
    ex = api.start(wf)["execution_id"]
    worker.drain()
    assert api.execution(ex)["status"] == "completed"
    assert len(receiver.requests) == 1
    assert api.get("/health")[1]["details"]["notifications_failed"] == 1
    # the email target was still tried after the webhook failed
    assert [m.destinations["ToAddresses"] for m in sent_emails()][-1] == ["a@example.com"]


def test_unreachable_receiver_is_logged_not_raised(api: Any, worker: Any) -> None:
    closed = Receiver()
    url = closed.url
    closed.close()
    wf = api.create_workflow(
        {**workflow(py("draft", "fails_permanently")), "notify": [{"on": ["failed"], "webhook": url}]}
    )
    ex = api.start(wf)["execution_id"]
    worker.drain()
    execution = api.execution(ex)
    assert execution["status"] == "failed" and step_of(execution, "draft")["error"]["kind"] != "internal"
    assert api.get("/health")[1]["details"]["notifications_failed"] == 1


def test_notify_targets_are_validated(api: Any) -> None:
    body = {
        **workflow(tf("draft")),
        "notify": [
            {"on": ["started"], "email": "not-an-address"},
            {"on": ["failed"], "webhook": "http://hooks.example.com/x"},
            {"on": ["failed"], "email": "a@example.com", "webhook": "https://hooks.example.com/x"},
            {"on": [], "sms": "+1555"},
        ],
    }
    status, answer = api.post("/workflows", body)
    assert status == 400
    fields = {e["field"]: e["message"] for e in answer["errors"]}
    assert fields["notify[0].on[0]"] == "must be one of: gate_waiting, failed, completed"
    assert fields["notify[0].email"].startswith("must be an email address")
    assert fields["notify[1].webhook"].startswith("must be https://")
    assert fields["notify[2]"] == 'needs exactly one of "email" or "webhook"'
    assert "notify[3].sms" in fields and "notify[3].on" in fields
    # any JSON in "on" is a 400, never a 500 (found by the schemathesis fuzz)
    status, answer = api.post(
        "/workflows",
        {
            **workflow(tf("draft")),
            "notify": [{"on": [{"a": 1}, [2], None, True], "email": "a@example.com"}, {"on": "failed", "webhook": 3}],
        },
    )
    assert status == 400
    fields = {e["field"] for e in answer["errors"]}
    assert {
        "notify[0].on[0]",
        "notify[0].on[1]",
        "notify[0].on[2]",
        "notify[0].on[3]",
        "notify[1].on",
        "notify[1].webhook",
    } <= fields


def _webhook_workflow(api: Any, url: str) -> tuple[str, str]:
    status, created = api.post(
        "/workflows", {**workflow(tf("draft", "{total: `10`}")), "notify": [{"on": ["completed"], "webhook": url}]}
    )
    assert status == 201, created
    return created["workflow_id"], created["notification_secret"]


def test_a_failed_webhook_is_retried_with_its_id_until_delivered(
    api: Any, worker: Any, clock: Any, receiver: Receiver, monkeypatch: Any, caplog: Any
) -> None:
    monkeypatch.setenv("STEPLINE_NOTIFY_RETRY_DELAYS", "0,0,0")  # SQS delays of 0 s: the drain delivers them
    clock.now = datetime.now(UTC)
    receiver.script = [500, 503]  # fails twice, then answers 204
    wf, secret = _webhook_workflow(api, receiver.url)
    with caplog.at_level(logging.INFO, logger="stepline.notifications"):
        ex = api.start(wf)["execution_id"]
        worker.drain()
    assert api.execution(ex)["status"] == "completed"
    assert len(receiver.requests) == 3
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 1  # the receiver can drop repeats
    headers, body = receiver.requests[-1]
    assert Webhook(secret).verify(body, headers)["data"]["execution_id"] == ex
    assert api.get("/health")[1]["details"]["notifications_failed"] == 2  # each failed attempt counted
    messages = [r.getMessage() for r in caplog.records]
    assert any("attempt 2" in m for m in messages) and any("delivered on attempt 3" in m for m in messages)


def test_a_webhook_that_keeps_failing_is_given_up_after_the_last_attempt(
    api: Any, worker: Any, receiver: Receiver, monkeypatch: Any, caplog: Any
) -> None:
    monkeypatch.setenv("STEPLINE_NOTIFY_RETRY_DELAYS", "0,0")
    receiver.status = 500
    wf, _ = _webhook_workflow(api, receiver.url)
    with caplog.at_level(logging.INFO, logger="stepline.notifications"):
        api.start(wf)
        worker.drain()
    assert len(receiver.requests) == 3  # the first try and two retries, then no more
    assert api.get("/health")[1]["details"]["notifications_failed"] == 3
    assert any("given up after 3 attempts" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_rotating_the_notification_secret_shows_it_once_and_signs_with_both_for_the_grace(
    api: Any, worker: Any, clock: Any, receiver: Receiver
) -> None:
    clock.now = datetime.now(UTC)
    keys = Keys(api)
    wf, first = _webhook_workflow(api, receiver.url)
    path = f"/workflows/{wf}/notification-secret/rotate"
    assert api.post(path, {}, key=keys.operator)[0] == 403
    assert api.post("/workflows/wf_0000000000000000/notification-secret/rotate", {})[0] == 404
    status, bad = api.post(path, {"grace_seconds": -1})
    assert status == 400 and bad["errors"][0]["field"] == "grace_seconds"
    status, rotated = api.post(path, {"grace_seconds": 3600})
    assert status == 200, rotated
    second = rotated["notification_secret"]
    assert second.startswith("whsec_") and second != first
    assert rotated["previous_valid_until"] > clock.now.isoformat()[:19]
    assert "notification_secret" not in api.get(f"/workflows/{wf}")[1]
    api.start(wf)
    worker.drain()
    headers, body = receiver.requests[-1]
    Webhook(first).verify(body, headers)  # receivers still on the old secret keep working...
    Webhook(second).verify(body, headers)  # ...and those that switched already too
    status, rotated = api.post(path, {"grace_seconds": 0})  # the second one stops signing at once
    third = rotated["notification_secret"]
    api.start(wf)
    worker.drain()
    headers, body = receiver.requests[-1]
    Webhook(third).verify(body, headers)
    for old in (first, second):
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(body, headers)
