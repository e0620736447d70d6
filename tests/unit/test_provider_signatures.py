"""GitHub, Stripe and Slack signatures checked against each provider's own published example or
official signer, so a misreading of a scheme fails here rather than on a real delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import stripe

from chalicelib.domain.signatures import SignatureProblem, verify_github, verify_slack, verify_stripe

# GitHub's "Validating webhook deliveries", "Testing the webhook payload validation".
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# Slack's "Verifying requests from Slack", the worked example (a slash command's form body).
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

STRIPE_SECRET = "whsec_test_0123456789abcdefghijklmnop"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_github_documented_example_verifies() -> None:
    headers = {"x-github-delivery": "d-1", "x-hub-signature-256": GITHUB_SIGNATURE}
    assert verify_github(headers, b"Hello, World!", [GITHUB_SECRET]).delivery_id == "d-1"
    with pytest.raises(SignatureProblem):
        verify_github(headers, b"Hello, World?", [GITHUB_SECRET])


def test_slack_documented_example_verifies_within_five_minutes_only() -> None:
    headers = {"x-slack-request-timestamp": str(SLACK_TIMESTAMP), "x-slack-signature": SLACK_SIGNATURE}
    at = datetime.fromtimestamp(SLACK_TIMESTAMP, tz=UTC)
    assert (
        verify_slack(
            headers, SLACK_BODY, ["other-secret-aaaaaaaa", SLACK_SECRET], at + timedelta(minutes=4)
        ).secret_index
        == 1
    )
    with pytest.raises(SignatureProblem, match="5 minutes old"):
        verify_slack(headers, SLACK_BODY, [SLACK_SECRET], at + timedelta(minutes=5, seconds=1))
    with pytest.raises(SignatureProblem, match="does not match"):
        verify_slack(headers, SLACK_BODY + b"&x=1", [SLACK_SECRET], at)
    with pytest.raises(SignatureProblem, match="v0="):
        verify_slack({**headers, "x-slack-signature": SLACK_SIGNATURE[3:]}, SLACK_BODY, [SLACK_SECRET], at)


def test_stripe_official_signer_is_accepted_and_our_reading_matches_its_verifier() -> None:
    body = '{"id": "evt_1", "type": "invoice.paid"}'
    header = stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET, int(NOW.timestamp()))
    assert verify_stripe({"stripe-signature": header}, body.encode(), [STRIPE_SECRET], NOW).timestamp == int(
        NOW.timestamp()
    )
    # The same header checked by Stripe's own verifier agrees (a tampered body fails both).
    assert stripe.WebhookSignature.verify_header(body, header, STRIPE_SECRET, tolerance=None)
    with pytest.raises(SignatureProblem):
        verify_stripe({"stripe-signature": header}, body.encode() + b" ", [STRIPE_SECRET], NOW)


def test_stripe_takes_any_of_several_v1_and_ignores_v0() -> None:
    body = '{"id": "evt_2", "type": "charge.refunded"}'
    t = int(NOW.timestamp())
    old = stripe.WebhookSignature.generate_signature_header(body, "whsec_old_secret_xxxxxxxxxxxxxxxx", t)
    new = stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET, t)
    v1_old, v1_new = old.split(",")[1], new.split(",")[1]
    header = f"t={t},v0=deadbeef,{v1_old},{v1_new}"  # as Stripe sends during a secret roll
    assert verify_stripe({"stripe-signature": header}, body.encode(), [STRIPE_SECRET], NOW).secret_index == 0
    with pytest.raises(SignatureProblem, match="no 'v1"):
        verify_stripe({"stripe-signature": f"t={t},v0=deadbeef"}, body.encode(), [STRIPE_SECRET], NOW)


@pytest.mark.parametrize("shift, problem", [(-301, "5 minutes old"), (301, "in the future")])
def test_stripe_tolerance_is_five_minutes(shift: int, problem: str) -> None:
    body = '{"id": "evt_3", "type": "x"}'
    header = stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET, int(NOW.timestamp()) + shift)
    with pytest.raises(SignatureProblem, match=problem):
        verify_stripe({"stripe-signature": header}, body.encode(), [STRIPE_SECRET], NOW)
    edge = stripe.WebhookSignature.generate_signature_header(body, STRIPE_SECRET, int(NOW.timestamp()) - 300)
    assert verify_stripe({"stripe-signature": edge}, body.encode(), [STRIPE_SECRET], NOW)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=abc,v1=00", "t=1,t=2,v1=00"])
def test_malformed_stripe_headers_are_refused(header: str) -> None:
    with pytest.raises(SignatureProblem):
        verify_stripe({"stripe-signature": header}, b"{}", [STRIPE_SECRET], NOW)
