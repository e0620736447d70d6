"""Shared fixtures: moto-backed AWS with the template's resources, a controllable clock,
the real Chalice app through ``chalice.test.Client``, and a worker that drains the queue
through the real SQS handler."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

ADMIN_KEY = "test-admin-key"

# Like local mode, the tests call services on loopback (scripted third parties); a test of the
# outbound guard itself sets the variable to "0" with monkeypatch.
os.environ.setdefault("STEPLINE_OUTBOUND_ALLOW_PRIVATE", "1")

# The emulator behaves like DynamoDB under concurrency, as in local mode (patches moto only).
from chalicelib.local.dynamo_isolation import install as _isolate_dynamodb  # noqa: E402

_isolate_dynamodb()


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "STEPLINE_ADMIN_KEY": ADMIN_KEY,
        "STEPLINE_STAGE": "dev",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from chalicelib.config import Settings
    from chalicelib.engine import Engine, reset_engine
    from chalicelib.local.resources import create_resources

    with mock_aws():
        settings = Settings.from_env()
        create_resources(settings)
        engine = Engine.build(settings, clock=clock)
        reset_engine(engine)
        yield engine
        reset_engine(None)


@pytest.fixture
def client(aws: Any) -> Iterator[Any]:
    from chalice.test import Client

    from app import app
    from chalicelib.local.stream import StreamPump

    with Client(app) as c:
        # Lambda's stream event source: the real aggregate handler gets the table's stream,
        # pumped after every API call and delivery (counts then read as they will seconds later)
        c.stream = StreamPump(aws.settings, lambda event: c.lambda_.invoke("aggregate", event))
        yield c


@pytest.fixture
def api(client: Any) -> Api:
    return Api(client, ADMIN_KEY)


def drain_stream(client: Any) -> None:
    """Hand the stream's new head changes to the aggregator (clients made by the ``client``
    fixture carry the pump; a test that builds its own client goes without counts)."""
    pump = getattr(client, "stream", None)
    if pump is not None:
        pump.drain()


class Api:
    """Thin helpers over the test client: JSON in, (status, JSON) out."""

    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}", "Content-Type": "application/json", **extra}

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        h = self.headers(key, **(headers or {}))
        kwargs: dict[str, Any] = {"headers": h}
        if body is not None:
            kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        response = getattr(self.client.http, method.lower())(path, **kwargs)
        drain_stream(self.client)
        try:
            data = json.loads(response.body) if response.body else None
        except ValueError:
            data = response.body
        return response.status_code, data

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("PUT", path, body, **kw)

    def create_workflow(self, definition: dict[str, Any]) -> str:
        status, body = self.post("/workflows", definition)
        assert status == 201, body
        return body["workflow_id"]

    def start(self, workflow_id: str, inputs: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        status, body = self.post(f"/workflows/{workflow_id}/executions", {"inputs": inputs or {}}, **kw)
        assert status == 201, body
        return body

    def execution(self, execution_id: str) -> dict[str, Any]:
        status, body = self.get(f"/executions/{execution_id}")
        assert status == 200, body
        return body

    def history_types(self, execution_id: str) -> list[str]:
        return [e["type"] for e in self.get(f"/executions/{execution_id}/history")[1]["items"]]


@pytest.fixture
def worker(client: Any, aws: Any) -> Worker:
    return Worker(client, aws)


class Worker:
    """Drains the step queue through the real ``run_step`` SQS handler, as Lambda would."""

    def __init__(self, client: Any, engine: Any) -> None:
        self.client = client
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.queue_name = engine.settings.step_queue
        self.url = self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]

    def receive(self, max_messages: int = 10) -> list[dict[str, Any]]:
        return self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=0).get(
            "Messages", []
        )

    def deliver(self, body: str) -> Any:
        event = self.client.events.generate_sqs_event(queue_name=self.queue_name, message_bodies=[body])
        try:
            return self.client.lambda_.invoke("run_step", event)
        finally:
            drain_stream(self.client)

    def drain(self, limit: int = 200) -> list[str]:
        """Deliver every queued message (and those they enqueue) until the queue is empty."""
        delivered: list[str] = []
        for _ in range(limit):
            messages = self.receive()
            if not messages:
                return delivered
            for message in messages:
                self.deliver(message["Body"])
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                delivered.append(message["Body"])
        raise AssertionError("queue did not drain")

    def sweep(self) -> Any:
        event = self.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        try:
            return self.client.lambda_.invoke("sweep", event)
        finally:
            drain_stream(self.client)
