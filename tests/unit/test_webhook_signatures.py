"""Webhook signature checks (pure), against the reference ``standardwebhooks`` signer."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from chalicelib.domain.signatures import SignatureProblem, verify_github, verify_standard

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
BODY = b'{"type":"invoice.created","n":1}'


def headers(secret: str, body: bytes = BODY, msg_id: str = "msg_1", at: datetime = NOW) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


def test_reference_signature_verifies_and_names_the_matching_secret() -> None:
    assert verify_standard(headers(OLD), BODY, [NEW, OLD], NOW).secret_index == 1
    assert verify_standard(headers(NEW), BODY, [NEW, OLD], NOW).delivery_id == "msg_1"


@pytest.mark.parametrize("change", ["body", "id", "timestamp", "secret"])
def test_any_change_to_the_signed_parts_fails(change: str) -> None:
    h = headers(OLD)
    body = BODY
    if change == "body":
        body = BODY.replace(b"1", b"2")
    elif change == "id":
        h["webhook-id"] = "msg_2"
    elif change == "timestamp":
        h["webhook-timestamp"] = str(int(NOW.timestamp()) + 1)
    with pytest.raises(SignatureProblem):
        verify_standard(h, body, [NEW] if change == "secret" else [OLD], NOW)


def test_tolerance_is_five_minutes_both_ways() -> None:
    for seconds in (-300, 300):
        verify_standard(headers(OLD, at=NOW + timedelta(seconds=seconds)), BODY, [OLD], NOW)
    for seconds, word in ((-301, "old"), (301, "future")):
        with pytest.raises(SignatureProblem, match=word):
            verify_standard(headers(OLD, at=NOW + timedelta(seconds=seconds)), BODY, [OLD], NOW)


def test_non_numeric_timestamp_and_unversioned_signatures_fail() -> None:
    h = headers(OLD)
    h["webhook-timestamp"] = "1e9"
    with pytest.raises(SignatureProblem, match="whole seconds"):
        verify_standard(h, BODY, [OLD], NOW)
    h = headers(OLD)
    h["webhook-signature"] = h["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(SignatureProblem, match="v1"):
        verify_standard(h, BODY, [OLD], NOW)


def test_github_signature_is_hmac_hex_of_the_body_with_the_raw_secret() -> None:
    digest = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    h = {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": "d-1"}
    lower = {k.lower(): v for k, v in h.items()}
    assert verify_github(lower, BODY, ["s3cret"]).delivery_id == "d-1"
    with pytest.raises(SignatureProblem):
        verify_github(lower, BODY + b" ", ["s3cret"])
    with pytest.raises(SignatureProblem, match="hexadecimal"):
        verify_github({**lower, "x-hub-signature-256": "sha256=zz"}, BODY, ["s3cret"])
