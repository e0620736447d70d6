"""Step states, execution statuses and the one table of allowed step transitions.

A step's position is the pair (attempt, state). Within an attempt the state only moves
along ``STEP_TRANSITIONS``; a retry starts attempt n+1 directly in ``running`` (queued
until a worker claims it), so the pair only ever moves forward and a step never returns
to ``pending`` once it has run.
"""

from __future__ import annotations

from enum import StrEnum


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING_FOR_APPROVAL = "waiting_for_approval"
    SKIPPED = "skipped"


class ExecutionStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = StepState

#: Which state may follow which within one attempt. ``FAILED -> RUNNING`` is the only
#: edge that starts a new attempt (a retry); every other edge keeps the attempt.
STEP_TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    S.PENDING: frozenset({S.RUNNING, S.SKIPPED}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.WAITING_FOR_APPROVAL, S.SKIPPED}),
    S.WAITING_FOR_APPROVAL: frozenset({S.COMPLETED, S.FAILED, S.SKIPPED}),
    S.FAILED: frozenset({S.RUNNING, S.SKIPPED}),
    S.COMPLETED: frozenset(),
    S.SKIPPED: frozenset(),
}

#: Edges that begin a new attempt.
NEW_ATTEMPT_EDGES: frozenset[tuple[StepState, StepState]] = frozenset({(S.FAILED, S.RUNNING)})

#: An execution in one of these still counts as active (its workflow's ``active_executions``);
#: every other status waits for an operator or is over.
ACTIVE_STATUSES = frozenset({ExecutionStatus.RUNNING, ExecutionStatus.WAITING})
#: Step states an execution's cursor moves past: the step is done with, one way or the other.
DONE_STEP_STATES = frozenset({S.COMPLETED, S.SKIPPED})


def can_move(current: StepState, target: StepState) -> bool:
    """True when ``target`` may follow ``current`` (in the same or, for a retry, the next attempt)."""
    return target in STEP_TRANSITIONS[current]


def is_forward(before: tuple[int, StepState], after: tuple[int, StepState]) -> bool:
    """True when (attempt, state) ``after`` is a legal successor of ``before``.

    The timeline replays and the model check assert it of every change they see: a new
    attempt must come from ``failed`` and start ``running``; inside an attempt the state
    must follow the table.
    """
    (a0, s0), (a1, s1) = before, after
    if a1 == a0:
        return can_move(s0, s1) and (s0, s1) not in NEW_ATTEMPT_EDGES
    if a1 == a0 + 1:
        return (s0, s1) in NEW_ATTEMPT_EDGES
    return False
