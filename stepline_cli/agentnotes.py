"""What `stepline show` adds for AI agent steps: model usage and cost, the budget gate, and the tool calls made."""

from __future__ import annotations

from typing import Any


def agent_notes(step: dict[str, Any]) -> list[str]:
    """Short notes on an llm step's usage and tool calls (empty for other steps)."""
    notes: list[str] = []
    usage = step.get("usage")
    if isinstance(usage, dict):
        notes.append(
            f"{usage.get('model', 'model')}: {usage.get('input_tokens', 0)} in / "
            f"{usage.get('output_tokens', 0)} out tokens{money(usage.get('cost_usd'), ', ')}"
        )
        total = step.get("usage_total")
        if isinstance(total, dict) and int(step.get("attempt") or 1) > 1:
            notes.append(
                f"all attempts: {total.get('input_tokens', 0)} in / {total.get('output_tokens', 0)} out tokens"
                f"{money(total.get('cost_usd'), ', ')}"
            )
    budget = step.get("budget")
    if step.get("gate") == "budget" and isinstance(budget, dict):
        notes.append(budget_line(budget))
    output, error = step.get("output"), step.get("error")
    calls = output.get("tool_calls") if isinstance(output, dict) else None
    if calls is None and isinstance(error, dict) and isinstance(error.get("details"), dict):
        calls = error["details"].get("tool_calls")
    if isinstance(calls, list) and calls:
        shown = ", ".join(f"{c.get('name', '?')}→{c.get('status', '?')}" for c in calls[:5] if isinstance(c, dict))
        notes.append(f"tool calls: {shown}" + (f" (+{len(calls) - 5})" if len(calls) > 5 else ""))
    if step.get("side_effects_summary"):
        notes.append(f"side effects: {step['side_effects_summary']}")
    if isinstance(error, dict) and error.get("missing"):
        notes.append("missing: " + ", ".join(map(str, error["missing"])))
    if isinstance(error, dict) and error.get("action"):
        notes.append(f"recommended: {str(error['action']).replace('_', ' ')}")
    return notes


def money(value: Any, prefix: str = "") -> str:
    """``$0.000441`` for a cost (empty when unknown)."""
    return f"{prefix}${value:.6f}".rstrip("0").rstrip(".") if isinstance(value, (int, float)) else ""


def budget_line(budget: dict[str, Any]) -> str:
    """What a budget gate shows: spent against the limits, and the call it stopped before."""
    spent = budget.get("spent") or {}
    limits = budget.get("limits") or {}
    parts = []
    if limits.get("max_cost_usd") is not None:
        parts.append(f"{money(spent.get('cost_usd'))} of {money(limits['max_cost_usd'])}")
    if limits.get("max_tokens") is not None:
        parts.append(f"{spent.get('tokens', 0)} of {limits['max_tokens']} tokens")
    on = ", ".join(
        f"{e.get('step_id')}#{e.get('attempt')} {money(e.get('cost_usd'))}".strip()
        for e in budget.get("on") or []
        if isinstance(e, dict)
    )
    return (
        f"budget reached: {' and '.join(parts)} spent (on {on or 'nothing'}); "
        f"stopped before {budget.get('stopped_before', '?')}"
    )
