"""The step queue: every SQS call. Messages carry ids only, never payloads."""

from __future__ import annotations

import json
from typing import Any

import boto3

from chalicelib.config import Settings


class _Queue:
    """One SQS queue, named by a ``Settings`` field; its client and URL are made on first use."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = client
        self._url: str | None = None

    def _name(self) -> str:
        raise NotImplementedError

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client(
                "sqs", region_name=self._settings.region, endpoint_url=self._settings.endpoint_url
            )
        return self._client

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = self.client.get_queue_url(QueueName=self._name())["QueueUrl"]
        return self._url


class StepQueue(_Queue):
    def _name(self) -> str:
        return self._settings.step_queue

    def send(self, execution_id: str, step_id: str, attempt: int, delay_seconds: int = 0) -> None:
        body = json.dumps({"execution_id": execution_id, "step_id": step_id, "attempt": attempt})
        self.client.send_message(QueueUrl=self.url, MessageBody=body, DelaySeconds=max(0, min(900, delay_seconds)))

    def extend_visibility(self, receipt_handle: str, seconds: int) -> None:
        """Keep a message hidden while its long step still runs (the heartbeat does this)."""
        self.client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(43200, seconds))
        )

    def send_task(self, kind: str, payload: dict[str, Any], delay_seconds: int = 0) -> None:
        """Send a non-step message (``{"kind": ..., ...}``) on the same queue, e.g. a bulk chunk or a
        notification retry (``delay_seconds``: SQS keeps it invisible that long, at most 900)."""
        body = json.dumps({**payload, "kind": kind}, default=str)
        self.client.send_message(QueueUrl=self.url, MessageBody=body, DelaySeconds=min(900, max(0, delay_seconds)))


def parse_message(body: str) -> tuple[str, str, int]:
    """(execution_id, step_id, attempt) from a step message; ValueError if malformed."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("step message is not an object")
    execution_id, step_id, attempt = data.get("execution_id"), data.get("step_id"), data.get("attempt")
    if not isinstance(execution_id, str) or not isinstance(step_id, str) or not isinstance(attempt, int):
        raise ValueError(f"malformed step message: {body[:200]}")
    return execution_id, step_id, attempt


def message_kind(body: str) -> str:
    """The ``kind`` of a message: ``"step"`` for step messages (which carry none) and anything unreadable."""
    try:
        data = json.loads(body)
    except ValueError:
        return "step"
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else "step"


def parse_task(body: str) -> dict[str, Any]:
    """The payload of a non-step message (see ``StepQueue.send_task``)."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("task message is not an object")
    return data


class DeadLetterQueue(_Queue):
    """The step queue's dead-letter queue: where SQS puts a message the worker failed on
    ``maxReceiveCount`` times (infra/template.json). Read, deleted and counted by the sweep."""

    def _name(self) -> str:
        return self._settings.step_dlq

    def receive(self, max_messages: int = 10) -> list[dict[str, Any]]:
        """Up to ``max_messages`` dead letters (hidden for a minute while they are handled)."""
        return self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
            AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])

    def delete(self, receipt_handle: str) -> None:
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt_handle)

    def depth(self) -> int:
        """Dead letters waiting now (approximate, as SQS counts them)."""
        attributes = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))
