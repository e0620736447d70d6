"""What a caller may do now: every operator command dry-run through ``decide``.

The execution view lists, per step and for the execution, the actions the caller's key
may take. There is no second rule table: each candidate command goes through the same
pure ``decide`` the action routes use, with the caller as actor; an action is offered
exactly when ``decide`` would accept it (``Refused`` means no).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chalicelib.domain.machine import (
    Actor,
    Approve,
    CancelExecution,
    Command,
    ExecutionState,
    ForceAdvance,
    Refused,
    Reject,
    RetryStep,
    Review,
    SkipStep,
    decide,
)

#: Step actions in the order clients show them, each with the command that performs it.
STEP_ACTIONS: tuple[tuple[str, Callable[[ExecutionState, str, Actor], Command]], ...] = (
    ("retry", lambda state, step_id, actor: RetryStep(step_id, actor)),
    ("edit_and_retry", lambda state, step_id, actor: RetryStep(step_id, actor, state.instructions_for(step_id) or "")),
    ("skip", lambda state, step_id, actor: SkipStep(step_id, actor, "dry run")),
    ("approve", lambda state, step_id, actor: Approve(step_id, actor, "dry run")),
    ("reject", lambda state, step_id, actor: Reject(step_id, actor, "dry run")),
    ("review", lambda state, step_id, actor: Review(step_id, actor, "dry run")),
    ("force_advance", lambda state, step_id, actor: ForceAdvance(step_id, actor, "dry run")),
)


def _accepted(state: ExecutionState, command: Command, now: datetime) -> bool:
    try:
        decide(state, command, now)
    except Refused:
        return False
    return True


def execution_actions(state: ExecutionState, actor: Actor, now: datetime) -> list[str]:
    """``["cancel"]`` when ``actor`` may cancel the execution now, else ``[]``."""
    return ["cancel"] if _accepted(state, CancelExecution(actor, "dry run"), now) else []


def step_actions(state: ExecutionState, step_id: str, actor: Actor, now: datetime) -> list[str]:
    """The actions ``actor`` may take on ``step_id`` now, in ``STEP_ACTIONS`` order."""
    return [name for name, build in STEP_ACTIONS if _accepted(state, build(state, step_id, actor), now)]
