"""GitHub (JSON and form bodies), Stripe and Slack webhooks through the real handler: the
provider-issued secrets, each scheme's id and type, Slack's url_verification, and how long
GitHub delivery ids are remembered."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
import stripe

from tests.conftest import Api, Clock

STEPS = [{"id": "echo", "agent": "transform", "instructions": "input"}]
STRIPE_SECRET = "whsec_" + "s3cr3t" * 6
SLACK_SECRET = "8f742231b10e8888abcd99aaabbb85a5"
GITHUB_SECRET = "my chosen github secret"


def _workflow(api: Api, source: str, event_type: str) -> str:
    return api.create_workflow(
        {
            "name": f"On {event_type}",
            "steps": STEPS,
            "trigger": {"type": "event", "source": source, "event_type": event_type},
        }
    )


def _post(api: Api, source: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    response = api.client.http.post(f"/webhooks/{source}", headers=headers, body=body)
    return response.status_code, json.loads(response.body) if response.body else None


def _github(
    body: bytes, delivery: str, event: str = "push", form: bool = False, secret: str = GITHUB_SECRET
) -> dict[str, str]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
    }


def _slack(body: bytes, clock: Clock, secret: str = SLACK_SECRET) -> dict[str, str]:
    stamp = str(int(clock.now.timestamp()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}", "Content-Type": "application/json"}


def test_github_form_body_is_verified_as_sent_and_its_payload_starts_the_workflow(api: Api) -> None:
    status, body = api.post("/sources", {"name": "gh", "scheme": "github", "secret": GITHUB_SECRET})
    assert status == 201 and "secret" not in body  # the secret is the user's own; never echoed
    _workflow(api, "gh", "push")
    payload = {"ref": "refs/heads/main", "repository": {"full_name": "acme/app"}}
    form = urlencode({"payload": json.dumps(payload)}).encode()
    status, answer = _post(api, "gh", form, _github(form, "d-1", form=True))
    assert status == 202 and len(answer["executions"]) == 1, answer
    execution = api.execution(answer["executions"][0])
    assert execution["input"] == payload and execution["trigger"]["event_type"] == "push"
    json_body = json.dumps(payload).encode()
    assert _post(api, "gh", json_body, _github(json_body, "d-2"))[0] == 202
    # A signature over the decoded JSON is not what GitHub signs for a form body.
    assert (
        _post(api, "gh", form, {**_github(json_body, "d-3"), "Content-Type": "application/x-www-form-urlencoded"})[0]
        == 401
    )
    bad_form = b"payload=%7Bnot-json"
    assert _post(api, "gh", bad_form, _github(bad_form, "d-4", form=True))[0] == 400
    no_payload = b"other=1"
    assert _post(api, "gh", no_payload, _github(no_payload, "d-5", form=True))[0] == 400


def test_github_delivery_ids_are_kept_thirty_days_by_default(api: Api, clock: Clock, worker: Any) -> None:
    api.post("/sources", {"name": "gh", "scheme": "github", "secret": GITHUB_SECRET})
    _workflow(api, "gh", "push")
    body = b'{"ref": "main"}'
    status, first = _post(api, "gh", body, _github(body, "captured"))
    assert status == 202
    clock.advance(121)
    worker.sweep()  # as every minute in a deployed stack: enters the execution in the lists
    clock.advance(29 * 86400)  # a captured delivery posted again weeks later: the first answer, nothing new
    assert _post(api, "gh", body, _github(body, "captured")) == (200, first)
    assert len(api.get("/executions")[1]["items"]) == 1


def test_the_github_dedupe_window_is_configurable(
    monkeypatch: pytest.MonkeyPatch, aws: Any, clock: Clock, client: Any, api: Api
) -> None:
    from chalicelib.config import Settings
    from chalicelib.engine import Engine, reset_engine

    monkeypatch.setenv("STEPLINE_WEBHOOK_DEDUPE_DAYS", "90")
    reset_engine(Engine.build(Settings.from_env(), clock=clock))
    api.post("/sources", {"name": "gh", "scheme": "github", "secret": GITHUB_SECRET})
    _workflow(api, "gh", "push")
    body = b'{"ref": "main"}'
    status, first = _post(api, "gh", body, _github(body, "x"))
    clock.advance(60 * 86400)
    assert status == 202 and _post(api, "gh", body, _github(body, "x")) == (200, first)
    with pytest.raises(ValueError, match="STEPLINE_WEBHOOK_DEDUPE_DAYS"):
        Settings.from_env({"STEPLINE_WEBHOOK_DEDUPE_DAYS": "a month"})


def test_stripe_event_signed_by_the_stripe_package_starts_once(api: Api, clock: Clock) -> None:
    status, body = api.post("/sources", {"name": "pay", "scheme": "stripe", "secret": STRIPE_SECRET})
    assert status == 201 and "secret" not in body and body["scheme"] == "stripe"
    _workflow(api, "pay", "invoice.paid")
    event = json.dumps({"id": "evt_1AbC", "type": "invoice.paid", "data": {"object": {"amount_paid": 4200}}})
    header = stripe.WebhookSignature.generate_signature_header(event, STRIPE_SECRET, int(clock.now.timestamp()))
    headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
    status, answer = _post(api, "pay", event.encode(), headers)
    assert status == 202 and len(answer["executions"]) == 1
    assert api.execution(answer["executions"][0])["input"]["data"]["object"]["amount_paid"] == 4200
    # Stripe retries an event with the same id and a fresh signature: nothing new starts.
    clock.advance(60)
    retry = stripe.WebhookSignature.generate_signature_header(event, STRIPE_SECRET, int(clock.now.timestamp()))
    assert _post(api, "pay", event.encode(), {**headers, "Stripe-Signature": retry}) == (200, answer)
    clock.advance(301)  # the first signature is now stale
    assert _post(api, "pay", event.encode(), headers)[0] == 401
    forged = stripe.WebhookSignature.generate_signature_header(
        event, "whsec_not_the_secret_aaaaaaaa", int(clock.now.timestamp())
    )
    assert _post(api, "pay", event.encode(), {**headers, "Stripe-Signature": forged})[0] == 401


def test_slack_url_verification_is_answered_only_when_signed(api: Api, clock: Clock) -> None:
    assert api.post("/sources", {"name": "chat", "scheme": "slack", "secret": SLACK_SECRET})[0] == 201
    body = json.dumps(
        {"type": "url_verification", "token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    ).encode()
    status, answer = _post(api, "chat", body, _slack(body, clock))
    assert status == 200 and answer == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert _post(api, "chat", body, _slack(body, clock, secret="0" * 32))[0] == 401


def test_slack_event_callback_starts_on_its_event_type_and_dedupes_retries(api: Api, clock: Clock) -> None:
    api.post("/sources", {"name": "chat", "scheme": "slack", "secret": SLACK_SECRET})
    _workflow(api, "chat", "app_mention")
    body = json.dumps(
        {
            "type": "event_callback",
            "event_id": "Ev08MFMKH6",
            "team_id": "T1",
            "event": {"type": "app_mention", "text": "<@U0LAN0Z89> deploy please", "user": "U2"},
        }
    ).encode()
    status, answer = _post(api, "chat", body, _slack(body, clock))
    assert status == 202 and len(answer["executions"]) == 1
    clock.advance(30)  # Slack's retry: same event_id, new timestamp and signature
    assert _post(api, "chat", body, {**_slack(body, clock), "X-Slack-Retry-Num": "1"}) == (200, answer)
    clock.advance(400)
    stale = _slack(body, clock)
    stale["X-Slack-Request-Timestamp"] = str(int(clock.now.timestamp()) - 301)
    assert _post(api, "chat", body, stale)[0] == 401


@pytest.mark.parametrize(
    "request_body, field",
    [
        ({"name": "p", "scheme": "stripe"}, "secret"),
        ({"name": "p", "scheme": "stripe", "secret": "sk_live_abcdefghijklmnop"}, "secret"),
        ({"name": "p", "scheme": "slack"}, "secret"),
        ({"name": "p", "scheme": "slack", "secret": "short"}, "secret"),
        ({"name": "p", "scheme": "github", "secret": "weak"}, "secret"),
        ({"name": "p", "scheme": "standard", "secret": "not-whsec"}, "secret"),
        ({"name": "p", "scheme": "stripe", "secret": 42}, "secret"),
        ({"name": "p", "scheme": "teams"}, "scheme"),
    ],
)
def test_bad_or_missing_provider_secrets_are_400_naming_the_field(
    api: Api, request_body: dict[str, Any], field: str
) -> None:
    status, body = api.post("/sources", request_body)
    assert status == 400 and [e["field"] for e in body["errors"]] == [field], body


def test_rotating_a_provider_secret_keeps_the_old_one_for_the_grace_period(api: Api, clock: Clock) -> None:
    api.post("/sources", {"name": "pay", "scheme": "stripe", "secret": STRIPE_SECRET})
    _workflow(api, "pay", "invoice.paid")
    assert api.post("/sources/pay/rotate", {})[0] == 400  # Stripe issues the new one
    new_secret = "whsec_" + "n3w" * 12
    status, body = api.post("/sources/pay/rotate", {"secret": new_secret, "grace_seconds": 600})
    assert status == 200 and "secret" not in body
    for secret in (STRIPE_SECRET, new_secret):
        event = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "invoice.paid"})
        header = stripe.WebhookSignature.generate_signature_header(event, secret, int(clock.now.timestamp()))
        assert _post(api, "pay", event.encode(), {"Stripe-Signature": header})[0] == 202
    status, listed = api.get("/sources")
    assert all("secret" not in item for item in listed["items"])
