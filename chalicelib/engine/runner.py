"""The step worker: claim, run, record and chain steps, then hand over.

Called once per SQS message. A worker runs consecutive steps (a *chain*) until a gate, a
delayed retry, the end, or its budget (``engine/budget.py``); only then does it hand over
through SQS. Pure steps (``transform``) are decided in memory and committed together, with
no claim of their own; a side-effecting step's claim is committed (with whatever the chain
decided before it, and the ``side_effect_started`` of its call when the agent knows that call
up front) before its agent runs, so it never runs twice for one attempt; a claim whose commit
answers with an error is looked for in the history by its token (``engine/claims.py``).

Every path is idempotent: a duplicate or replayed message finds the claim taken
(``ClaimStep`` decides nothing, or the conditional commit loses) and returns without
running the agent again. A finished side-effecting result that cannot be recorded within
the budget is kept in the payload bucket first, and recorded by the next delivery.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib.agents import AgentContext, StepError, get_agent, is_pure
from chalicelib.agents.ledger import SideEffectLedger
from chalicelib.domain.machine import (
    LEASE_SECONDS,
    ClaimStep,
    Decision,
    Dispatch,
    Event,
    ExecutionState,
    Heartbeat,
    RecordResult,
    apply_events,
    decide,
)
from chalicelib.domain.states import StepState
from chalicelib.domain.vocabulary import ErrorKind
from chalicelib.engine import claims
from chalicelib.engine.budget import Backoff, Budget
from chalicelib.engine.executions import ExecutionService
from chalicelib.engine.heartbeats import Heartbeats
from chalicelib.engine.side_effects import HistoryNotes, ledger_for, opening_call
from chalicelib.errors import HeadBehind, NotFound, StoreBusy, TransitionConflict
from chalicelib.jsonlimits import json_value_problem
from chalicelib.observability import log_context, metric

log = logging.getLogger("stepline.runner")

#: Errors of the store (collisions, throttling, 5xx, timeouts) that a later try may not meet.
STORE_ERRORS = (StoreBusy, PynamoDBException, ClientError, BotoCoreError)
#: Tries to record a result before it is kept for the next delivery (each after a jittered pause).
RECORD_TRIES = 8
#: Pure steps decided but not yet committed are written at least this often, so that the
#: sweep (which re-sends an unclaimed hand-over after 120 s) never sees a live chain as lost.
FLUSH_SECONDS = 60.0
#: ... and at most this many events go into one commit item.
FLUSH_EVENTS = 40
#: Time kept in hand to keep a result when recording keeps failing.
KEEP_RESERVE_SECONDS = 5.0
#: After keeping a result, the message comes back this soon (not after the whole visibility
#: timeout), so the result is recorded before the step's deadline or lease runs out.
KEPT_REDELIVERY_SECONDS = 10


class StepRunner:
    def __init__(
        self, executions: ExecutionService, clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.executions = executions
        self.clock = clock
        self.sleep = sleep

    # ------------------------------------------------------------------ chain
    def handle(
        self,
        execution_id: str,
        step_id: str,
        attempt: int,
        budget: Budget | None = None,
        receipt_handle: str | None = None,
    ) -> str:
        """Run the message's step attempt, and the steps after it while the budget allows.

        Returns what happened: ``ran``, ``duplicate``, ``recovered`` (a kept result was
        recorded) or ``unknown execution``.
        """
        budget = budget or Budget.for_invocation()
        with log_context(execution_id=execution_id, step_id=step_id, attempt=attempt):
            try:
                state = self.executions.load(execution_id)
            except NotFound:
                log.warning("dropping message for unknown execution %s", execution_id)
                return "unknown execution"
            claim = decide(state, ClaimStep(step_id, attempt), self.clock())
            if not claim.events:
                # a delivery again: a worker may have died between its commit and its head update
                self.executions.repair_head(state)
                if self.recover(state, step_id, attempt, budget):
                    return "recovered"
                self.executions.commit_worker(state, claim)  # may re-send a not-yet-due retry
                log.info("no claim for %s/%s#%s: %s", execution_id, step_id, attempt, claim.noop_reason)
                return "duplicate"
            self._chain(state, claim, budget, receipt_handle)
            return "ran"

    def _chain(self, committed: ExecutionState, claim: Decision, budget: Budget, receipt: str | None) -> None:
        """Run steps from ``claim`` on; commit and hand over when the chain stops."""
        pending: list[Event] = []  # decided, not yet committed
        unrecorded: RecordResult | None = None  # a side effect's result among ``pending``
        pending_since = time.monotonic()
        state = committed
        ran = 0
        while True:
            step_id, attempt = claim.events[0].step_id or "", int(claim.events[0].attempt or 0)
            pure = is_pure(get_agent(state.step_def(step_id).agent))
            opened = None
            if pure:
                pending += claim.events
                state = apply_events(state, claim.events)
            else:
                # a side effect runs only once its claim (and, when known up front, its call) is stored
                token = claims.new_token()
                claimed = claims.tagged(claim.events, token)
                opened = opening_call(
                    apply_events(state, claimed),
                    step_id,
                    attempt,
                    partial(self._context, state, step_id, attempt),
                    self.clock,
                )
                events = pending + list(claimed) + list(opened[1] if opened else ())
                landed = partial(
                    claims.landed, self.executions, state.execution_id, step_id, attempt, token, budget, self.sleep
                )
                try:
                    stored = self._finish(committed, events, (), unrecorded, budget, receipt) or landed()
                except STORE_ERRORS:
                    if (stored := landed()) is None:  # not stored (else only its answer was lost)
                        raise  # the message comes back
                if stored is None:
                    log.info("chain stopped: claim of %s#%s lost", step_id, attempt)
                    return
                committed = state = stored
                pending, unrecorded, pending_since = [], None, time.monotonic()
            result, latest = self._run_step(state, step_id, attempt, pure, receipt, opened[0] if opened else None)
            if latest is not state:  # the step entered side effects in the history while it ran
                committed = state = latest
            ran += 1
            decision = decide(state, result, self.clock())
            pending += decision.events
            state = apply_events(state, decision.events)
            if not pure:
                unrecorded = result
            nxt = self._next_claim(state, decision, budget) if ran < budget.max_steps else None
            if nxt is None:
                self._finish(committed, pending, decision.dispatch, unrecorded, budget, receipt)
                return
            if len(pending) >= FLUSH_EVENTS or time.monotonic() - pending_since >= FLUSH_SECONDS:
                stored = self._finish(committed, pending, (), unrecorded, budget, receipt)
                if stored is None:
                    return
                committed = state = stored
                pending, unrecorded, pending_since = [], None, time.monotonic()
            claim = nxt
            metric("StepsChained", 1)

    def _next_claim(self, state: ExecutionState, decision: Decision, budget: Budget) -> Decision | None:
        """The claim of the next step when the chain may go on: one immediate hand-over that fits the budget."""
        if len(decision.dispatch) != 1 or decision.dispatch[0].delay_seconds:
            return None
        message = decision.dispatch[0]
        if not budget.allows(state.step_def(message.step_id).timeout_seconds):
            return None
        claim = decide(state, ClaimStep(message.step_id, message.attempt), self.clock())
        return claim if claim.events else None

    def _finish(
        self,
        committed: ExecutionState,
        pending: list[Event],
        dispatch: tuple[Dispatch, ...],
        result: RecordResult | None,
        budget: Budget,
        receipt: str | None = None,
    ) -> ExecutionState | None:
        """Commit what the chain decided and send its hand-over: the stored state, or None
        when another writer won.

        With ``result`` (a side-effecting step's outcome among the pending events) a lost race
        or a failing store goes through ``record``, so the result is never lost.
        """
        if not pending:
            return committed
        try:
            return self.executions.commit_worker(committed, Decision(events=tuple(pending), dispatch=dispatch))
        except HeadBehind:
            raise  # stored; the invocation fails so that the next delivery moves the head
        except TransitionConflict:
            if result is None:
                # only pure work is lost: the writer that won (a duplicate delivery, the sweep's
                # re-send, an operator) owns the execution's next move
                log.info("chain stopped by a concurrent commit")
                return None
        except STORE_ERRORS:
            if result is None:
                raise
        # the store is read again inside record's retries: a failing read must not lose the result either
        self.record(committed.execution_id, result, budget, receipt)
        return None

    # ------------------------------------------------------------------ steps
    def claim(self, execution_id: str, step_id: str, attempt: int) -> ExecutionState | None:
        """Take (and commit) the claim on one attempt; None when it is not this worker's to run."""
        state = self.executions.load(execution_id)
        decision = decide(state, ClaimStep(step_id, attempt), self.clock())
        if not decision.events:
            self.executions.commit_worker(state, decision)  # may re-send a not-yet-due retry
            log.info("no claim for %s/%s#%s: %s", execution_id, step_id, attempt, decision.noop_reason)
            return None
        try:
            return self.executions.commit_worker(state, decision)
        except TransitionConflict:
            # another delivery of the same message (or an operator) moved first
            log.info("claim lost for %s/%s#%s", execution_id, step_id, attempt)
            return None

    def _run_step(
        self,
        state: ExecutionState,
        step_id: str,
        attempt: int,
        pure: bool,
        receipt: str | None,
        opened: dict[str, Any] | None = None,
    ) -> tuple[RecordResult, ExecutionState]:
        """The attempt's result, and the execution as stored after it (side effects it entered);
        ``opened``: the entry of its first call, committed with the claim."""
        sdef = state.step_def(step_id)
        notes = None if pure else HistoryNotes(self.executions, state, self.clock, self.sleep)
        with log_context(step_id=step_id, attempt=attempt):
            log.info("step started (agent %s)", sdef.agent)
            began = time.monotonic()
            beat = (
                None
                if pure or sdef.timeout_seconds <= LEASE_SECONDS
                else Heartbeats(self, state.execution_id, step_id, attempt, receipt)
            )
            try:
                result = self._run_agent(state, step_id, attempt, notes, opened)
                self._count_usage(state, result)
            finally:
                if beat is not None:
                    beat.stop()
            elapsed_ms = round((time.monotonic() - began) * 1000, 3)
            outcome = "failed" if result.error else "completed"
            metric("StepDuration", elapsed_ms, "Milliseconds", {"Agent": sdef.agent}, outcome=outcome)
            if result.error:
                log.warning(
                    "step failed in %.0f ms: %s: %s", elapsed_ms, result.error.get("kind"), result.error.get("message")
                )
            else:
                log.info("step completed in %.0f ms", elapsed_ms)
        return result, notes.state if notes is not None and notes.committed else state

    def _run_agent(
        self,
        state: ExecutionState,
        step_id: str,
        attempt: int,
        notes: HistoryNotes | None = None,
        opened: dict[str, Any] | None = None,
    ) -> RecordResult:
        ledger = ledger_for(state, step_id, attempt, notes, self.clock, opened)
        result = self._run_agent_only(state, step_id, attempt, ledger)
        ledger.unmade()  # an entry committed with the claim for a call the agent never began
        return replace(result, side_effects=tuple(ledger.entries)) if ledger.entries else result

    def _context(self, state: ExecutionState, step_id: str, attempt: int, ledger: SideEffectLedger) -> AgentContext:
        sdef = state.step_def(step_id)
        return AgentContext(
            execution_id=state.execution_id,
            step_id=step_id,
            attempt=attempt,
            instructions=state.instructions_for(step_id),
            config=dict(sdef.config),
            data=state.context_for(step_id),
            timeout_seconds=float(sdef.timeout_seconds),
            comments=tuple(state.step(step_id).comments),
            spend=state.spend_check(step_id, attempt),
            ledger=ledger,
        )

    def _run_agent_only(
        self, state: ExecutionState, step_id: str, attempt: int, ledger: SideEffectLedger
    ) -> RecordResult:
        sdef = state.step_def(step_id)
        ctx = self._context(state, step_id, attempt, ledger)
        try:
            output = get_agent(sdef.agent).run(ctx)
            # large outputs are fine (the store keeps them in S3); non-JSON ones (NaN, Infinity,
            # nested deeper than any entry point accepts) are not: they would be served as invalid JSON
            problem = json_value_problem(output)
            if problem is not None:
                raise ValueError(f"output{problem[0]}: {problem[1]}")
            json.dumps(output, allow_nan=False)
        except StepError as error:
            return RecordResult(step_id, attempt, error=error.to_dict(), usage=ctx.report.get("usage"))
        except (TypeError, ValueError) as error:
            return RecordResult(
                step_id,
                attempt,
                error={"kind": ErrorKind.AGENT, "message": f"output is not JSON: {error}", "retryable": False},
                usage=ctx.report.get("usage"),
            )
        except Exception as error:
            log.exception("agent %s raised", sdef.agent)
            return RecordResult(
                step_id,
                attempt,
                error={"kind": ErrorKind.AGENT, "message": f"{type(error).__name__}: {error}", "retryable": True},
                usage=ctx.report.get("usage"),
            )
        return RecordResult(step_id, attempt, output=output, usage=ctx.report.get("usage"))

    def _count_usage(self, state: ExecutionState, result: RecordResult) -> None:
        """Add an llm attempt's tokens to the workflow's hourly usage (the stats' ``tokens``)."""
        details = (result.error or {}).get("details") if result.error else None
        usage = result.usage or (details.get("usage") if isinstance(details, dict) else None)
        if usage:
            from chalicelib.engine.usage import count_attempt
            from chalicelib.store.usage import usage_store_for

            settings = self.executions.workflows.settings
            if settings is not None:
                count_attempt(usage_store_for(settings), state.workflow_id, self.clock(), usage)

    # ----------------------------------------------------------------- record
    def record(
        self,
        state: ExecutionState | str,
        result: RecordResult,
        budget: Budget | None = None,
        receipt: str | None = None,
    ) -> None:
        """Store an attempt's result; one that comes too late is kept as ``late_result_discarded``.

        ``state`` is the state the result is decided on, or the execution's id when it must be
        read first. A lost race re-reads and decides again; a store error (in the write or in
        the read) is retried with jittered backoff while the budget lasts. Before giving up the
        result is kept in the payload bucket, and the next delivery of the message records it
        (``recover``); so does the sweep before it would time the attempt out.
        """
        budget = budget or Budget(30.0)
        backoff = Backoff(self.sleep)
        execution_id = state if isinstance(state, str) else state.execution_id
        current: ExecutionState | None = None if isinstance(state, str) else state
        while True:
            try:
                if current is None:
                    current = self.executions.load(execution_id)
                self.executions.commit_worker(current, decide(current, result, self.clock()))
                return
            except HeadBehind:
                raise  # the result is stored; the next delivery moves the head
            except TransitionConflict:
                # an operator acted meanwhile (cancel, force-advance): decide again on the new
                # state, which records the result as late instead of losing it
                pass
            except STORE_ERRORS as error:
                log.warning("recording %s#%s failed: %s", result.step_id, result.attempt, error)
            current = None
            if backoff.tries + 1 >= RECORD_TRIES or not backoff.wait(budget, KEEP_RESERVE_SECONDS):
                self._keep(execution_id, result, receipt)
                raise TransitionConflict(f"execution {execution_id}", "a store that takes the result")

    def _keep(self, execution_id: str, result: RecordResult, receipt: str | None) -> None:
        text = json.dumps(
            {
                "step_id": result.step_id,
                "attempt": result.attempt,
                "output": result.output,
                "error": result.error,
                "usage": result.usage,
                "side_effects": list(result.side_effects),
            }
        )
        self.executions.store.payloads.keep_result(execution_id, result.step_id, result.attempt, text)
        log.error(
            "result of %s#%s kept in the payload bucket; the next delivery records it", result.step_id, result.attempt
        )
        metric("ResultsKept", 1)
        if receipt:
            try:
                self.executions.queue.extend_visibility(receipt, KEPT_REDELIVERY_SECONDS)
            except Exception:
                log.warning("could not bring the message back early", exc_info=True)

    def recover(self, state: ExecutionState, step_id: str, attempt: int, budget: Budget | None = None) -> bool:
        """Record a kept result of this claimed attempt, without running its agent again.

        The next delivery of the attempt's message calls this; so do the sweep (before it
        times the attempt out) and the dead-letter handling (before it fails the step), for
        when that delivery never comes. False when there is no kept result to record.
        """
        try:
            step = state.step(step_id)
        except Exception:
            return False
        if not (step.claimed and step.attempt == attempt and step.state == StepState.RUNNING):
            return False
        text = self.executions.store.payloads.kept_result(state.execution_id, step_id, attempt)
        if text is None:
            return False
        kept = json.loads(text)
        self.record(
            state,
            RecordResult(
                step_id,
                attempt,
                output=kept.get("output"),
                error=kept.get("error"),
                usage=kept.get("usage"),
                side_effects=tuple(kept.get("side_effects") or ()),
            ),
            budget,
        )
        log.info("kept result of %s#%s recorded", step_id, attempt)
        return True

    # -------------------------------------------------------------- heartbeat
    def heartbeat(self, execution_id: str, step_id: str, attempt: int) -> bool:
        """Extend the lease of a running attempt; False when it has none to extend (or moved on)."""
        state = self.executions.load(execution_id)
        decision = decide(state, Heartbeat(step_id, attempt), self.clock())
        if not decision.events:
            return False
        try:
            self.executions.commit_worker(state, decision)
        except TransitionConflict:
            return False
        return True
