"""The execution state machine: commands and ``decide``.

An execution is the fold of its numbered events (``fold.replay``). Everything that wants
to change it, a worker with a result, an operator, the sweep, sends a *command* to
``decide(state, command, now)``, which returns the events to append and the messages to
send, or raises ``Refused`` when the state does not allow it. ``decide`` is pure: the
engine appends the events with a conditional write on the next sequence number, so a
concurrent writer makes the append fail and nothing is lost or doubled.

Events are facts (past tense); commands are requests (imperative). The rules live in two
modules, each with its table of command -> rule: ``running.py`` (what the worker and the
sweep do) and ``operating.py`` (what operators do); this module routes a command to its rule.
"""

from __future__ import annotations

from datetime import datetime

# The commands and Decision live in commands.py; they are re-exported here, where callers meet decide().
from chalicelib.domain.commands import (
    Approve,
    CancelExecution,
    ClaimStep,
    Command,
    Decision,
    Dispatch,
    ForceAdvance,
    Heartbeat,
    RecordResult,
    Reject,
    RequeueStep,
    RetryStep,
    Review,
    SkipStep,
    StartSideEffect,
    TimeOutGate,
    TimeOutStep,
)
from chalicelib.domain.fold import Actor, Event, ExecutionState, Refused, StepView, apply_events, replay
from chalicelib.domain.operating import OPERATOR_RULES, may_decide, not_undone, starter
from chalicelib.domain.running import (
    HANDOVER_GRACE_SECONDS,
    LEASE_SECONDS,
    MAX_QUEUE_DELAY,
    MAX_REQUEUE_DOUBLINGS,
    RUNNING_RULES,
    SYSTEM,
    Handler,
    backoff_seconds,
    requeue_due,
)
from chalicelib.domain.timefmt import iso
from chalicelib.domain.vocabulary import ROLE_RANK

__all__ = [
    "HANDOVER_GRACE_SECONDS",
    "LEASE_SECONDS",
    "MAX_QUEUE_DELAY",
    "MAX_REQUEUE_DOUBLINGS",
    "ROLE_RANK",
    "SYSTEM",
    "Actor",
    "Approve",
    "CancelExecution",
    "ClaimStep",
    "Command",
    "Decision",
    "Dispatch",
    "Event",
    "ExecutionState",
    "ForceAdvance",
    "Heartbeat",
    "RecordResult",
    "Refused",
    "Reject",
    "RequeueStep",
    "RetryStep",
    "Review",
    "SkipStep",
    "StartSideEffect",
    "StepView",
    "TimeOutGate",
    "TimeOutStep",
    "apply_events",
    "backoff_seconds",
    "decide",
    "may_decide",
    "not_undone",
    "replay",
    "requeue_due",
    "starter",
]


def decide(state: ExecutionState, command: Command, now: datetime) -> Decision:
    """Return what ``command`` does to ``state`` at ``now``; raise ``Refused`` if it may not."""
    handler = _HANDLERS[type(command)]
    return handler(state, command, iso(now), now)


#: Every command's rule: the worker's and the sweep's in running.py, the operators' in operating.py.
_HANDLERS: dict[type, Handler] = {**RUNNING_RULES, **OPERATOR_RULES}
