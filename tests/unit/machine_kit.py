"""A tiny in-memory driver for the pure state machine, for the ``test_machine*`` tests.

``Run`` plays the engine's part without AWS: it folds the events it has appended, asks
``decide`` what a command does at its own clock, and appends the answer with sequence
numbers, exactly as ``ExecutionService.commit`` does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.agents import AGENTS
from chalicelib.domain.definition import WorkflowDefinition, parse_definition
from chalicelib.domain.machine import (
    Actor,
    ClaimStep,
    Command,
    Decision,
    Event,
    ExecutionState,
    RecordResult,
    decide,
    replay,
)
from chalicelib.domain.timefmt import iso

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
ADMIN = Actor("root", "admin")
OPERATOR = Actor("olivia", "operator")
MANAGER = Actor("manager-key", "operator")
VIEWER = Actor("victor", "viewer")


def step(step_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "agent": "transform", "instructions": extra.pop("instructions", "prev"), **extra}


def definition(*steps: dict[str, Any]) -> WorkflowDefinition:
    return parse_definition({"name": "wf", "trigger": {"type": "manual"}, "steps": list(steps)}, AGENTS)


class Run:
    def __init__(self, wf: WorkflowDefinition, input: Any = None, now: datetime = T0) -> None:
        self.definition = wf
        self.now = now
        self.events: list[Event] = []
        self.append(
            (
                Event(
                    "execution_started",
                    iso(now),
                    actor="olivia",
                    details={
                        "workflow_id": "wf_1",
                        "workflow_version": 1,
                        "input": input or {"n": 1},
                        "trigger": {"type": "manual"},
                    },
                ),
            )
        )

    @property
    def state(self) -> ExecutionState:
        return replay("ex_1", self.definition, self.events)

    def append(self, events: tuple[Event, ...]) -> None:
        seq = len(self.events)
        for i, e in enumerate(events):
            self.events.append(Event(e.type, e.at, e.step_id, e.attempt, e.actor, e.details, seq + i + 1, e.due))

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def do(self, command: Command) -> Decision:
        decision = decide(self.state, command, self.now)
        self.append(decision.events)
        return decision

    def run(self, step_id: str, attempt: int = 1, output: Any = "out", error: dict[str, Any] | None = None) -> Decision:
        """A worker: claim the attempt, then record its output (or error)."""
        claim = self.do(ClaimStep(step_id, attempt))
        assert claim.events, claim.noop_reason
        return self.do(RecordResult(step_id, attempt, output=output, error=error))

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def view(self, step_id: str) -> Any:
        return self.state.step(step_id)


def agent_error(retryable: bool = True, kind: str = "agent") -> dict[str, Any]:
    return {"kind": kind, "message": "it broke", "retryable": retryable}
