"""Drive Stepline through its real handlers on moto, the way Lambda and API Gateway would.

``Harness`` wraps a ``chalice.test.Client`` and an ``Engine`` (the bench builds both inside
``environment()``; the tests pass their fixtures). Step messages are really received from
the moto queue, delivered to the ``run_step`` SQS handler, and deleted, as the Lambda
event source mapping does with ``batch_size=1``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from bench.capacity import TableSpec, table_specs
from bench.metering import Meter, MotoItems, attach

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "template.json"
ADMIN_KEY = "bench-admin-key"

#: The benchmarked workflow: five ``transform`` steps, outputs well under 1 KB.
FIVE_STEPS: dict[str, Any] = {
    "name": "Bench five steps",
    "trigger": {
        "type": "manual",
        "inputs": [
            {"name": "customer", "type": "string", "required": True},
            {"name": "amount", "type": "number", "required": True},
        ],
    },
    "steps": [
        {"id": "draft", "agent": "transform", "instructions": "{customer: input.customer, total: input.amount}"},
        {
            "id": "double",
            "agent": "transform",
            "instructions": "{customer: prev.customer, total: sum([prev.total, prev.total])}",
        },
        {"id": "tax", "agent": "transform", "instructions": "{customer: prev.customer, total: prev.total, tax: `0.2`}"},
        {
            "id": "label",
            "agent": "transform",
            "instructions": "{customer: prev.customer, line: join(' ', [prev.customer, 'owes'])}",
        },
        {
            "id": "summary",
            "agent": "transform",
            "instructions": "{done: `true`, customer: steps.draft.output.customer}",
        },
    ],
}


class Clock:
    """The engine's clock, moved by hand (the bench starts it at the real time)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def table_map(settings: Any) -> dict[str, TableSpec]:
    specs = table_specs(TEMPLATE)
    return {settings.catalog_table: specs["CatalogTable"], settings.executions_table: specs["ExecutionsTable"]}


def attach_engine(engine: Any, *clients: Any) -> None:
    """Hook the meter into the botocore emitters the engine already holds: its SQS and
    EventBridge clients and every PynamoDB connection (each model class has its own, plus
    the transaction one)."""
    attach(engine.queue.client.meta.events)
    attach(engine.notifier.clients("events").meta.events)  # the aggregator's status events
    from pynamodb.models import Model

    from chalicelib.store.models import bound_models, connection

    seen: set[int] = set()
    # each model class has its own connection (TableConnection wraps a Connection)
    connections = [connection()] + [model._get_connection().connection for model in bound_models(Model)]
    for conn in connections:
        if id(conn) in seen:
            continue
        seen.add(id(conn))
        attach(conn.session)
        attach(conn.client.meta.events)
    for client in clients:
        attach(client.meta.events)


class Harness:
    def __init__(self, client: Any, engine: Any, meter: Meter, admin_key: str) -> None:
        self.client = client
        self.engine = engine
        self.meter = meter
        self.admin_key = admin_key
        settings = engine.settings
        self.sqs = boto3.client("sqs", region_name=settings.region, endpoint_url=settings.endpoint_url)
        attach_engine(engine, self.sqs)
        self.queue_name = settings.step_queue
        #: stream records read per aggregator batch (None: the template's batch size)
        self.stream_read_limit: int | None = None
        with meter.pause():
            self.url = self.sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]

    @classmethod
    def for_engine(cls, client: Any, engine: Any, admin_key: str) -> Harness:
        return cls(client, engine, Meter(table_map(engine.settings), MotoItems(engine.settings.region)), admin_key)

    # ------------------------------------------------------------------ HTTP
    def http(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        """One API request through API Gateway + the API Lambda (counted as an invocation)."""
        headers = {"Authorization": f"Bearer {key or self.admin_key}", "Content-Type": "application/json"}
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        response = self.meter.invoke("api", lambda: getattr(self.client.http, method.lower())(path, **kwargs))
        data = json.loads(response.body) if response.body else None
        return response.status_code, data

    def ok(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        status, data = self.http(method, path, body, key)
        if status >= 300:
            raise RuntimeError(f"{method} {path} answered {status}: {data}")
        return data

    def operator_key(self) -> str:
        """A stored operator key, so API calls authenticate as a deployed caller would (made once:
        key names are unique)."""
        if getattr(self, "_operator_key", None) is None:
            with self.meter.pause():
                self._operator_key = self.ok("POST", "/keys", {"name": "bench-operator", "role": "operator"})["key"]
        return self._operator_key

    # ------------------------------------------------------------------- SQS
    def receive(self, max_messages: int = 1) -> list[dict[str, Any]]:
        return self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=0).get(
            "Messages", []
        )

    def deliver(self, messages: list[dict[str, Any]]) -> Any:
        """Invoke ``run_step`` with the received messages, then delete them (as the ESM does)."""
        event = self.client.events.generate_sqs_event(
            queue_name=self.queue_name, message_bodies=[m["Body"] for m in messages]
        )
        result = self.meter.invoke("run_step", lambda: self.client.lambda_.invoke("run_step", event))
        if len(messages) == 1:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=messages[0]["ReceiptHandle"])
        else:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return result

    # ---------------------------------------------------------------- stream
    def aggregate(self, counted: bool = True) -> int:
        """Hand the stream's new head changes to the ``aggregate`` function, as its event source
        mapping does (batches of up to the template's batch size). The stream reads are
        Lambda's own (free for DynamoDB triggers) and not counted; the invocations and what
        the function calls are. Returns the records read."""
        if getattr(self, "_pump", None) is None:
            from chalicelib.local.stream import StreamPump

            def deliver(event: dict[str, Any]) -> Any:
                previous, self.meter.paused = self.meter.paused, not self._counting
                try:
                    self.aggregated_records += len(event["Records"]) if self._counting else 0
                    return self.meter.invoke("aggregate", lambda: self.client.lambda_.invoke("aggregate", event))
                finally:
                    self.meter.paused = previous

            self._pump = StreamPump(self.engine.settings, deliver)
            self.aggregated_records = 0
        if self.stream_read_limit:
            # records read per shard and pass; the head changes among them form one batch
            self._pump.batch_size = self.stream_read_limit
        self._counting = counted
        with self.meter.pause(), self.meter.tagged("aggregate"):
            return int(self._pump.drain())

    def invoke_schedule(self, name: str) -> Any:
        event = self.client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        return self.meter.invoke(name, lambda: self.client.lambda_.invoke(name, event))

    def schedule_handlers(self) -> list[str]:
        """Names of the app's ``@app.schedule`` handlers."""
        from chalice.app import ScheduledEventConfig

        from app import app

        return [s.name for s in app.event_sources if isinstance(s, ScheduledEventConfig)]


@contextmanager
def environment(clock: Clock | None = None) -> Iterator[tuple[Any, Any, Clock]]:
    """moto, the template's resources, an engine on ``clock`` and the Chalice test client,
    as tests/conftest.py's ``aws`` and ``client`` fixtures build them."""
    from moto import mock_aws

    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "STEPLINE_ADMIN_KEY": ADMIN_KEY,
        "STEPLINE_STAGE": "dev",
    }
    saved = {k: os.environ.get(k) for k in [*values, "AWS_ENDPOINT_URL"]}
    os.environ.update(values)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    clock = clock or Clock()
    try:
        from chalice.test import Client

        from chalicelib.config import Settings
        from chalicelib.engine import Engine, reset_engine
        from chalicelib.local.resources import create_resources

        with mock_aws():
            settings = Settings.from_env()
            create_resources(settings)
            engine = Engine.build(settings, clock=clock)
            reset_engine(engine)
            from app import app

            with Client(app) as client:
                yield client, engine, clock
            reset_engine(None)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
