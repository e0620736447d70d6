"""Bodies of the non-HTTP entry points (SQS worker, schedules), kept out of app.py."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib.engine import get_engine
from chalicelib.engine.aggregator import DEFAULT_LANE
from chalicelib.engine.budget import Budget
from chalicelib.engine.bulk import BulkService, run_bulk_chunk
from chalicelib.engine.notifications import TASK_KIND as NOTIFY_TASK
from chalicelib.observability import log_context
from chalicelib.queue import message_kind, parse_message, parse_task

log = logging.getLogger("stepline.handlers")


def run_step_records(records: Iterable[Any]) -> list[str]:
    """Run the step of each SQS record. Malformed messages are logged and dropped."""
    outcomes = []
    engine = get_engine()
    for record in records:
        with log_context(message_id=getattr(record, "message_id", None)):
            kind = message_kind(record.body)
            if kind == "bulk":
                outcomes.append(run_bulk_chunk(engine, parse_task(record.body)))
                continue
            if kind == NOTIFY_TASK:  # a webhook notification's next attempt
                outcomes.append(engine.notifier.redeliver(parse_task(record.body)))
                continue
            try:
                execution_id, step_id, attempt = parse_message(record.body)
            except ValueError as error:
                log.error("dropping malformed step message: %s", error)
                outcomes.append("malformed")
                continue
            # anything the runner raises propagates: Lambda returns the message to the queue
            # (batch size 1), and after maxReceiveCount SQS dead-letters it (engine/deadletters.py)
            budget = Budget.for_invocation(getattr(record, "context", None))
            outcomes.append(
                engine.runner.handle(execution_id, step_id, attempt, budget, getattr(record, "receipt_handle", None))
            )
    return outcomes


def aggregate_records(event: Any) -> dict[str, Any]:
    """Apply one DynamoDB stream batch of head changes (``chalicelib.engine.aggregator``).

    The event source has a tumbling window so that the event names its stream shard
    (``shardId``), the lane of the items' watermarks; Lambda then wants a ``state`` in the
    answer (the aggregator keeps none: an empty one). A busy store after the retries
    raises: Lambda delivers the batch again, and the watermarks make what was applied a no-op.
    """
    raw = event.to_dict() if hasattr(event, "to_dict") else dict(event)
    lane = str(raw.get("shardId") or DEFAULT_LANE)
    return {**get_engine().aggregator.handle(raw.get("Records") or [], lane), "state": {}}


def sweep() -> dict[str, int]:
    """Time out, wake and re-send due steps; fail the steps whose messages were dead-lettered;
    re-drive stalled bulk jobs. Each part runs even if another one fails (and each isolates
    its own items); a failed part is counted in ``errors`` and logged."""
    engine = get_engine()
    counts: dict[str, int] = {"errors": 0}
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("due steps", engine.sweeper.run),
        ("dead letters", lambda: {"dead_letters": engine.deadletters.run()}),
        ("bulk jobs", lambda: BulkService(engine).redrive_stalled()),
    ]
    for name, part in parts:
        try:
            for key, value in part().items():
                counts[key] = counts.get(key, 0) + value
        except Exception:
            log.exception("sweep: %s failed", name)
            counts["errors"] += 1
    return counts
