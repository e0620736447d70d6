"""One vocabulary: the fold knows every event type it is given or refuses it, retries follow the
error's own flag, the state machine's refusals are domain errors, and the served lists are the enums."""

from __future__ import annotations

import pytest

from chalicelib.domain.limits import MAX_ATTEMPTS, MAX_TIMEOUT_SECONDS
from chalicelib.domain.machine import Event, Refused, replay
from chalicelib.domain.states import ExecutionStatus, StepState
from chalicelib.domain.vocabulary import ROLE_RANK, ErrorKind, EventType, Role, TriggerKind, served
from chalicelib.engine.audit import describe
from chalicelib.errors import Conflict, SteplineError, UnknownEventType
from tests.unit.machine_kit import Run, agent_error, definition, step


def test_the_fold_refuses_an_event_type_it_does_not_know() -> None:
    run = Run(definition(step("a")))
    events = [*run.events, Event("comment_added", "2026-11-25T12:00:01Z", "a", 1, "olivia", {}, seq=2)]
    with pytest.raises(UnknownEventType) as refused:
        replay("ex_1", run.definition, events)
    error = refused.value
    assert (error.execution_id, error.seq, error.event_type) == ("ex_1", 2, "comment_added")
    assert "history event #2 has type 'comment_added'" in error.message
    assert isinstance(error, SteplineError)


def test_the_fold_applies_stored_strings_of_known_types() -> None:
    run = Run(definition(step("a"), step("b")))
    run.run("a")
    # the store hands back plain strings, not enum members
    stored = [Event(str(e.type), e.at, e.step_id, e.attempt, e.actor, e.details, e.seq, e.due) for e in run.events]
    assert all(type(e.type) is str for e in stored)
    assert replay("ex_1", run.definition, stored).step("a").state == StepState.COMPLETED


def test_a_late_result_is_a_known_event_that_changes_nothing() -> None:
    run = Run(definition(step("a")))
    before = run.state
    late = Event(EventType.LATE_RESULT_DISCARDED, "2026-11-25T12:00:05Z", "a", 1, details={"outcome": "output"}, seq=2)
    after = replay("ex_1", run.definition, [*run.events, late])
    assert after.step("a") == before.step("a") and after.status == before.status


def test_every_event_type_has_an_audit_sentence() -> None:
    generic = [t for t in EventType if describe(Event(t, "2026-11-25T12:00:00Z", "a", 1)) == f"{t} on step a"]
    assert not generic, f"engine/audit.py has no sentence for {generic}"


def test_an_error_of_a_new_kind_that_says_retryable_is_retried() -> None:
    run = Run(definition(step("a", retry={"max_attempts": 3, "backoff_seconds": 1})))
    decision = run.run("a", error=agent_error(retryable=True, kind="quota_exceeded"))
    (failed,) = decision.events
    assert failed.type == EventType.STEP_FAILED and failed.details["next_attempt"] == 2
    assert run.view("a").state == StepState.RUNNING and run.view("a").attempt == 2


@pytest.mark.parametrize(
    "error",
    [
        agent_error(retryable=False, kind=ErrorKind.INTEGRATION),
        {"kind": ErrorKind.AGENT, "message": "no flag: not retried"},
    ],
)
def test_an_error_that_does_not_say_retryable_pauses_the_execution(error: dict[str, object]) -> None:
    run = Run(definition(step("a", retry={"max_attempts": 3, "backoff_seconds": 1})))
    decision = run.run("a", error=dict(error))
    assert "retry_at" not in decision.events[0].details
    assert run.state.status == ExecutionStatus.FAILED


def test_refusals_are_domain_errors_with_their_status() -> None:
    assert isinstance(Refused("no"), Conflict) and Refused("no").status == 409
    assert Refused("no step", not_found=True).status == 404
    assert Refused("needs admin", forbidden=True).body()["Code"] == "ForbiddenError"


def test_roles_rank_in_declaration_order() -> None:
    assert [ROLE_RANK[r] for r in Role] == [0, 1, 2]
    assert ROLE_RANK[Role.ADMIN] > ROLE_RANK[Role.OPERATOR] > ROLE_RANK[Role.VIEWER]


def test_the_served_vocabulary_is_the_enums() -> None:
    words = served()
    assert words["execution_statuses"] == ["running", "waiting", "completed", "failed", "cancelled"]
    assert words["active_statuses"] == ["running", "waiting"]
    assert words["step_states"] == [s.value for s in StepState]
    assert words["trigger_kinds"] == [k.value for k in TriggerKind] == ["manual", "event", "schedule"]
    assert words["roles"] == ["viewer", "operator", "admin"]
    assert set(words["event_types"]) == {t.value for t in EventType}
    assert "timeout" in words["error_kinds"]
    assert (
        words["limits"]["max_attempts"] == MAX_ATTEMPTS
        and words["limits"]["max_timeout_seconds"] == MAX_TIMEOUT_SECONDS
    )


def test_every_command_has_exactly_one_rule() -> None:
    from typing import get_args

    from chalicelib.domain.machine import Command
    from chalicelib.domain.operating import OPERATOR_RULES
    from chalicelib.domain.running import RUNNING_RULES

    assert not set(RUNNING_RULES) & set(OPERATOR_RULES)
    assert set(RUNNING_RULES) | set(OPERATOR_RULES) == set(get_args(Command))
