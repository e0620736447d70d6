"""Store faults injected at the AWS SDK boundary (botocore's ``before-call`` event), the
errors moto cannot produce: TransactionConflict cancellations, throttling, 5xx (DynamoDB), and
refused sends (SQS).

A rule answers matching DynamoDB calls with an error instead of calling moto, ``times``
times; an ``after`` rule lets the call happen and then raises (an answer lost after a commit). Nothing of Stepline is patched: the engine sees exactly what DynamoDB would send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import botocore.handlers
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError


@dataclass
class Rule:
    operation: str  # "PutItem", "TransactWriteItems", ...
    code: str  # e.g. "ProvisionedThroughputExceededException", "TransactionCanceledException"
    times: int = 1
    needle: str = ""  # a substring the request body must hold
    reasons: list[str] = field(default_factory=list)  # cancellation reason codes, one per transaction item
    status: int = 400
    hits: int = 0
    #: the call happens (a write is committed), then the caller gets the error: a lost answer
    after: bool = False


class Faults:
    """The active rules (module-wide: botocore sessions are created lazily by the app)."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        #: while ``recording``: every DynamoDB call made, as (operation, request body)
        self.recording = False
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def add(self, rule: Rule) -> Rule:
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def matching(self, operation: str, body: bytes, after: bool) -> Rule | None:
        for rule in self.rules:
            if rule.after == after and rule.times > 0 and rule.operation == operation and rule.needle.encode() in body:
                rule.times -= 1
                rule.hits += 1
                return rule
        return None

    def answer(self, operation: str, body: bytes) -> Any:
        for rule in self.rules:
            if rule.after:
                continue
            if rule.times > 0 and rule.operation == operation and rule.needle.encode() in body:
                rule.times -= 1
                rule.hits += 1
                parsed: dict[str, Any] = {
                    "Error": {"Code": rule.code, "Message": "injected by the test"},
                    "ResponseMetadata": {"HTTPStatusCode": rule.status},
                }
                if rule.reasons:
                    parsed["CancellationReasons"] = [{"Code": code, "Message": code} for code in rule.reasons]
                return AWSResponse("https://dynamodb.test", rule.status, {}, None), parsed
        return None


FAULTS = Faults()


def _inject(model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
    body = params.get("body") or b""
    if FAULTS.recording:
        FAULTS.calls.append((model.name, json.loads(body or b"{}")))
    if not FAULTS.rules:
        return None
    raw = body.encode() if isinstance(body, str) else body
    if context is not None:
        context["stepline_fault_body"] = raw  # for an ``after`` rule, once the call is made
    return FAULTS.answer(model.name, raw)


def _inject_after(model: Any, http_response: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
    if not FAULTS.rules or context is None or getattr(http_response, "status_code", 200) >= 300:
        return
    rule = FAULTS.matching(model.name, context.get("stepline_fault_body", b""), after=True)
    if rule is not None:
        raise ClientError(
            {
                "Error": {"Code": rule.code, "Message": "injected by the test after the call"},
                "ResponseMetadata": {"HTTPStatusCode": rule.status},
            },
            model.name,
        )


# Every botocore session created after this import carries the hook; with no rules it does nothing.
# SQS too: a refused SendMessage is a worker that died between its commit and its hand-over.
for _service in ("dynamodb", "sqs"):
    if (f"before-call.{_service}", _inject) not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append((f"before-call.{_service}", _inject))
    if (f"after-call.{_service}", _inject_after) not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append((f"after-call.{_service}", _inject_after))
