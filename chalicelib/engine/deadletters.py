"""Dead letters: step messages the worker itself kept failing on.

The worker raises when it cannot process a message (a Stepline bug, an outage), so Lambda
returns the message to the queue; after ``maxReceiveCount`` deliveries (infra/template.json)
SQS moves it to the dead-letter queue. Without this check its step would stay ``running``
(or ``pending``) forever. The sweep calls ``DeadLetters.run`` every minute: each dead letter
fails its step with an ``internal`` error (not retried automatically: an operator retries
the step once the cause is fixed), is counted, and is deleted. Agent errors never get here:
they are the step's own failures, recorded and retried by the state machine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.domain.machine import Decision, Event, ExecutionState
from chalicelib.domain.states import ExecutionStatus, StepState
from chalicelib.domain.timefmt import iso
from chalicelib.domain.vocabulary import ErrorKind, EventType
from chalicelib.engine.executions import ExecutionService
from chalicelib.errors import NotFound, TransitionConflict
from chalicelib.observability import log_context
from chalicelib.queue import DeadLetterQueue, parse_message

log = logging.getLogger("stepline.deadletters")

COUNTER = ("SYSTEM", "DEAD_LETTERS")
#: At most this many dead letters per sweep (ten receives); the rest wait for the next minute.
MAX_PER_RUN = 100


def dead_letter_decision(
    state: ExecutionState, step_id: str, attempt: int, at: str, deliveries: int | None
) -> Decision:
    """Fail the step attempt a dead letter belongs to, if it is still waiting on that message."""
    if state.status != ExecutionStatus.RUNNING:
        return Decision(noop_reason=f"execution is {state.status.value}")
    step = state.current
    if step is None or step.id != step_id or step.attempt != attempt:
        return Decision(noop_reason="the step moved on")
    if step.state not in (StepState.PENDING, StepState.RUNNING):
        return Decision(noop_reason=f"step is {step.state.value}")
    times = f"{deliveries} times" if deliveries else "repeatedly"
    error = {
        "kind": ErrorKind.INTERNAL,
        "retryable": False,
        "message": (
            f"the step worker failed {times} on this step's message (a Stepline bug or an AWS outage, "
            "not the agent), so SQS moved it to the dead-letter queue; retry the step once the cause "
            "is fixed"
        ),
    }
    return Decision(
        events=(
            Event(
                EventType.STEP_FAILED,
                at,
                step_id,
                attempt,
                actor="system",
                details={"error": error, "dead_letter": True},
            ),
        )
    )


class DeadLetters:
    def __init__(
        self,
        executions: ExecutionService,
        dlq: DeadLetterQueue,
        clock: Callable[[], datetime],
        recover: Callable[[ExecutionState, str, int], bool] | None = None,
    ) -> None:
        self.executions = executions
        self.dlq = dlq
        self.clock = clock
        #: records an attempt's kept result (``StepRunner.recover``) instead of failing the step
        self.recover = recover

    def run(self, limit: int = MAX_PER_RUN) -> int:
        """Handle the dead letters waiting now; returns how many were handled."""
        handled = received = 0
        while received < limit:
            messages = self.dlq.receive(min(10, limit - received))
            if not messages:
                break
            received += len(messages)
            done = 0
            for message in messages:
                try:
                    self._handle(message)
                except Exception:
                    # left in the queue: it is received again after its visibility timeout
                    log.exception(
                        "dead letter %s could not be handled; kept for the next sweep", message.get("MessageId")
                    )
                    continue
                self.dlq.delete(message["ReceiptHandle"])
                done += 1
            handled += done
            # count as we go: a sweep that dies halfway has still counted what it deleted
            if done:
                self.executions.store.catalog.add_to_count(*COUNTER, by=done)
        return handled

    def _handle(self, message: dict[str, Any]) -> str:
        try:
            execution_id, step_id, attempt = parse_message(message.get("Body", ""))
        except ValueError:
            log.error("dead letter %s is not a step message; deleted", message.get("MessageId"))
            return "malformed"
        deliveries = message.get("Attributes", {}).get("ApproximateReceiveCount")
        with log_context(execution_id=execution_id, step_id=step_id, attempt=attempt):
            try:
                state = self.executions.load(execution_id)
                decision = dead_letter_decision(
                    state, step_id, attempt, iso(self.clock()), int(deliveries) - 1 if deliveries else None
                )
                if not decision.events:
                    log.info("dead letter needs nothing: %s", decision.noop_reason)
                    return "nothing"
                if self.recover is not None and self.recover(state, step_id, attempt):
                    log.warning("dead letter's step had a kept result: recorded instead of failing the step")
                    return "recovered"
                self.executions.commit(state, decision)
            except NotFound:
                log.warning("dead letter for an unknown execution; deleted")
                return "unknown execution"
            except TransitionConflict:
                # someone acted on the step meanwhile: their action stands
                log.info("dead letter lost a race; the step moved on")
                return "raced"
            log.error("step failed: its message went to the dead-letter queue")
            return "failed"

    def count(self) -> dict[str, int]:
        """Dead letters handled so far, and waiting now."""
        return {
            "dead_letters": self.executions.store.catalog.get_count(*COUNTER),
            "dead_letters_waiting": self.dlq.depth(),
        }
