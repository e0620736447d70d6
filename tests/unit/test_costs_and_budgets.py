"""Money and budgets without AWS: exact cost rounding and sums, budget validation, the check
the llm agent makes before each call, and the budget gate through the pure machine."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.agents import AGENTS
from chalicelib.domain.costs import UsageTotal, attempt_cost_micro, micro, prices_errors, usd
from chalicelib.domain.definition import parse_definition
from chalicelib.domain.machine import Approve, ClaimStep, ForceAdvance, RecordResult, Refused, Reject
from chalicelib.domain.spending import SpendBudget, SpendCheck, parse_budget
from chalicelib.domain.states import StepState
from chalicelib.errors import FieldError
from tests.unit.machine_kit import ADMIN, OPERATOR, Run

MINI = {"mini": {"input_per_million": 0.15, "output_per_million": 0.6}}


def test_an_attempt_is_priced_exactly_and_rounded_half_up_once() -> None:
    # 123 x 0.15 + 45 x 0.6 = 45.45 micro-dollars -> 45; 1001 x 0.15 + 333 x 0.6 = 349.95 -> 350
    assert attempt_cost_micro(MINI, "mini", 123, 45) == 45
    assert attempt_cost_micro(MINI, "mini", 1001, 333) == 350
    assert attempt_cost_micro(MINI, "other", 1, 1) is None
    assert attempt_cost_micro({"m": {"input_per_million": 1, "output_per_million": 0}}, "m", 1, 0) == 1


def test_sums_of_many_small_costs_do_not_drift() -> None:
    total = UsageTotal()
    for _ in range(1000):
        total.add({"model": "m", "input_tokens": 1, "output_tokens": 0, "cost_usd": 0.000001 * 7})
    assert total.cost_micro == 7000 and total.to_dict()["cost_usd"] == 0.007
    assert sum([0.000007] * 1000) != 0.007  # what float sums would have said
    assert usd(micro(0.1) + micro(0.2)) == 0.3


def test_unpriced_models_are_named_in_the_total_and_cost_nothing() -> None:
    total = UsageTotal()
    total.add({"model": "free", "input_tokens": 10, "output_tokens": 1, "cost_usd": None})
    total.add({"model": "mini", "input_tokens": 10, "output_tokens": 1, "cost_usd": 0.5})
    assert total.to_dict() == {"input_tokens": 20, "output_tokens": 2, "cost_usd": 0.5, "unpriced_models": ["free"]}


@pytest.mark.parametrize(
    "prices, field",
    [
        ([], "prices"),
        ({"m": 1}, "prices.m"),
        ({"m": {"input_per_million": 1}}, "prices.m.output_per_million"),
        ({"m": {"input_per_million": 1, "output_per_million": 20000}}, "prices.m.output_per_million"),
        ({"m": {"input_per_million": True, "output_per_million": 1}}, "prices.m.input_per_million"),
        ({"m": {"input_per_million": 1, "output_per_million": 1, "cached": 1}}, "prices.m.cached"),
    ],
)
def test_prices_are_checked_field_by_field(prices: Any, field: str) -> None:
    assert field in [e.field for e in prices_errors(prices)]


def test_a_budget_needs_a_limit_and_says_what_is_wrong() -> None:
    errors: list[FieldError] = []
    assert parse_budget({"on_exceed": "fail"}, errors) is None
    assert [e.field for e in errors] == ["budget"]
    errors = []
    budget = parse_budget({"max_cost_usd": 0.5, "max_tokens": 1000, "approvers": ["admin"]}, errors)
    assert errors == [] and budget == SpendBudget(1000, 500_000, "pause", ("admin",))
    assert budget.to_dict() == {"max_tokens": 1000, "max_cost_usd": 0.5, "on_exceed": "pause", "approvers": ["admin"]}


def test_the_check_stops_a_call_once_a_limit_is_reached_and_says_on_what() -> None:
    before = UsageTotal(input_tokens=80, output_tokens=0, cost_micro=0)
    check = SpendCheck(
        SpendBudget(max_tokens=100), before, ({"step_id": "a", "attempt": 1, "input_tokens": 80},), False, "b", 1
    )
    assert check.check({"input_tokens": 10, "output_tokens": 9, "requests": 1}, "tool call 1 (x)") is None
    report = check.check({"input_tokens": 10, "output_tokens": 10, "requests": 1}, "model request 2 of attempt 1")
    assert report is not None and report["reached"] == ["max_tokens"] and report["spent"]["tokens"] == 100
    assert [(e["step_id"], e["attempt"]) for e in report["on"]] == [("a", 1), ("b", 1)]
    waived = SpendCheck(SpendBudget(max_tokens=100), before, (), True, "b", 2)
    assert waived.check({"input_tokens": 500, "requests": 1}, "model request 3 of attempt 2") is None


def _budgeted(on_exceed: str = "pause") -> Run:
    wf = parse_definition(
        {
            "name": "wf",
            "trigger": {"type": "manual"},
            "budget": {"max_tokens": 100, "on_exceed": on_exceed},
            "steps": [
                {"id": "ask", "agent": "llm", "instructions": "x", "config": {"connection": "c", "model": "m"}},
                {"id": "next", "agent": "transform", "instructions": "prev"},
            ],
        },
        AGENTS,
    )
    run = Run(wf)
    run.do(ClaimStep("ask", 1))
    usage = {"model": "m", "input_tokens": 100, "output_tokens": 20, "requests": 2, "cost_usd": None}
    error = {
        "kind": "agent",
        "message": "the execution reached its budget",
        "retryable": False,
        "action": "edit_and_retry",
        "budget_exceeded": True,
        "details": {"budget": {"reached": ["max_tokens"]}, "usage": usage, "tool_calls": [{"n": 1}]},
    }
    run.do(RecordResult("ask", 1, error=error, usage=usage))
    return run


def test_pause_waits_at_a_budget_gate_and_a_raise_runs_a_new_attempt() -> None:
    run = _budgeted()
    step = run.state.step("ask")
    assert step.state == StepState.WAITING_FOR_APPROVAL and step.waiting_gate == "budget"
    assert step.budget == {"reached": ["max_tokens"], "tool_calls": [{"n": 1}]}
    assert run.state.usage_total.tokens == 120
    with pytest.raises(Refused, match="not above the 120 tokens"):
        run.do(Approve("ask", OPERATOR, max_tokens=120))
    decision = run.do(Approve("ask", OPERATOR, "go", max_tokens=500))
    assert [e.type for e in decision.events] == ["budget_approved"]
    assert [(d.step_id, d.attempt) for d in decision.dispatch] == [("ask", 2)]
    state = run.state
    assert state.step("ask").attempt == 2 and state.step("ask").state == StepState.RUNNING
    assert state.budget is not None and state.budget.max_tokens == 500
    assert state.step("ask").decision is not None and state.step("ask").decision["by"] == "olivia"


def test_approve_without_limits_waives_the_budget_for_the_next_attempt_only() -> None:
    run = _budgeted()
    run.do(Approve("ask", OPERATOR))
    state = run.state
    assert state.step("ask").waived_attempt == 2 and state.budget is not None and state.budget.max_tokens == 100


def test_reject_fails_and_force_advance_skips_a_budget_gate() -> None:
    run = _budgeted()
    run.do(Reject("ask", OPERATOR, "too much"))
    assert run.state.step("ask").state == StepState.FAILED
    forced = _budgeted()
    forced.do(ForceAdvance("ask", ADMIN))
    assert forced.state.step("ask").state == StepState.SKIPPED


def test_fail_mode_is_an_ordinary_failure_that_keeps_the_usage() -> None:
    run = _budgeted("fail")
    step = run.state.step("ask")
    assert step.state == StepState.FAILED and step.error is not None and step.error["budget_exceeded"] is True
    assert run.state.usage_total.tokens == 120


def test_a_result_recorded_twice_counts_once_in_the_total() -> None:
    run = _budgeted("fail")
    usage = {"model": "m", "input_tokens": 100, "output_tokens": 20, "requests": 2}
    run.do(RecordResult("ask", 1, output={"late": True}, usage=usage))  # late_result_discarded
    assert run.state.usage_total.tokens == 120 and len(run.state.spend) == 1
