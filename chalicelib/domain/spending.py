"""A workflow's spending budget per execution, and the check a model agent makes before each call.

``"budget": {"max_tokens": 20000, "max_cost_usd": 0.5, "on_exceed": "pause"}`` limits what one
execution may spend on models, over all its steps and attempts (retries included). The llm
agent asks ``SpendCheck.check`` before each further model request and each tool call of an
attempt, with what the attempt has used so far; the first call that finds the execution at or
over a limit is not made, so a runaway tool loop stops at the call that would go past the line
rather than at the end of the attempt. (A request's tokens are known only once it is answered,
so the request that crosses the line is the last one made.)

What happens then is the machine's: ``pause`` ends the step ``waiting_for_approval`` at a
``budget`` gate (approve, optionally with higher limits, runs the step again as a new attempt;
reject fails it); ``fail`` fails the step as kind ``agent`` with action ``edit_and_retry``.
Approving without new limits lets the next attempt of that step run past the budget (the
approver accepted the overrun); later steps are checked again. Pure: no clock, no AWS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.domain.costs import UsageTotal, micro, usd
from chalicelib.errors import FieldError

__all__ = [
    "BUDGET_GATE",
    "BUDGET_KEYS",
    "ON_EXCEED",
    "SpendBudget",
    "SpendCheck",
    "limit_errors",
    "parse_budget",
]

ON_EXCEED = ("pause", "fail")
BUDGET_KEYS = ("max_tokens", "max_cost_usd", "on_exceed", "approvers")
#: The gate type of a step paused by its execution's budget.
BUDGET_GATE = "budget"
MAX_BUDGET_TOKENS = 1_000_000_000
MAX_BUDGET_USD = 1_000_000
MIN_BUDGET_USD = 0.000001


@dataclass(frozen=True)
class SpendBudget:
    """Limits per execution (None: no limit of that kind) and what to do when one is reached.

    ``approvers`` decide a budget gate (key names or roles, as a gate's; empty: any operator)."""

    max_tokens: int | None = None
    max_cost_micro: int | None = None
    on_exceed: str = "pause"
    approvers: tuple[str, ...] = ()

    def limits(self) -> dict[str, Any]:
        """The limits as the API shows them."""
        return {"max_tokens": self.max_tokens, "max_cost_usd": usd(self.max_cost_micro)}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {k: v for k, v in self.limits().items() if v is not None}
        body["on_exceed"] = self.on_exceed
        if self.approvers:
            body["approvers"] = list(self.approvers)
        return body

    def raised(self, max_tokens: int | None, max_cost_micro: int | None) -> SpendBudget:
        """The budget with the limits an approver gave (the others unchanged)."""
        return replace(
            self,
            max_tokens=self.max_tokens if max_tokens is None else max_tokens,
            max_cost_micro=self.max_cost_micro if max_cost_micro is None else max_cost_micro,
        )

    def reached(self, spent: UsageTotal) -> list[str]:
        """The limits ``spent`` is at or over (``max_tokens``, ``max_cost_usd``)."""
        hit = []
        if self.max_tokens is not None and spent.tokens >= self.max_tokens:
            hit.append("max_tokens")
        if self.max_cost_micro is not None and spent.cost_micro >= self.max_cost_micro:
            hit.append("max_cost_usd")
        return hit


def parse_budget(raw: Any, errors: list[FieldError], path: str = "budget") -> SpendBudget | None:
    """Validate a definition's ``budget``, recording each problem by its path in ``errors``."""
    if raw is None:
        return None
    example = '{"max_cost_usd": 0.5, "on_exceed": "pause"}'
    if not isinstance(raw, dict):
        errors.append(FieldError(path, f"must be an object, e.g. {example}"))
        return None
    start = len(errors)
    errors += [FieldError(f"{path}.{k}", "unknown field") for k in sorted(set(raw) - set(BUDGET_KEYS))]
    if raw.get("max_tokens") is None and raw.get("max_cost_usd") is None:
        errors.append(FieldError(path, f"needs max_tokens, max_cost_usd or both, e.g. {example}"))
    errors += limit_errors(raw.get("max_tokens"), raw.get("max_cost_usd"), path)
    on_exceed = raw.get("on_exceed", "pause")
    if on_exceed not in ON_EXCEED:
        errors.append(FieldError(f"{path}.on_exceed", f"must be one of {', '.join(ON_EXCEED)}"))
    approvers = raw.get("approvers")
    if approvers is not None and (
        not isinstance(approvers, list) or not all(isinstance(a, str) and a.strip() for a in approvers)
    ):
        errors.append(FieldError(f"{path}.approvers", "must be a list of key names or roles"))
    if len(errors) > start:
        return None
    cost = raw.get("max_cost_usd")
    return SpendBudget(
        raw.get("max_tokens"),
        micro(cost) if cost is not None else None,
        on_exceed,
        tuple(approvers or ()),
    )


def limit_errors(max_tokens: Any, max_cost_usd: Any, path: str = "") -> list[FieldError]:
    """Problems with budget limits, in a definition or an approval that raises them."""
    at = f"{path}." if path else ""
    errors = []
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_BUDGET_TOKENS
    ):
        errors.append(FieldError(f"{at}max_tokens", f"must be an integer from 1 to {MAX_BUDGET_TOKENS}"))
    if max_cost_usd is not None:
        # compared as the JSON number it is, as the OpenAPI document's minimum and maximum are
        number = not isinstance(max_cost_usd, bool) and isinstance(max_cost_usd, (int, float))
        if not number or not MIN_BUDGET_USD <= max_cost_usd <= MAX_BUDGET_USD:
            errors.append(
                FieldError(f"{at}max_cost_usd", f"must be a number of US dollars from 0.000001 to {MAX_BUDGET_USD}")
            )
    return errors


@dataclass(frozen=True)
class SpendCheck:
    """What an attempt of a model step checks before each call: the execution's budget, what
    earlier attempts spent (``before``, per attempt in ``spend``), and whether an approver let
    this attempt run past the budget (``waived``)."""

    budget: SpendBudget
    before: UsageTotal
    spend: Sequence[Mapping[str, Any]] = ()
    waived: bool = False
    step_id: str = ""
    attempt: int = 0

    @property
    def needs_prices(self) -> bool:
        """A dollar limit can only be held with a price for the model."""
        return self.budget.max_cost_micro is not None and not self.waived

    def check(self, attempt_usage: Mapping[str, Any], next_call: str) -> dict[str, Any] | None:
        """None when ``next_call`` may go ahead; otherwise the report of what was spent and on what."""
        if self.waived:
            return None
        spent = self.before.plus(attempt_usage)
        reached = self.budget.reached(spent)
        if not reached:
            return None
        this = {"step_id": self.step_id, "attempt": self.attempt, **attempt_usage}
        on = [dict(entry) for entry in self.spend] + ([this] if attempt_usage.get("requests") else [])
        return {
            "limits": self.budget.limits(),
            "reached": reached,
            "on_exceed": self.budget.on_exceed,
            "spent": {**spent.to_dict(), "tokens": spent.tokens},
            "stopped_before": next_call,
            "on": on,
        }
