"""Signed webhooks through the real handlers, signed by an independent implementation
(the ``standardwebhooks`` package), plus GitHub-style signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

STEPS = [{"id": "echo", "agent": "transform", "instructions": "input"}]


def event_workflow(
    source: str = "billing",
    event_type: str = "invoice.created",
    filter: str | None = None,
    name: str = "On invoice",
    enabled: bool = True,
) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "event", "source": source, "event_type": event_type}
    if filter is not None:
        trigger["filter"] = filter
    return {"name": name, "enabled": enabled, "trigger": trigger, "steps": STEPS}


def create_source(api: Any, name: str = "billing", **extra: Any) -> str:
    status, body = api.post("/sources", {"name": name, **extra})
    assert status == 201, body
    assert body["name"] == name
    return body["secret"]


class Sender:
    """A webhook sender using the reference Standard Webhooks library."""

    def __init__(self, client: Any, clock: Any, source: str, secret: str) -> None:
        self.client, self.clock, self.source, self.secret = client, clock, source, secret

    def headers(
        self, body: bytes, msg_id: str | None = None, at: datetime | None = None, secret: str | None = None
    ) -> dict[str, str]:
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        at = at or self.clock.now
        signature = Webhook(secret or self.secret).sign(msg_id, at, body.decode())
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
            "Content-Type": "application/json",
        }

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        response = self.client.http.post(f"/webhooks/{self.source}", headers=headers, body=body)
        return response.status_code, json.loads(response.body) if response.body else None

    def send(self, payload: Any, **kw: Any) -> tuple[int, Any]:
        body = json.dumps(payload).encode()
        return self.post(body, self.headers(body, **kw))


@pytest.fixture
def billing(api: Any, client: Any, clock: Any) -> Sender:
    return Sender(client, clock, "billing", create_source(api))


def executions_of(api: Any, workflow_id: str) -> list[dict[str, Any]]:
    status, body = api.get(f"/workflows/{workflow_id}/executions")
    assert status == 200, body
    return body["items"]


def test_source_secret_is_shown_once_and_never_listed(api: Any) -> None:
    secret = create_source(api, "crm")
    assert secret.startswith("whsec_")
    status, body = api.get("/sources")
    assert status == 200
    assert [s["name"] for s in body["items"]] == ["crm"]
    assert secret not in json.dumps(body)
    assert api.post("/sources", {"name": "crm"})[0] == 409


def test_source_names_and_schemes_are_validated(api: Any) -> None:
    status, body = api.post("/sources", {"name": "no spaces allowed", "scheme": "svix", "extra": 1})
    assert status == 400
    assert {e["field"] for e in body["errors"]} == {"name", "scheme", "extra"}
    status, body = api.post("/sources", {"name": "aws.s3"})
    assert status == 400 and "reserved" in body["errors"][0]["message"]


def test_valid_webhook_starts_each_matching_workflow_once_with_the_payload_as_input(api: Any, billing: Sender) -> None:
    first = api.create_workflow(event_workflow(name="A"))
    second = api.create_workflow(event_workflow(name="B"))
    other_type = api.create_workflow(event_workflow(event_type="invoice.paid", name="C"))
    other_source = api.create_workflow(event_workflow(source="crm", name="D"))
    payload = {"type": "invoice.created", "data": {"id": "inv_1", "amount": 40}}
    status, body = billing.send(payload)
    assert status == 202, body
    assert body["event_id"].startswith("evt_")
    assert len(body["executions"]) == 2
    for wf in (first, second):
        [summary] = executions_of(api, wf)
        execution = api.execution(summary["execution_id"])
        assert execution["input"] == payload
        assert execution["status"] == "running"
        assert execution["trigger"]["type"] == "event"
        assert execution["trigger"]["event_id"] == body["event_id"]
        assert execution["trigger"]["replay"] is False
    assert executions_of(api, other_type) == [] and executions_of(api, other_source) == []
    status, stored = api.get(f"/events/{body['event_id']}")
    assert status == 200 and stored["payload"] == payload and sorted(stored["executions"]) == sorted(body["executions"])


def test_disabled_workflows_are_not_started_by_events(api: Any, billing: Sender) -> None:
    wf = api.create_workflow(event_workflow(enabled=False))
    status, body = billing.send({"type": "invoice.created"})
    assert status == 202 and body["executions"] == []
    assert executions_of(api, wf) == []
    api.post(f"/workflows/{wf}/enable")
    assert len(billing.send({"type": "invoice.created"})[1]["executions"]) == 1


def test_tampered_body_is_refused_and_starts_nothing(api: Any, billing: Sender) -> None:
    wf = api.create_workflow(event_workflow())
    body = json.dumps({"type": "invoice.created", "amount": 10}).encode()
    headers = billing.headers(body)
    status, answer = billing.post(body.replace(b"10", b"99"), headers)
    assert status == 401, answer
    assert executions_of(api, wf) == []


def test_wrong_secret_and_missing_headers_are_refused(api: Any, billing: Sender) -> None:
    wf = api.create_workflow(event_workflow())
    body = json.dumps({"type": "invoice.created"}).encode()
    other = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert billing.post(body, billing.headers(body, secret=other))[0] == 401
    for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        headers = billing.headers(body)
        del headers[missing]
        status, answer = billing.post(body, headers)
        assert status == 401 and missing in answer["Message"]
    headers = billing.headers(body)
    headers["webhook-signature"] = "v1,not-base64!!"
    assert billing.post(body, headers)[0] == 401
    assert executions_of(api, wf) == []


@pytest.mark.parametrize("offset, word", [(-301, "old"), (301, "future")])
def test_stale_and_future_timestamps_are_refused(api: Any, billing: Sender, clock: Any, offset: int, word: str) -> None:
    wf = api.create_workflow(event_workflow())
    status, answer = billing.send({"type": "invoice.created"}, at=clock.now + timedelta(seconds=offset))
    assert status == 401 and word in answer["Message"]
    assert executions_of(api, wf) == []


def test_timestamps_within_five_minutes_either_way_are_accepted(api: Any, billing: Sender, clock: Any) -> None:
    api.create_workflow(event_workflow())
    for offset in (-290, 290):
        status, _ = billing.send({"type": "invoice.created"}, at=clock.now + timedelta(seconds=offset))
        assert status == 202


def test_several_signatures_are_accepted_when_one_matches(api: Any, billing: Sender) -> None:
    body = json.dumps({"type": "invoice.created"}).encode()
    headers = billing.headers(body)
    wrong = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").sign("x", billing.clock.now, "y")
    headers["webhook-signature"] = f"{wrong} v2,abc {headers['webhook-signature']}"
    assert billing.post(body, headers)[0] == 202


def test_repeated_webhook_id_answers_the_first_answer_and_starts_nothing(api: Any, billing: Sender, clock: Any) -> None:
    wf = api.create_workflow(event_workflow())
    body = json.dumps({"type": "invoice.created"}).encode()
    headers = billing.headers(body, msg_id="msg_fixed")
    status, first = billing.post(body, headers)
    assert status == 202
    clock.advance(120)  # a sender's retry, re-signed with a fresh timestamp
    status, again = billing.post(body, billing.headers(body, msg_id="msg_fixed"))
    assert status == 200 and again == first
    assert len(executions_of(api, wf)) == 1


def test_rotation_keeps_the_old_secret_valid_until_the_grace_period_ends(
    api: Any, billing: Sender, clock: Any, worker: Any
) -> None:
    wf = api.create_workflow(event_workflow())
    old = billing.secret
    status, rotated = api.post("/sources/billing/rotate", {"grace_seconds": 3600})
    assert status == 200 and rotated["secret"] != old
    assert billing.send({"type": "invoice.created"}, secret=old)[0] == 202
    assert billing.send({"type": "invoice.created"}, secret=rotated["secret"])[0] == 202
    clock.advance(3601)
    assert billing.send({"type": "invoice.created"}, secret=old)[0] == 401
    assert billing.send({"type": "invoice.created"}, secret=rotated["secret"])[0] == 202
    worker.sweep()  # as every minute in a deployed stack: enters the hour-old executions in the lists
    assert len(executions_of(api, wf)) == 3


def test_rotation_input_is_validated(api: Any, billing: Sender) -> None:
    status, body = api.post("/sources/billing/rotate", {"grace_seconds": -1})
    assert status == 400 and body["errors"][0]["field"] == "grace_seconds"
    assert api.post("/sources/nope/rotate", {})[0] == 404


def test_oversized_body_gets_413_and_malformed_bodies_400(api: Any, billing: Sender) -> None:
    wf = api.create_workflow(event_workflow())
    big = json.dumps({"type": "invoice.created", "blob": "x" * (1024 * 1024)}).encode()
    assert billing.post(big, billing.headers(big))[0] == 413
    for raw, field in ((b"{not json", "body"), (b"[1, 2]", "body"), (b'{"no": "type"}', "type")):
        status, answer = billing.post(raw, billing.headers(raw))
        assert status == 400, raw
        assert answer["errors"][0]["field"] == field
    assert executions_of(api, wf) == []


def test_malformed_body_with_a_bad_signature_is_401_not_400(api: Any, billing: Sender) -> None:
    raw = b"{not json"
    headers = billing.headers(raw)
    assert billing.post(raw + b" ", headers)[0] == 401


def test_unknown_source_is_404(client: Any, clock: Any) -> None:
    sender = Sender(client, clock, "ghost", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert sender.send({"type": "x"})[0] == 404


def test_filters_decide_which_events_start_the_workflow(api: Any, billing: Sender) -> None:
    big = api.create_workflow(event_workflow(filter="data.amount > `100`", name="Big"))
    eu = api.create_workflow(event_workflow(filter="data.region == 'eu'", name="EU"))
    status, body = billing.send({"type": "invoice.created", "data": {"amount": 500, "region": "us"}})
    assert status == 202 and len(body["executions"]) == 1
    assert len(executions_of(api, big)) == 1 and executions_of(api, eu) == []
    # A filter that errors on this payload (comparing a string) is a non-match, not a 500.
    status, body = billing.send({"type": "invoice.created", "data": {"amount": "lots", "region": "eu"}})
    assert status == 202 and len(body["executions"]) == 1
    assert len(executions_of(api, big)) == 1 and len(executions_of(api, eu)) == 1


def test_changing_the_trigger_moves_the_subscription(api: Any, billing: Sender) -> None:
    wf = api.create_workflow(event_workflow())
    status, _ = api.put(f"/workflows/{wf}", event_workflow(event_type="invoice.paid"))
    assert status == 200
    assert billing.send({"type": "invoice.created"})[1]["executions"] == []
    assert len(billing.send({"type": "invoice.paid"})[1]["executions"]) == 1


def test_replay_starts_fresh_executions_marked_as_replays(api: Any, billing: Sender) -> None:
    wf = api.create_workflow(event_workflow())
    _, first = billing.send({"type": "invoice.created", "n": 1})
    status, replay = api.post(f"/events/{first['event_id']}/replay")
    assert status == 202, replay
    assert replay["replay"] is True and len(replay["executions"]) == 1
    assert replay["executions"] != first["executions"]
    execution = api.execution(replay["executions"][0])
    assert execution["trigger"]["replay"] is True and execution["trigger"]["replayed_by"] == "admin"
    assert execution["input"] == {"type": "invoice.created", "n": 1}
    assert len(executions_of(api, wf)) == 2
    assert api.post("/events/evt_missing/replay")[0] == 404


def github_headers(secret: str, body: bytes, event: str = "push", delivery: str | None = None) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


def test_github_scheme_verifies_x_hub_signature_256(api: Any, client: Any, clock: Any) -> None:
    secret = create_source(api, "github", scheme="github")
    wf = api.create_workflow(event_workflow(source="github", event_type="push", filter="ref == 'refs/heads/main'"))
    sender = Sender(client, clock, "github", secret)
    body = json.dumps({"ref": "refs/heads/main", "after": "abc"}).encode()
    headers = github_headers(secret, body, delivery="d-1")
    status, answer = sender.post(body, headers)
    assert status == 202 and len(answer["executions"]) == 1
    assert sender.post(body, headers) == (200, answer)  # redelivery: first answer, nothing new
    assert sender.post(body.replace(b"abc", b"abd"), github_headers("wrong", body))[0] == 401
    tampered = github_headers(secret, body)
    assert sender.post(body.replace(b"abc", b"abd"), tampered)[0] == 401
    assert len(executions_of(api, wf)) == 1


def test_300_kb_webhook_body_is_kept_in_the_payload_bucket_and_runs(
    api: Any, billing: Sender, worker: Any, aws: Any
) -> None:
    wf = api.create_workflow(event_workflow())
    payload = {"type": "invoice.created", "lines": ["x" * 1000 for _ in range(300)]}
    status, body = billing.send(payload)
    assert status == 202, body
    status, stored = api.get(f"/events/{body['event_id']}")
    assert status == 200 and stored["payload"] == payload
    objects = aws.store.payloads.client.list_objects_v2(Bucket=aws.settings.payload_bucket)["Contents"]
    assert any(f"events/{body['event_id']}" in o["Key"] for o in objects), "large payloads live in the bucket"
    [summary] = executions_of(api, wf)
    assert api.execution(summary["execution_id"])["input"] == payload
    worker.drain()
    assert api.execution(summary["execution_id"])["status"] == "completed"
    status, replayed = api.post(f"/events/{body['event_id']}/replay")
    assert status in (200, 202) and len(replayed["executions"]) == 1
