"""The sweep: time out steps past their deadline, wake due retries, re-send lost messages.

It reads only the ``by_due`` index buckets between its watermark and now, so its cost
follows the number of deadlines that fell due, not the size of the history.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from chalicelib.domain.machine import MAX_QUEUE_DELAY, TimeOutStep, decide
from chalicelib.domain.states import ExecutionStatus, StepState
from chalicelib.domain.timefmt import iso, parse_iso
from chalicelib.engine.executions import ExecutionService
from chalicelib.errors import NotFound, TransitionConflict
from chalicelib.observability import log_context

log = logging.getLogger("stepline.sweep")

WATERMARK = ("SWEEP", "DUE")
#: How far back a first sweep (or one after a long outage) looks.
MAX_LOOKBACK = timedelta(days=7)


class Sweeper:
    def __init__(self, executions: ExecutionService, clock: Callable[[], datetime]) -> None:
        self.executions = executions
        self.clock = clock

    def run(self) -> dict[str, int]:
        now = self.clock()
        catalog = self.executions.store.catalog
        mark = catalog.get_marker(*WATERMARK)
        start = parse_iso(mark) if mark else now - timedelta(hours=1)
        start = max(start, now - MAX_LOOKBACK).replace(second=0, microsecond=0)
        seen: set[str] = set()
        counts = {"visited": 0, "timed_out": 0, "resent": 0}
        bucket = start
        while bucket <= now:
            for execution_id, _seq in self.executions.store.executions.due_entries(iso(bucket)[:16], iso(now)):
                if execution_id in seen:
                    continue
                seen.add(execution_id)
                counts["visited"] += 1
                with log_context(execution_id=execution_id):
                    outcome = self.visit(execution_id, now)
                if outcome in ("timed_out", "resent"):
                    log.info("sweep: %s", outcome.replace("_", " "))
                if outcome in counts:
                    counts[outcome] += 1
            bucket += timedelta(minutes=1)
        catalog.put_marker(*WATERMARK, value=iso(now.replace(second=0, microsecond=0)), at=iso(now))
        return counts

    def visit(self, execution_id: str, now: datetime) -> str:
        """Decide what a due execution needs now."""
        try:
            state = self.executions.load(execution_id)
        except NotFound:
            return "gone"
        step = state.current
        if state.status != ExecutionStatus.RUNNING or step is None:
            return "nothing"
        if step.state == StepState.RUNNING and step.claimed:
            if step.deadline and parse_iso(step.deadline) <= now:
                try:
                    self.executions.commit(state, decide(state, TimeOutStep(step.id, step.attempt), now))
                except TransitionConflict:
                    return "raced"
                return "timed_out"
            return "nothing"
        # pending, or a queued retry: its message may be lost, or its backoff over
        delay = 0
        if step.not_before:
            delay = int((parse_iso(step.not_before) - now).total_seconds())
            if delay > MAX_QUEUE_DELAY:
                return "nothing"
        self.executions.queue.send(execution_id, step.id, step.attempt, max(0, delay))
        return "resent"
