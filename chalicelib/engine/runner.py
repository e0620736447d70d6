"""The step worker: claim, run the agent, record the result, hand over.

Called once per SQS message. Every path is idempotent: a duplicate or replayed message
finds the claim taken (``ClaimStep`` decides nothing, or the conditional append loses)
and returns without running the agent again.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Callable

from chalicelib.agents import AgentContext, StepError, get_agent
from chalicelib.domain.machine import ClaimStep, ExecutionState, RecordResult, decide
from chalicelib.engine.executions import ExecutionService
from chalicelib.errors import NotFound, TransitionConflict
from chalicelib.jsonlimits import json_value_problem
from chalicelib.observability import log_context, metric

log = logging.getLogger("stepline.runner")

MAX_RECORD_ATTEMPTS = 5


class StepRunner:
    def __init__(self, executions: ExecutionService, clock: Callable[[], datetime]) -> None:
        self.executions = executions
        self.clock = clock

    def handle(self, execution_id: str, step_id: str, attempt: int) -> str:
        """Run one step attempt if it is still waiting to run. Returns what happened."""
        with log_context(execution_id=execution_id, step_id=step_id, attempt=attempt):
            try:
                state = self.claim(execution_id, step_id, attempt)
            except NotFound:
                log.warning("dropping message for unknown execution %s", execution_id)
                return "unknown execution"
            if state is None:
                return "duplicate"
            agent = state.step_def(step_id).agent
            log.info("step started (agent %s)", agent)
            began = time.monotonic()
            result = self._run_agent(state, step_id, attempt)
            elapsed_ms = round((time.monotonic() - began) * 1000, 3)
            self.record(state, result)
            self._count_usage(state, result)
            outcome = "failed" if result.error else "completed"
            metric("StepDuration", elapsed_ms, "Milliseconds", {"Agent": agent}, outcome=outcome)
            if result.error:
                log.warning("step failed in %.0f ms: %s: %s", elapsed_ms, result.error.get("kind"),
                            result.error.get("message"))
            else:
                log.info("step completed in %.0f ms", elapsed_ms)
            return "ran"

    def claim(self, execution_id: str, step_id: str, attempt: int) -> ExecutionState | None:
        """Take the claim on one attempt; None when it is not this worker's to run."""
        state = self.executions.load(execution_id)
        decision = decide(state, ClaimStep(step_id, attempt), self.clock())
        if not decision.events:
            self.executions.commit(state, decision)  # may re-send a not-yet-due retry
            log.info("no claim for %s/%s#%s: %s", execution_id, step_id, attempt, decision.noop_reason)
            return None
        try:
            return self.executions.commit(state, decision)
        except TransitionConflict:
            # another delivery of the same message (or an operator) moved first
            log.info("claim lost for %s/%s#%s", execution_id, step_id, attempt)
            return None

    def _run_agent(self, state: ExecutionState, step_id: str, attempt: int) -> RecordResult:
        sdef = state.step_def(step_id)
        ctx = AgentContext(execution_id=state.execution_id, step_id=step_id, attempt=attempt,
                           instructions=state.instructions_for(step_id), config=dict(sdef.config),
                           data=state.context_for(step_id), timeout_seconds=float(sdef.timeout_seconds),
                           comments=tuple(state.step(step_id).comments))
        try:
            output = get_agent(sdef.agent).run(ctx)
            # large outputs are fine (the store keeps them in S3); non-JSON ones (NaN, Infinity,
            # nested deeper than any entry point accepts) are not: they would be served as invalid JSON
            problem = json_value_problem(output)
            if problem is not None:
                raise ValueError(f"output{problem[0]}: {problem[1]}")
            json.dumps(output, allow_nan=False)
        except StepError as error:
            return RecordResult(step_id, attempt, error=error.to_dict())
        except (TypeError, ValueError) as error:
            return RecordResult(step_id, attempt, error={
                "kind": "agent", "message": f"output is not JSON: {error}", "retryable": False})
        except Exception as error:  # noqa: BLE001 - an agent bug is the step's failure, not the worker's
            log.exception("agent %s raised", sdef.agent)
            return RecordResult(step_id, attempt, error={
                "kind": "agent", "message": f"{type(error).__name__}: {error}", "retryable": True})
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

    def record(self, state: ExecutionState, result: RecordResult) -> None:
        """Store an attempt's result; one that comes too late is kept as ``late_result_discarded``."""
        for _ in range(MAX_RECORD_ATTEMPTS):
            try:
                self.executions.commit(state, decide(state, result, self.clock()))
                return
            except TransitionConflict:
                # an operator acted meanwhile (cancel, force-advance): decide again on the new
                # state, which records the result as late instead of losing it
                state = self.executions.load(state.execution_id)
        raise TransitionConflict(f"execution {state.execution_id}", "a quiet moment to record a result")
