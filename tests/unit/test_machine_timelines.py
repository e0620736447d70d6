"""Replay recorded execution timelines (JSON in ``timelines/``) through the pure state machine.

Each file holds a definition, an execution's history as the API shows it, the state the fold
must reach, and what further commands must do on that state. A change to the fold or to
``decide`` that would read a stored history differently fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.agents import AGENTS
from chalicelib.domain.definition import parse_definition
from chalicelib.domain.machine import (
    Actor,
    CancelExecution,
    ClaimStep,
    Event,
    ForceAdvance,
    RecordResult,
    Refused,
    RetryStep,
    SkipStep,
    decide,
    replay,
)
from chalicelib.domain.states import StepState, is_forward
from chalicelib.domain.timefmt import parse_iso

TIMELINES = sorted((Path(__file__).parent / "timelines").glob("*.json"))
ACTORS = {"olivia": Actor("olivia", "operator"), "root": Actor("root", "admin")}


def load(path: Path) -> tuple[Any, list[Event], dict[str, Any]]:
    data = json.loads(path.read_text())
    definition = parse_definition(data["definition"], AGENTS)
    events = [
        Event(e["type"], e["at"], e["step_id"], e["attempt"], e["actor"], e["details"], e["seq"])
        for e in data["events"]
    ]
    return definition, events, data


def command(spec: dict[str, Any]) -> Any:
    actor = ACTORS.get(spec.get("actor", ""))
    return {
        "retry": lambda: RetryStep(spec["step_id"], actor),
        "skip": lambda: SkipStep(spec["step_id"], actor),
        "cancel": lambda: CancelExecution(actor),
        "force-advance": lambda: ForceAdvance(spec["step_id"], actor),
        "claim": lambda: ClaimStep(spec["step_id"], spec["attempt"]),
        "record": lambda: RecordResult(spec["step_id"], spec["attempt"], output="again"),
    }[spec["command"]]()


def test_there_are_recorded_timelines() -> None:
    assert len(TIMELINES) >= 4


@pytest.mark.parametrize("path", TIMELINES, ids=lambda p: p.stem)
def test_replayed_timeline_reaches_the_recorded_state(path: Path) -> None:
    definition, events, data = load(path)
    state = replay("ex_recorded", definition, events)
    assert state.status.value == data["expect"]["status"]
    for step in state.steps:
        expected = data["expect"]["steps"][step.id]
        assert (step.state.value, step.attempt) == (expected["state"], expected["attempt"]), step.id
        if "decision" in expected:
            assert (step.decision["decision"], step.decision["by"]) == (expected["decision"], expected["by"])


@pytest.mark.parametrize("path", TIMELINES, ids=lambda p: p.stem)
def test_every_prefix_of_a_timeline_moves_steps_forward_only(path: Path) -> None:
    definition, events, _ = load(path)
    previous = replay("ex_recorded", definition, [])
    for n in range(1, len(events) + 1):
        state = replay("ex_recorded", definition, events[:n])
        for old, new in zip(previous.steps, state.steps, strict=True):
            same = (old.attempt, old.state) == (new.attempt, new.state)
            # an automatic retry folds failed -> running (next attempt) into one event
            via_failed = is_forward((old.attempt, old.state), (old.attempt, StepState.FAILED)) and is_forward(
                (old.attempt, StepState.FAILED), (new.attempt, new.state)
            )
            assert same or is_forward((old.attempt, old.state), (new.attempt, new.state)) or via_failed, (
                events[n - 1].type,
                old,
                new,
            )
        previous = state


@pytest.mark.parametrize("path", TIMELINES, ids=lambda p: p.stem)
def test_commands_after_the_timeline_do_what_was_recorded(path: Path) -> None:
    definition, events, data = load(path)
    state = replay("ex_recorded", definition, events)
    now = parse_iso(events[-1].at)
    for spec in data["next"]:
        if spec.get("refused"):
            with pytest.raises(Refused):
                decide(state, command(spec), now)
            continue
        decision = decide(state, command(spec), now)
        if spec.get("noop"):
            assert not decision.events and not decision.dispatch, spec
        elif spec.get("late"):
            assert [e.type for e in decision.events] == ["late_result_discarded"]
        else:
            assert decision.events and all(e.actor == spec["actor"] for e in decision.events[:1])
