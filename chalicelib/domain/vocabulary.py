"""Stepline's words, defined once: event types, trigger kinds, roles and error kinds.

Step states and execution statuses live beside their transition table in ``states.py``;
everything else that names a fixed set of strings is here, as a closed ``StrEnum`` whose
values are exactly the strings of the API and of stored history. The store, the API's
schemas and OpenAPI document, the CLI and the UI derive their lists from these (the UI and
the CLI read ``GET /vocabulary.json``, built by ``served()``), so a new word is added here
and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from chalicelib.domain.limits import served as served_limits
from chalicelib.domain.states import ACTIVE_STATUSES, ExecutionStatus, StepState

__all__ = [
    "ROLE_RANK",
    "ErrorKind",
    "EventType",
    "Role",
    "TriggerKind",
    "served",
]


class EventType(StrEnum):
    """Every fact an execution's history may hold (past tense: events are facts)."""

    EXECUTION_STARTED = "execution_started"
    EXECUTION_COMPLETED = "execution_completed"
    EXECUTION_CANCELLED = "execution_cancelled"
    STEP_STARTED = "step_started"
    STEP_HEARTBEAT = "step_heartbeat"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_TIMED_OUT = "step_timed_out"
    STEP_REQUEUED = "step_requeued"
    STEP_RETRIED = "step_retried"
    STEP_SKIPPED = "step_skipped"
    STEP_FORCE_ADVANCED = "step_force_advanced"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_GRANTED = "approval_granted"
    APPROVAL_REJECTED = "approval_rejected"
    REVIEW_SUBMITTED = "review_submitted"
    INSTRUCTIONS_EDITED = "instructions_edited"
    #: A call with side effects (a non-GET tool or http call, an email) entered before it is made.
    SIDE_EFFECT_STARTED = "side_effect_started"
    #: A worker's result that arrived after the step had moved on: kept, changes nothing.
    LATE_RESULT_DISCARDED = "late_result_discarded"


class TriggerKind(StrEnum):
    """The built-in ways a workflow's executions start (a definition's ``trigger.type``). Each is a
    plugin in ``chalicelib/triggers/``; the registry there is the full list, a new kind included."""

    MANUAL = "manual"
    EVENT = "event"
    SCHEDULE = "schedule"


class Role(StrEnum):
    """An API key's role; each includes the ones before it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


#: A role may do what its rank and every lower rank may do.
ROLE_RANK: dict[str, int] = {role.value: rank for rank, role in enumerate(Role)}


class ErrorKind(StrEnum):
    """Where a step's error came from (``error.kind``); whether it is retried is the error's own
    ``retryable`` flag, never its kind."""

    #: The agent could not do the task (a bad expression, a failing callable, a model that gave up).
    AGENT = "agent"
    #: A remote system failed or refused the call.
    INTEGRATION = "integration"
    #: The step ran past its time limit, its worker went silent, or a gate waited too long.
    TIMEOUT = "timeout"
    #: A person rejected the step at its gate.
    REJECTED = "rejected"
    #: Stepline itself failed on the step's message (it reached the dead-letter queue).
    INTERNAL = "internal"


def served() -> dict[str, Any]:
    """The vocabulary as clients read it (``GET /vocabulary.json``): every list in API order."""
    # Trigger kinds are plugins (TriggerKind names the built-in ones); the plugins import the domain.
    from chalicelib.triggers import trigger_kind_names

    return {
        "step_states": [s.value for s in StepState],
        "execution_statuses": [s.value for s in ExecutionStatus],
        "active_statuses": [s.value for s in ExecutionStatus if s in ACTIVE_STATUSES],
        "trigger_kinds": trigger_kind_names(),
        "roles": [r.value for r in Role],
        "event_types": [e.value for e in EventType],
        "error_kinds": [k.value for k in ErrorKind],
        "limits": served_limits(),
    }
