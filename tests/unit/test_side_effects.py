"""The side-effect ledger in the pure state machine and in an agent's hands: entries committed
before a call stay ``unknown`` when the worker dies, a replay hands back recorded results once
per call, and never repeats a call whose outcome is unknown."""

from __future__ import annotations

import pytest

from chalicelib.agents.base import AgentError
from chalicelib.agents.ledger import PlannedCall, SideEffectLedger, failure_status
from chalicelib.domain.machine import ClaimStep, RecordResult, RetryStep, StartSideEffect, TimeOutStep
from chalicelib.domain.side_effects import (
    RetryMode,
    SideEffectStatus,
    fingerprint,
    merge,
    public_entries,
    public_target,
    summary,
)
from tests.unit.machine_kit import OPERATOR, Run, agent_error, definition, step

POST = fingerprint("http", "POST", "https://pay.example/refunds", {"amount": 12})


def _entry(attempt: int, n: int, status: str, **extra: object) -> dict[str, object]:
    return {
        "attempt": attempt,
        "n": n,
        "kind": "tool_call",
        "target": "POST https://pay.example/refunds",
        "status": status,
        "at": "2026-11-25T12:00:00Z",
        "idempotency_key": f"ex_1:a:{attempt}:{n}",
        "fingerprint": POST,
        **extra,
    }


def _run_with_http_step() -> Run:
    return Run(definition(step("a", agent="http", config={"url": "https://pay.example/refunds"})))


def test_an_entry_committed_before_the_call_stays_unknown_when_the_worker_dies() -> None:
    run = _run_with_http_step()
    run.do(ClaimStep("a", 1))
    assert run.do(StartSideEffect("a", 1, _entry(1, 1, "unknown"))).events[0].type == "side_effect_started"
    run.advance(3600)
    run.do(TimeOutStep("a", 1))
    [effect] = run.view("a").side_effects
    assert effect["status"] == "unknown" and run.view("a").state.value == "failed"


def test_the_result_replaces_the_started_entry_and_a_retry_records_the_operators_choice() -> None:
    run = _run_with_http_step()
    run.do(ClaimStep("a", 1))
    run.do(StartSideEffect("a", 1, _entry(1, 1, "unknown")))
    done = _entry(1, 1, "succeeded", result={"status": 201})
    run.do(RecordResult("a", 1, error=agent_error(retryable=False), side_effects=(done,)))
    assert [e["status"] for e in run.view("a").side_effects] == ["succeeded"]
    retried = run.do(RetryStep("a", OPERATOR, side_effects=RetryMode.RERUN)).events[-1]
    assert retried.details["side_effects"] == "rerun" and retried.details["side_effects_before"] == "made 1 POST call"
    assert run.view("a").side_effect_mode == "rerun"


def test_an_automatic_retry_replays() -> None:
    run = Run(
        definition(
            step(
                "a", agent="http", config={"url": "https://x.example"}, retry={"max_attempts": 3, "backoff_seconds": 1}
            )
        )
    )
    run.do(ClaimStep("a", 1))
    run.do(RecordResult("a", 1, error=agent_error(), side_effects=(_entry(1, 1, "failed"),)))
    assert run.view("a").attempt == 2 and run.view("a").side_effect_mode == "replay"
    assert run.view("a").side_effects[0]["status"] == "failed"


def test_no_entry_is_committed_for_an_attempt_that_was_stopped() -> None:
    run = _run_with_http_step()
    run.do(ClaimStep("a", 1))
    run.advance(3600)
    run.do(TimeOutStep("a", 1))
    decision = run.do(StartSideEffect("a", 1, _entry(1, 1, "unknown")))
    assert not decision.events and "failed" in (decision.noop_reason or "")


def test_a_late_result_still_adds_its_side_effects() -> None:
    run = _run_with_http_step()
    run.do(ClaimStep("a", 1))
    run.advance(3600)
    run.do(TimeOutStep("a", 1))
    run.do(RecordResult("a", 1, output={}, side_effects=(_entry(1, 1, "succeeded"),)))
    assert run.types()[-1] == "late_result_discarded"
    assert run.view("a").side_effects[0]["status"] == "succeeded"


def test_replay_hands_each_recorded_call_back_once_latest_attempt_first() -> None:
    previous = [_entry(1, 1, "succeeded", result="one"), _entry(2, 1, "succeeded", result="two")]
    ledger = SideEffectLedger("ex_1", "a", 3, previous)
    assert ledger.replay(POST, kind="tool_call", target="POST x")["result"] == "two"  # type: ignore[index]
    assert ledger.replay(POST, kind="tool_call", target="POST x")["result"] == "one"  # type: ignore[index]
    assert ledger.replay(POST, kind="tool_call", target="POST x") is None  # a third identical call is made
    assert [e["replayed_from"] for e in ledger.entries] == [{"attempt": 2, "n": 1}, {"attempt": 1, "n": 1}]
    assert [e["idempotency_key"] for e in ledger.entries] == ["ex_1:a:2:1", "ex_1:a:1:1"]


def test_rerun_replays_nothing() -> None:
    ledger = SideEffectLedger("ex_1", "a", 2, [_entry(1, 1, "succeeded", result="one")], RetryMode.RERUN)
    assert ledger.replay(POST, kind="tool_call", target="POST x") is None
    entry = ledger.begin("tool_call", "POST x", ledger.key(1), POST)
    assert entry["idempotency_key"] == "ex_1:a:2:1" and entry["status"] == "unknown"


def test_replay_refuses_to_repeat_a_call_whose_outcome_is_unknown() -> None:
    ledger = SideEffectLedger("ex_1", "a", 2, [_entry(1, 1, "unknown")])
    with pytest.raises(AgentError) as raised:
        ledger.replay(POST, kind="tool_call", target="POST https://pay.example/refunds")
    assert raised.value.retryable is False and "unknown outcome" in raised.value.message
    other = fingerprint("http", "POST", "https://pay.example/refunds", {"amount": 13})
    assert ledger.replay(other, kind="tool_call", target="POST x") is None  # a different call goes ahead


def test_a_note_that_refuses_stops_the_call_before_it_is_entered() -> None:
    def refuse(entry: dict[str, object]) -> None:
        raise AgentError("the attempt was stopped", retryable=False)

    ledger = SideEffectLedger("ex_1", "a", 1, note=refuse)
    with pytest.raises(AgentError):
        ledger.begin("http", "POST x", "k", POST)
    assert ledger.entries == []


CALL = PlannedCall("http", "POST https://pay.example/refunds", "ex_1:a:1:1", POST)


def test_a_planned_call_is_opened_once_and_begun_without_a_second_note() -> None:
    opened = SideEffectLedger("ex_1", "a", 1).open(CALL)
    assert opened is not None and (opened["n"], opened["status"], opened["fingerprint"]) == (1, "unknown", POST)
    notes: list[dict[str, object]] = []
    ledger = SideEffectLedger("ex_1", "a", 1, note=notes.append, opened=opened)
    entry = ledger.begin(CALL.kind, CALL.target, CALL.key, CALL.fingerprint)
    assert entry == opened and notes == []  # committed with the claim: nothing more to commit
    ledger.unmade()
    assert ledger.entries == [opened]


def test_a_call_other_than_the_planned_one_is_noted_and_the_planned_one_recorded_as_not_made() -> None:
    opened = SideEffectLedger("ex_1", "a", 1).open(CALL)
    notes: list[dict[str, object]] = []
    ledger = SideEffectLedger("ex_1", "a", 1, note=notes.append, opened=opened)
    other = fingerprint("http", "POST", "https://pay.example/refunds", {"amount": 13})
    entry = ledger.begin("http", CALL.target, CALL.key, other)
    assert [e["n"] for e in ledger.entries] == [1, 2] and notes == [{**entry}]
    assert ledger.entries[0]["status"] == "failed" and "finished_at" in ledger.entries[0]


def test_a_planned_call_the_agent_never_began_is_recorded_as_not_made() -> None:
    opened = SideEffectLedger("ex_1", "a", 1).open(CALL)
    ledger = SideEffectLedger("ex_1", "a", 1, note=lambda e: None, opened=opened)
    ledger.unmade()
    [entry] = ledger.entries
    assert entry["status"] == "failed" and entry["idempotency_key"] == CALL.key


def test_no_call_is_opened_when_the_agent_will_replay_it_or_stop_at_an_unknown_one() -> None:
    assert SideEffectLedger("ex_1", "a", 2, [_entry(1, 1, "succeeded", result="one")]).open(CALL) is None
    assert SideEffectLedger("ex_1", "a", 2, [_entry(1, 1, "unknown")]).open(CALL) is None
    rerun = SideEffectLedger("ex_1", "a", 2, [_entry(1, 1, "succeeded", result="one")], RetryMode.RERUN)
    assert rerun.open(CALL) is not None  # a rerun makes it again


def test_failure_status_says_unknown_only_when_the_request_may_have_arrived() -> None:
    assert failure_status(500, "HTTP 500") == SideEffectStatus.FAILED
    assert failure_status(None, "timed out", timed_out=True) == SideEffectStatus.UNKNOWN
    assert failure_status(None, "connection reset by peer") == SideEffectStatus.UNKNOWN
    assert failure_status(None, "connection refused") == SideEffectStatus.FAILED


def test_summary_counts_what_was_done_and_flags_unknown_outcomes() -> None:
    email = {"kind": "email", "target": "email to a@x.example", "status": "succeeded"}
    entries = [
        email,
        _entry(1, 2, "succeeded"),
        _entry(1, 3, "unknown"),
        {**_entry(2, 1, "replayed")},
        {**_entry(2, 2, "failed"), "target": "PATCH https://crm.example/c/1"},
    ]
    assert summary(entries) == "sent 1 email and made 2 POST calls and 1 PATCH call (1 with unknown outcome, 1 failed)"
    assert summary([]) is None and summary([_entry(2, 1, "replayed")]) is None


def test_merge_replaces_by_attempt_and_number_and_public_entries_hide_results() -> None:
    merged = merge([_entry(1, 1, "unknown")], [_entry(1, 1, "succeeded", result="r"), _entry(1, 2, "failed")])
    assert [(e["n"], e["status"]) for e in merged] == [(1, "succeeded"), (2, "failed")]
    assert all("result" not in e and "fingerprint" not in e for e in public_entries(merged))


def test_public_target_drops_credentials_and_query() -> None:
    assert public_target("post", "https://u:pw@pay.example:8443/r?token=s3cret") == "POST https://pay.example:8443/r?…"
