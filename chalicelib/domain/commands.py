"""Commands (requests to change an execution) and what ``decide`` answers them with.

Commands are imperative (``RetryStep``, ``Approve``); ``chalicelib.domain.machine.decide`` turns
one into a ``Decision``: the events to append and the step messages to send after them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.fold import Actor, Event
from chalicelib.domain.side_effects import DEFAULT_MODE, RetryMode

__all__ = [
    "Approve",
    "CancelExecution",
    "ClaimStep",
    "Command",
    "Decision",
    "Dispatch",
    "ForceAdvance",
    "Heartbeat",
    "RecordResult",
    "Reject",
    "RequeueStep",
    "RetryStep",
    "Review",
    "SkipStep",
    "StartSideEffect",
    "TimeOutGate",
    "TimeOutStep",
]


@dataclass(frozen=True)
class ClaimStep:
    """A worker received the message for this attempt and wants to run it."""

    step_id: str
    attempt: int


@dataclass(frozen=True)
class RecordResult:
    """A worker finished an attempt: an output, or an error ``{"kind", "message", "retryable"}``."""

    step_id: str
    attempt: int
    output: Any = None
    error: Mapping[str, Any] | None = None
    #: model usage of the attempt (``{"model", "input_tokens", "output_tokens"}``), llm steps only
    usage: Mapping[str, Any] | None = None
    #: the attempt's side-effect ledger entries (``chalicelib.domain.side_effects``)
    side_effects: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class StartSideEffect:
    """The worker running this attempt is about to make a call that changes something elsewhere."""

    step_id: str
    attempt: int
    entry: Mapping[str, Any]


@dataclass(frozen=True)
class TimeOutStep:
    """The sweep found this attempt running past its deadline."""

    step_id: str
    attempt: int


@dataclass(frozen=True)
class Heartbeat:
    """The worker running this attempt is alive: extend its lease."""

    step_id: str
    attempt: int


@dataclass(frozen=True)
class TimeOutGate:
    """The sweep found this attempt's gate waiting past its ``timeout_seconds``."""

    step_id: str
    attempt: int


@dataclass(frozen=True)
class RequeueStep:
    """The sweep found this attempt queued but unclaimed: its message is due (again)."""

    step_id: str
    attempt: int


@dataclass(frozen=True)
class RetryStep:
    step_id: str
    actor: Actor
    instructions: str | None = None
    #: what the new attempt does with the calls earlier attempts made
    side_effects: RetryMode = DEFAULT_MODE


@dataclass(frozen=True)
class SkipStep:
    step_id: str
    actor: Actor
    reason: str | None = None


@dataclass(frozen=True)
class CancelExecution:
    actor: Actor
    reason: str | None = None


@dataclass(frozen=True)
class ForceAdvance:
    step_id: str
    actor: Actor
    comment: str | None = None


@dataclass(frozen=True)
class Approve:
    step_id: str
    actor: Actor
    comment: str | None = None


@dataclass(frozen=True)
class Reject:
    step_id: str
    actor: Actor
    comment: str | None = None


@dataclass(frozen=True)
class Review:
    step_id: str
    actor: Actor
    comment: str | None = None
    output: Any = None
    amended: bool = False


Command = (
    ClaimStep
    | RecordResult
    | StartSideEffect
    | TimeOutStep
    | TimeOutGate
    | Heartbeat
    | RequeueStep
    | RetryStep
    | SkipStep
    | CancelExecution
    | ForceAdvance
    | Approve
    | Reject
    | Review
)


@dataclass(frozen=True)
class Dispatch:
    """A step message to send after the events are stored."""

    step_id: str
    attempt: int
    delay_seconds: int = 0


@dataclass(frozen=True)
class Decision:
    events: tuple[Event, ...] = ()
    dispatch: tuple[Dispatch, ...] = ()
    #: Why nothing happens (a duplicate or stale worker message); None when events exist.
    noop_reason: str | None = None
