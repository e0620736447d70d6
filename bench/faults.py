"""Fault injection at the botocore level, for the chaos run (``bench/chaos.py``).

A handler added to ``botocore.handlers.BUILTIN_HANDLERS`` is registered on every botocore
session created afterwards (boto3's default session and each session PynamoDB's
``Connection`` makes), so every AWS call Stepline makes passes through it without touching
Stepline's code:

- ``before-call``: answer instead of AWS with DynamoDB throttling (400
  ``ThrottlingException``), a 5xx (``InternalServerError``) or a transaction conflict
  (``TransactionCanceledException`` with ``TransactionConflict`` reasons, or
  ``TransactionConflictException`` for a single-item write): the request never happened.
  Reads (``GetItem``, ``Query``...) get throttling and 5xx too, counted as
  ``throttled-read`` and ``server-error-read``;
- ``after-call``: the request happened (a write is committed) but the caller sees a 5xx, as
  when a connection drops after the commit: the ambiguous case;
- SQS ``SendMessage`` refused before the call: a worker that dies between its commit and
  the hand-over message.

``Faults.active`` switches injection on and off; every injected fault is counted.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


@dataclass
class Faults:
    """Probabilities per call; ``seed`` makes a run repeatable (thread timing aside)."""

    throttle: float = 0.02
    server_error: float = 0.01
    conflict: float = 0.02
    after_commit: float = 0.01
    lost_send: float = 0.02
    seed: int = 15
    active: bool = False
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def roll(self, probability: float) -> bool:
        with self._lock:
            return self.active and self._random.random() < probability

    # ------------------------------------------------------------------ hooks
    def before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        service = model.service_model.service_name
        operation = model.name
        if service == "sqs" and operation == "SendMessage" and self.roll(self.lost_send):
            return self._answer("sqs-send-lost", 500, "InternalError", "injected: worker died before sending")
        if service != "dynamodb":
            return None
        # reads are throttled and failed too (counted apart): they are retried, then a 503
        read = "-read" if operation in READS else ""
        if self.roll(self.throttle):
            return self._answer(f"throttled{read}", 400, "ThrottlingException", "injected: rate exceeded")
        if self.roll(self.server_error):
            return self._answer(f"server-error{read}", 500, "InternalServerError", "injected: internal server error")
        if operation in WRITES and self.roll(self.conflict):
            if operation == "TransactWriteItems":
                reasons = [{"Code": "TransactionConflict", "Message": "injected"}] * _transact_items(params)
                return self._answer(
                    "transaction-conflict",
                    400,
                    "TransactionCanceledException",
                    "Transaction cancelled, please refer cancellation reasons for specific reasons "
                    f"[{', '.join(['TransactionConflict'] * len(reasons))}]",
                    CancellationReasons=reasons,
                )
            return self._answer(
                "transaction-conflict",
                400,
                "TransactionConflictException",
                "injected: transaction conflict on the item",
            )
        return None

    def after_call(self, model: Any, http_response: Any, **_: Any) -> None:
        if model.service_model.service_name != "dynamodb" or model.name not in WRITES:
            return
        if http_response is not None and getattr(http_response, "status_code", 200) >= 300:
            return
        if self.roll(self.after_commit):
            with self._lock:
                self.counts["lost-response-after-commit"] += 1
            raise ClientError(
                {
                    "Error": {"Code": "InternalServerError", "Message": "injected: response lost after commit"},
                    "ResponseMetadata": {"HTTPStatusCode": 500},
                },
                model.name,
            )

    def _answer(self, kind: str, status: int, code: str, message: str, **extra: Any) -> tuple[Any, dict[str, Any]]:
        with self._lock:
            self.counts[kind] += 1
        response = AWSResponse("https://injected.invalid/", status, {}, None)
        return response, {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
            **extra,
        }


def _transact_items(request: dict[str, Any]) -> int:
    """How many items a serialised TransactWriteItems request holds (its body is JSON)."""
    body = request.get("body") or b"{}"
    try:
        return max(1, len(json.loads(body).get("TransactItems", [])))
    except (ValueError, TypeError, AttributeError):
        return 1


_INSTALLED: list[Faults] = []


def install(faults: Faults) -> Faults:
    """Register ``faults`` on every botocore session created from now on (once per process;
    later calls re-point the hooks at the new ``faults``)."""
    import botocore.handlers

    if not _INSTALLED:
        botocore.handlers.BUILTIN_HANDLERS.append(("before-call.*.*", _before_call))
        botocore.handlers.BUILTIN_HANDLERS.append(("after-call.*.*", _after_call))
        _INSTALLED.append(faults)
    _INSTALLED[0] = faults
    return faults


def _before_call(**kwargs: Any) -> Any:
    return _INSTALLED[0].before_call(**kwargs) if _INSTALLED else None


def _after_call(**kwargs: Any) -> None:
    if _INSTALLED:
        _INSTALLED[0].after_call(**kwargs)
