"""Execution service: start, load, apply decisions, operator commands.

The engine reads an execution's events, asks the pure state machine what a command does,
and appends the answer with a conditional write. A lost race surfaces as
``TransitionConflict`` (409) for people, and as a re-read for workers.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib.domain.definition import validate_inputs
from chalicelib.domain.machine import (
    HANDOVER_GRACE_SECONDS,
    Actor,
    Command,
    Decision,
    Event,
    ExecutionState,
    Refused,
    apply_events,
    decide,
    replay,
)
from chalicelib.domain.running import settled_dues
from chalicelib.domain.timefmt import iso
from chalicelib.domain.vocabulary import EventType, TriggerKind
from chalicelib.engine.budget import Backoff
from chalicelib.engine.notifications import Notifier
from chalicelib.engine.status_events import head_step
from chalicelib.engine.workflows import WorkflowService
from chalicelib.errors import Conflict, Forbidden, HeadBehind, NotFound, StoreBusy, TransitionConflict
from chalicelib.observability import log_context, metric
from chalicelib.queue import StepQueue
from chalicelib.store import StatusChange, Store, SummaryRecord

log = logging.getLogger("stepline.executions")

#: After this long without a claim, the sweep re-sends a first step's message.
HANDOVER_GRACE = timedelta(seconds=HANDOVER_GRACE_SECONDS)
IDEMPOTENCY_TTL = timedelta(hours=24)
#: Tries after a lost race or a busy store before a start or an operator action gives up.
BUSY_RETRIES = 6
#: What a read of the store raises when DynamoDB is throttling or failing (not "not found").
STORE_READ_ERRORS = (PynamoDBException, ClientError, BotoCoreError)


class ExecutionService:
    def __init__(
        self,
        store: Store,
        queue: StepQueue,
        workflows: WorkflowService,
        clock: Callable[[], datetime],
        notifier: Notifier | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.workflows = workflows
        self.clock = clock
        self.notifier = notifier

    # ------------------------------------------------------------------ start
    def start(
        self, workflow_id: str, inputs: Any, trigger: dict[str, Any], actor: Actor, idempotency_key: str | None = None
    ) -> ExecutionState:
        """Validate inputs, store the execution and enqueue its first step."""
        record = self.workflows.get(workflow_id)
        if not record.enabled:
            raise Conflict(f"workflow {workflow_id} is disabled")
        definition = self.workflows.definition(workflow_id, record.version)
        values = validate_inputs(definition.trigger, inputs) if trigger.get("type") == TriggerKind.MANUAL else inputs
        idem_pk = None
        if idempotency_key:
            digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
            idem_pk = f"IDEM#{workflow_id}#{digest}"
            existing = self.store.executions.find_idempotent(idem_pk)
            if existing:
                return self.load(existing)
        now = self.clock()
        at = iso(now)
        execution_id = f"ex_{uuid.uuid4().hex}"
        summary = SummaryRecord(execution_id, workflow_id, record.version, "running", trigger, at)
        first = Event(
            EventType.EXECUTION_STARTED,
            at,
            actor=actor.name,
            due=iso(now + HANDOVER_GRACE),
            details={
                "workflow_id": workflow_id,
                "workflow_version": record.version,
                "input": values,
                "trigger": trigger,
            },
        )
        backoff = Backoff()
        while True:
            try:
                self.store.executions.create(summary, first, idem_pk, int((now + IDEMPOTENCY_TTL).timestamp()))
                break
            except TransitionConflict:
                winner = self.store.executions.find_idempotent(idem_pk) if idem_pk else None
                if winner is None and backoff.tries and self._exists(execution_id):
                    winner = execution_id
                if winner == execution_id:
                    break  # an earlier try was committed and only its answer lost: this start is ours
                if winner:
                    return self.load(winner)
                raise
            except StoreBusy:
                # a collision on a shared item or throttling: not a clash of state, so retry
                if backoff.tries >= BUSY_RETRIES:
                    raise
                backoff.wait()
        # The answer and the start notification describe the execution as committed: read it
        # before the first step is queued, or a fast worker could already have finished it.
        # From here the execution exists: a failing read or send must not answer the start with
        # an error (a client that retries without an Idempotency-Key would start it twice).
        state = self._read_started(execution_id, definition, first)
        try:
            self.queue.send(execution_id, definition.steps[0].id, 1)
        except (ClientError, BotoCoreError):
            # execution_started carries the hand-over's due entry: the sweep sends it
            log.warning("first step of %s not sent; the sweep sends it", execution_id, exc_info=True)
            metric("HandOversNotSent", 1)
        with log_context(execution_id=execution_id, workflow_id=workflow_id):
            log.info("execution started (%s trigger, version %s)", trigger.get("type"), record.version)
            metric("ExecutionsStarted", 1, trigger=trigger.get("type"))
        if self.notifier is not None:
            self.notifier.notify_status_change(state, None)
        return state

    def _exists(self, execution_id: str) -> bool:
        """True when ``execution_id`` is stored (a start's own id: nobody else could have made it)."""
        try:
            self.load(execution_id)
        except NotFound:
            return False
        return True

    def _read_started(self, execution_id: str, definition: Any, first: Event) -> ExecutionState:
        """The just-created execution as stored; if the store keeps failing to answer, the state
        its first event makes (its first step is not queued yet, so no worker moved it)."""
        backoff = Backoff()
        while True:
            try:
                return self.load(execution_id)
            except STORE_READ_ERRORS:
                if backoff.tries >= BUSY_RETRIES:
                    log.warning("reading new execution %s failed; answering from its first event", execution_id)
                    return replay(execution_id, definition, [replace(first, seq=1)])
                backoff.wait()

    # ------------------------------------------------------------------- read
    def load(self, execution_id: str) -> ExecutionState:
        events = self.store.executions.load_events(execution_id)
        if not events or events[0].type != EventType.EXECUTION_STARTED:
            raise NotFound(f"execution {execution_id} not found")
        details = events[0].details
        definition = self.workflows.definition(details["workflow_id"], int(details["workflow_version"]))
        return replay(execution_id, definition, events)

    def load_at(self, execution_id: str, seq: int | None) -> ExecutionState:
        """The execution as it was right after event ``seq`` (None: as it is now)."""
        events = self.store.executions.load_events(execution_id)
        if seq is not None:
            events = [e for e in events if e.seq <= seq]
        if not events or events[0].type != "execution_started":
            raise NotFound(f"execution {execution_id} not found")
        details = events[0].details
        definition = self.workflows.definition(details["workflow_id"], int(details["workflow_version"]))
        return replay(execution_id, definition, events)

    def history(self, execution_id: str) -> list[Event]:
        events = self.store.executions.load_events(execution_id)
        if not events:
            raise NotFound(f"execution {execution_id} not found")
        return events

    # ------------------------------------------------------------------ apply
    def commit(self, state: ExecutionState, decision: Decision, atomic: bool = True) -> ExecutionState:
        """Append the decision's events (and status change), then send its messages.

        Returns the new state. Raises ``TransitionConflict`` if another writer got there first.
        ``atomic=False`` (the worker): the head follows the commit in a write of its own
        instead of one transaction (``ExecutionStore.append``).
        """
        behind: HeadBehind | None = None
        if decision.events:
            after = apply_events(state, decision.events)
            change = None
            if after.status != state.status:
                change = StatusChange(
                    state.workflow_id,
                    state.status.value,
                    after.status.value,
                    decision.events[-1].at,
                    state.started_at,
                    str(state.trigger.get("type", "manual")),
                    head_step(after),
                )
            events = settled_dues(decision.events, after)  # no index entry for a claim that is over
            try:
                numbered = self.store.executions.append(state.execution_id, state.seq, events, change, atomic)
                after.seq = numbered[-1].seq
            except HeadBehind as error:
                # the commit is stored: announce and hand over as usual, then fail the invocation
                after.seq, behind = state.seq + len(decision.events), error
            state = after
            if change is not None:
                _status_changed(state, change.before)
                if self.notifier is not None:
                    # after the commit, and it never raises: telling people must not undo the change
                    self.notifier.notify_status_change(state, change.before)
        for message in decision.dispatch:
            try:
                self.queue.send(state.execution_id, message.step_id, message.attempt, message.delay_seconds)
            except (ClientError, BotoCoreError):
                if not decision.events:
                    raise  # nothing was committed: the caller's message comes back and tries again
                # The events are committed and carry the hand-over's due entry: the sweep re-sends
                # it (HANDOVER_GRACE_SECONDS later). Raising here would tell the caller its
                # committed change failed, and make a worker record its result a second time.
                log.warning(
                    "hand-over of %s#%s not sent; the sweep re-sends it",
                    message.step_id,
                    message.attempt,
                    exc_info=True,
                )
                metric("HandOversNotSent", 1)
        if behind is not None:
            raise behind
        return state

    def commit_worker(self, state: ExecutionState, decision: Decision) -> ExecutionState:
        """``commit`` for the step worker: no transaction (commit item, then head)."""
        return self.commit(state, decision, atomic=False)

    def repair_head(self, state: ExecutionState) -> bool:
        """Move a head left behind by a worker that died between its commit and its head
        update to the status of the folded history. Returns True when it moved."""
        status, _ = self.store.executions.head_status(state.execution_id)
        if status == state.status.value:
            return False
        change = StatusChange(
            state.workflow_id,
            status,
            state.status.value,
            state.ended_at or iso(self.clock()),
            state.started_at,
            str(state.trigger.get("type", "manual")),
            head_step(state),
        )
        moved = self.store.executions.move_head(state.execution_id, change, state.seq)
        if moved:
            log.warning("head of %s repaired: %s -> %s", state.execution_id, status, state.status.value)
        return moved

    def act(self, execution_id: str, command: Command) -> ExecutionState:
        """Apply one operator command; 409 only when the state does not allow it.

        A commit that loses to another writer (a worker recording, the sweep) or meets a
        busy store is decided again on the fresh state after a jittered pause: the command
        is refused only if that state really refuses it.
        """
        backoff = Backoff()
        while True:
            state = self.load(execution_id)
            try:
                decision = decide(state, command, self.clock())
            except Refused as refused:
                # The plain error of its status, so callers that tell a missing step (404) from a
                # clash (409) by type, such as bulk jobs, keep doing so.
                if refused.not_found:
                    raise NotFound(refused.message) from refused
                if refused.forbidden:
                    raise Forbidden(refused.message) from refused
                raise Conflict(refused.message) from refused
            try:
                return self.commit(state, decision)
            except (TransitionConflict, StoreBusy):
                if backoff.tries >= BUSY_RETRIES:
                    raise
                backoff.wait()


_STATUS_METRICS = {"completed": "ExecutionsCompleted", "failed": "ExecutionsFailed", "cancelled": "ExecutionsCancelled"}


def _status_changed(state: ExecutionState, before: str) -> None:
    after = state.status.value
    with log_context(execution_id=state.execution_id, workflow_id=state.workflow_id):
        log.info("execution %s (was %s)", after, before)
        if after in _STATUS_METRICS:
            metric(_STATUS_METRICS[after], 1)
