"""Lambda's event plumbing for local mode: an SQS poller and a schedule ticker.

In AWS, Lambda's event source mapping long-polls the step queue and invokes the app's SQS
handler, and EventBridge invokes the scheduled handlers. Locally these two loops do the same
against the emulated (or configured) AWS endpoint, calling the handlers that the Chalice app
registered, found generically through ``app.event_sources`` (``SQSEventConfig`` and
``ScheduledEventConfig``) and ``app.handler_map[config.name]``.

The SQS side keeps Lambda's delivery semantics, so redelivery and the visibility timeout
behave as deployed (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html):

* a batch whose handler returns is deleted;
* a batch whose handler raises is left on the queue: it comes back after the queue's
  visibility timeout with a higher ``ApproximateReceiveCount``, and the queue's redrive
  policy moves it to the dead-letter queue after ``maxReceiveCount`` receives;
* a returned ``{"batchItemFailures": [{"itemIdentifier": <messageId>}]}`` keeps only those
  messages (an identifier that is not in the batch fails the whole batch, as in Lambda).

Used only by ``chalicelib.local.server``; nothing here runs in the deployed functions.
"""

from __future__ import annotations

import base64
import datetime as _dt
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chalice.app import Chalice, ScheduledEventConfig, ScheduleExpression, SQSEventConfig
from chalice.local import LambdaContext
from croniter import croniter

__all__ = [
    "LOCAL_ACCOUNT_ID",
    "QueueBinding",
    "QueueWorker",
    "ScheduleBinding",
    "ScheduleTicker",
    "queue_bindings",
    "schedule_bindings",
    "scheduled_event",
    "sqs_event",
]

log = logging.getLogger("stepline.local.worker")

LOCAL_ACCOUNT_ID = "123456789012"  # moto's default account
LAMBDA_MAX_RUNTIME_MS = 900 * 1000
MAX_RECEIVE = 10  # SQS's cap on MaxNumberOfMessages

Handler = Callable[[dict[str, Any], Any], Any]


# --- discovering the app's handlers ---------------------------------------------------------


@dataclass(frozen=True)
class QueueBinding:
    """An SQS handler of the app and the queue it listens to."""

    name: str
    handler: Handler
    queue_name: str
    batch_size: int


@dataclass(frozen=True)
class ScheduleBinding:
    """A scheduled handler of the app and its EventBridge expression (``rate(...)``/``cron(...)``)."""

    name: str
    handler: Handler
    expression: str


def queue_bindings(app: Chalice) -> list[QueueBinding]:
    """Every ``@app.on_sqs_message`` handler (blueprints included), with its queue name."""
    bindings = []
    for source in app.event_sources:
        if isinstance(source, SQSEventConfig):
            queue = source.queue or (source.queue_arn or "").rsplit(":", 1)[-1]
            bindings.append(QueueBinding(source.name, app.handler_map[source.name], queue, source.batch_size))
    return bindings


def schedule_bindings(app: Chalice) -> list[ScheduleBinding]:
    """Every ``@app.schedule`` handler (blueprints included), with its expression as a string."""
    bindings = []
    for source in app.event_sources:
        if isinstance(source, ScheduledEventConfig):
            expression = source.schedule_expression
            if isinstance(expression, ScheduleExpression):
                expression = expression.to_string()
            bindings.append(ScheduleBinding(source.name, app.handler_map[source.name], str(expression)))
    return bindings


# --- Lambda-shaped events -------------------------------------------------------------------


def sqs_event(messages: Sequence[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda passes for these ``ReceiveMessage`` results (see ``chalice.test``)."""
    return {"Records": [_sqs_record(message, queue_arn, region) for message in messages]}


def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # The API says StringValue/BinaryValue (bytes); Lambda's event says stringValue/binaryValue (base64).
    attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType")}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return attribute


def scheduled_event(rule_name: str, now: _dt.datetime, region: str) -> dict[str, Any]:
    """The event EventBridge passes to a scheduled Lambda function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT_ID,
        "time": now.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{LOCAL_ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


def lambda_context(function_name: str) -> LambdaContext:
    return LambdaContext(function_name=function_name, memory_size=128, max_runtime_ms=LAMBDA_MAX_RUNTIME_MS)


# --- the SQS poller -------------------------------------------------------------------------


class QueueWorker:
    """Long-polls one queue and invokes one SQS handler per batch, as Lambda's poller does."""

    def __init__(
        self, binding: QueueBinding, sqs: Any, *, region: str, wait_seconds: int = 1, max_messages: int = MAX_RECEIVE
    ) -> None:
        self.binding = binding
        self.sqs = sqs
        self.region = region
        self.wait_seconds = wait_seconds
        self.max_messages = max(1, min(max_messages, MAX_RECEIVE))
        self.queue_url: str = sqs.get_queue_url(QueueName=binding.queue_name)["QueueUrl"]
        self.queue_arn: str = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def poll_once(self) -> int:
        """Receive up to ``max_messages`` and hand them to the handler; return how many came."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.max_messages,
            WaitTimeSeconds=self.wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        for batch in _chunks(messages, max(1, self.binding.batch_size)):
            self.dispatch(batch)
        return len(messages)

    def dispatch(self, batch: Sequence[dict[str, Any]]) -> None:
        """Invoke the handler with one batch; delete what succeeded, leave the rest to come back."""
        ids = [message["MessageId"] for message in batch]
        try:
            result = self.binding.handler(
                sqs_event(batch, self.queue_arn, self.region), lambda_context(self.binding.name)
            )
        except Exception:
            log.exception(
                "SQS handler %r raised on message(s) %s; they stay on %s and are redelivered "
                "after its visibility timeout",
                self.binding.name,
                ", ".join(ids),
                self.binding.queue_name,
            )
            return
        failed = _batch_item_failures(result)
        if failed is None:  # malformed report: Lambda treats the whole batch as failed
            log.error(
                "SQS handler %r returned an invalid batchItemFailures %r; the whole batch %s stays on %s",
                self.binding.name,
                result,
                ", ".join(ids),
                self.binding.queue_name,
            )
            return
        unknown = failed - set(ids)
        if unknown:
            log.error(
                "SQS handler %r reported failures for ids not in its batch (%s); the whole batch stays on %s",
                self.binding.name,
                ", ".join(sorted(unknown)),
                self.binding.queue_name,
            )
            return
        if failed:
            log.warning(
                "SQS handler %r reported failed message(s) %s; they stay on %s",
                self.binding.name,
                ", ".join(sorted(failed)),
                self.binding.queue_name,
            )
        done = [message for message in batch if message["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; errors of the loop itself are logged and retried."""
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                if stop.is_set():
                    return
                log.exception("polling %s failed; retrying in 1 s", self.binding.queue_name)
                stop.wait(1.0)


def _batch_item_failures(result: Any) -> set[str] | None:
    """The message ids a handler reported as failed: empty for a plain return, None if malformed."""
    if not isinstance(result, dict) or "batchItemFailures" not in result:
        return set()
    items = result["batchItemFailures"]
    if items is None:
        return set()
    if not isinstance(items, list):
        return None
    failed = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return None
        failed.add(identifier)
    return failed


def _chunks(items: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- the schedule ticker --------------------------------------------------------------------

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.IGNORECASE)
_CRON = re.compile(r"^cron\((.*)\)$", re.IGNORECASE)
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class _Rate:
    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def first(self, start: _dt.datetime, first_delay: float) -> _dt.datetime:
        # Rate handlers (the sweep) run shortly after start, then every period.
        return start + _dt.timedelta(seconds=first_delay)

    def next_after(self, previous: _dt.datetime) -> _dt.datetime:
        return previous + _dt.timedelta(seconds=self.seconds)


class _Cron:
    """An EventBridge cron (UTC, six fields) evaluated with croniter."""

    def __init__(self, fields: list[str]) -> None:
        minute, hour, day, month, weekday = fields[:5]
        day = "*" if day == "?" else day
        weekday = "*" if weekday == "?" else _aws_weekday_to_unix(weekday)
        self.expression = " ".join((minute, hour, day, month, weekday))
        croniter(self.expression)  # fail at start, not at the first tick

    def first(self, start: _dt.datetime, first_delay: float) -> _dt.datetime:
        return self.next_after(start)

    def next_after(self, previous: _dt.datetime) -> _dt.datetime:
        return croniter(self.expression, previous).get_next(_dt.datetime)


def _aws_weekday_to_unix(field: str) -> str:
    # EventBridge numbers days 1 (SUN) .. 7 (SAT); Unix cron 0 (SUN) .. 6 (SAT). Names match.
    # Numbers after '/' (a step) or '#' (nth weekday) are counts, not days.
    return re.sub(r"(?<![/#\d])(\d+)", lambda m: str(int(m.group(1)) - 1), field)


def _parse_schedule(expression: str) -> _Rate | _Cron:
    text = expression.strip()
    rate = _RATE.match(text)
    if rate:
        unit = rate.group(2).lower().rstrip("s")
        return _Rate(int(rate.group(1)) * _UNIT_SECONDS[unit])
    cron = _CRON.match(text)
    if cron and len(cron.group(1).split()) in (5, 6):
        return _Cron(cron.group(1).split())
    raise ValueError(f"unsupported schedule expression {expression!r}")


class ScheduleTicker:
    """Calls each scheduled handler when its expression falls due (times in UTC, as EventBridge)."""

    def __init__(
        self, bindings: Iterable[ScheduleBinding], *, region: str, start: _dt.datetime, first_delay: float = 2.0
    ) -> None:
        self.region = region
        self._entries: list[tuple[ScheduleBinding, _Rate | _Cron]] = []
        self._due: dict[str, _dt.datetime] = {}
        for binding in bindings:
            schedule = _parse_schedule(binding.expression)
            self._entries.append((binding, schedule))
            self._due[binding.name] = schedule.first(start, first_delay)

    @property
    def names(self) -> list[str]:
        return [binding.name for binding, _ in self._entries]

    def next_due(self) -> _dt.datetime | None:
        return min(self._due.values(), default=None)

    def tick(self, now: _dt.datetime) -> list[str]:
        """Call every handler due at ``now``; return their names. A handler's error is logged."""
        ran = []
        for binding, schedule in self._entries:
            due = self._due[binding.name]
            if due > now:
                continue
            ran.append(binding.name)
            try:
                binding.handler(scheduled_event(binding.name, now, self.region), lambda_context(binding.name))
            except Exception:
                log.exception("scheduled handler %r raised", binding.name)
            following = schedule.next_after(due)
            # A tick that ran late (a slow handler, a suspended laptop) is not replayed per missed period.
            self._due[binding.name] = following if following > now else schedule.next_after(now)
        return ran

    def run(self, stop: threading.Event, clock: Callable[[], _dt.datetime] | None = None) -> None:
        clock = clock or (lambda: _dt.datetime.now(_dt.UTC))
        while not stop.is_set():
            self.tick(clock())
            due = self.next_due()
            wait = 1.0 if due is None else (due - clock()).total_seconds()
            stop.wait(min(max(wait, 0.05), 1.0))
