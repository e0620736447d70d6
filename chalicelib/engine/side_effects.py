"""The engine's half of the side-effect ledger: each call is in the history before it is made.

``ledger_for`` gives the runner an attempt's ``SideEffectLedger`` built from the step's earlier
entries and the retry's mode, whose ``begin`` commits a ``side_effect_started`` event (one
conditional put) before the agent makes the call. A worker that dies mid-call thus leaves an
``unknown`` entry, and an attempt that is no longer the worker's to run (cancelled, timed out,
force-advanced meanwhile) makes no further call at all.

An agent that knows its one call before it runs (``plan``: the ``http`` request, the ``email``
send) needs no commit of its own: ``opening_call`` decides that call's ``side_effect_started``
so the runner commits it in the same put as the step's claim, and the ledger's ``begin`` then
takes that entry (``ledger_for(..., opened=...)``). Calls found while running (an ``llm``
step's tools) are still committed one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chalicelib.agents import get_agent
from chalicelib.agents.base import AgentContext, AgentError, IntegrationError, StepError
from chalicelib.agents.ledger import SideEffectLedger
from chalicelib.domain.commands import StartSideEffect
from chalicelib.domain.fold import Event, ExecutionState
from chalicelib.domain.machine import decide
from chalicelib.engine.budget import Backoff
from chalicelib.errors import StoreBusy, TransitionConflict

__all__ = ["HistoryNotes", "ledger_for", "opening_call"]

log = logging.getLogger("stepline.side_effects")

#: Tries to commit an entry (a heartbeat's append may win the race) before the call is given up.
NOTE_TRIES = 6
_STORE_ERRORS = (StoreBusy, PynamoDBException, ClientError, BotoCoreError)


class HistoryNotes:
    """Commits ledger entries to an execution's history; ``state`` follows what it committed."""

    def __init__(
        self, executions: Any, state: ExecutionState, clock: Callable[[], datetime], sleep: Callable[[float], None]
    ) -> None:
        self.executions, self.state, self.clock, self.sleep = executions, state, clock, sleep
        self.committed = False

    def note(self, step_id: str, attempt: int, entry: Mapping[str, Any]) -> None:
        """Append ``side_effect_started``; raise a ``StepError`` (the call must not be made) when it cannot."""
        backoff = Backoff(self.sleep)
        while True:
            decision = decide(self.state, StartSideEffect(step_id, attempt, entry), self.clock())
            if not decision.events:
                raise AgentError(
                    f"{entry.get('target')} was not made: the attempt was stopped ({decision.noop_reason})",
                    retryable=False,
                )
            try:
                self.state = self.executions.commit(self.state, decision)
                self.committed = True
                return
            except TransitionConflict:
                pass  # a heartbeat or an operator appended first: decide again on the fresh state
            except _STORE_ERRORS as error:
                log.warning("could not enter %s in the history: %s", entry.get("target"), error)
            if backoff.tries + 1 >= NOTE_TRIES:
                raise IntegrationError(
                    f"{entry.get('target')} was not made: it could not be entered in the history first",
                    retryable=True,
                )
            backoff.wait()
            try:
                self.state = self.executions.load(self.state.execution_id)
            except _STORE_ERRORS as error:
                log.warning("re-reading %s failed: %s", self.state.execution_id, error)


def ledger_for(
    state: ExecutionState,
    step_id: str,
    attempt: int,
    notes: HistoryNotes | None,
    clock: Callable[[], datetime],
    opened: Mapping[str, Any] | None = None,
) -> SideEffectLedger:
    """The ledger of one attempt: earlier attempts' entries, the mode the retry chose, ``notes``
    (None for pure steps, which make no calls and whose claim is not committed on its own), and
    the entry ``opened`` with the claim (``opening_call``), if any."""
    view = state.step(step_id)
    return SideEffectLedger(
        state.execution_id,
        step_id,
        attempt,
        previous=view.side_effects,
        mode=view.side_effect_mode,
        note=(lambda entry: notes.note(step_id, attempt, entry)) if notes is not None else None,
        clock=clock,
        opened=opened,
    )


def opening_call(
    claimed: ExecutionState,
    step_id: str,
    attempt: int,
    context: Callable[[SideEffectLedger], AgentContext],
    clock: Callable[[], datetime],
) -> tuple[dict[str, Any], tuple[Event, ...]] | None:
    """The entry of the call the attempt's agent will make first, and its ``side_effect_started``
    decided on ``claimed`` (the state with the claim applied), to commit with the claim.

    None when the agent plans no call (no ``plan``, a GET, a replay, a bad config: ``run``
    raises the same error before any call); the agent's call is then committed on its own.
    """
    plan = getattr(get_agent(claimed.step_def(step_id).agent), "plan", None)
    if plan is None:
        return None
    ledger = ledger_for(claimed, step_id, attempt, None, clock)
    try:
        call = plan(context(ledger))
    except StepError:
        return None
    except Exception:
        log.warning("planning the call of %s#%s failed; it is entered on its own", step_id, attempt, exc_info=True)
        return None
    entry = ledger.open(call) if call is not None else None
    if entry is None:
        return None
    decision = decide(claimed, StartSideEffect(step_id, attempt, entry), clock())
    return (entry, decision.events) if decision.events else None
