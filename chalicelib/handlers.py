"""Bodies of the non-HTTP entry points (SQS worker, schedules), kept out of app.py."""
from __future__ import annotations

import logging
from typing import Any, Iterable

from chalicelib.engine import get_engine
from chalicelib.engine.budget import Budget
from chalicelib.engine.bulk import run_bulk_chunk
from chalicelib.observability import log_context
from chalicelib.queue import message_kind, parse_message, parse_task

log = logging.getLogger("stepline.handlers")


def run_step_records(records: Iterable[Any]) -> list[str]:
    """Run the step of each SQS record. Malformed messages are logged and dropped."""
    outcomes = []
    engine = get_engine()
    for record in records:
        with log_context(message_id=getattr(record, "message_id", None)):
            if message_kind(record.body) == "bulk":
                outcomes.append(run_bulk_chunk(engine, parse_task(record.body)))
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
            outcomes.append(engine.runner.handle(execution_id, step_id, attempt, budget,
                                                 getattr(record, "receipt_handle", None)))
    return outcomes


def sweep() -> dict[str, int]:
    """Time out, wake and re-send due steps; then fail the steps whose messages were dead-lettered."""
    engine = get_engine()
    counts = engine.sweeper.run()
    counts["dead_letters"] = engine.deadletters.run()
    return counts
