"""What `stepline show` adds for AI agent steps: model usage and the tool calls made."""

from __future__ import annotations

from typing import Any


def agent_notes(step: dict[str, Any]) -> list[str]:
    """Short notes on an llm step's usage and tool calls (empty for other steps)."""
    notes: list[str] = []
    usage = step.get("usage")
    if isinstance(usage, dict):
        notes.append(
            f"{usage.get('model', 'model')}: {usage.get('input_tokens', 0)} in / "
            f"{usage.get('output_tokens', 0)} out tokens"
        )
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
