"""How the CLI shows things: rich tables with one colour per state."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from stepline_cli.agentnotes import agent_notes
from stepline_cli.guide import error_line, next_steps, outputs
from stepline_cli.sideeffects import table as side_effects_table

#: One colour per execution status and step state, the same everywhere.
STATE_STYLES = {
    "completed": "green",
    "running": "cyan",
    "waiting": "yellow",
    "waiting_for_approval": "bold yellow",
    "failed": "bold red",
    "cancelled": "red",
    "skipped": "magenta",
    "pending": "dim",
}
#: Below this many columns lists and timelines are stacked (one block per row), never cut.
NARROW = 110


def state(value: str | None) -> Text:
    value = value or "-"
    return Text(value, style=STATE_STYLES.get(value, ""))


def when(value: str | None) -> str:
    """``2026-11-25T12:00:00.000Z`` -> ``2026-11-25 12:00:00``."""
    if not value:
        return "-"
    return value.replace("T", " ").split(".")[0].rstrip("Z")


def duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    try:
        seconds = (_parse(end) - _parse(start)).total_seconds()
    except ValueError:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def workflows_table(items: Iterable[dict[str, Any]]) -> Table:
    table = Table(title="Workflows", title_justify="left")
    for column in ("Workflow", "Name", "Trigger", "Enabled", "Version"):
        table.add_column(column, overflow="fold")
    table.add_column("Active", justify="right")
    for wf in items:
        active = wf.get("active_executions", 0)
        table.add_row(
            wf["workflow_id"],
            wf.get("name", ""),
            (wf.get("trigger") or {}).get("type", "-"),
            "yes" if wf.get("enabled") else Text("no", style="dim"),
            str(wf.get("version", "")),
            Text(str(active), style="bold cyan" if active else "dim"),
        )
    return table


def workflow_label(ex: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """``Order intake (wf_123)``: the name beside the id, when known."""
    workflow_id = ex.get("workflow_id", "")
    name = ex.get("workflow_name") or (names or {}).get(workflow_id)
    return f"{name} ({workflow_id})" if name else workflow_id


def executions_table(
    items: Iterable[dict[str, Any]], title: str = "Executions", names: dict[str, str] | None = None, width: int = 200
) -> RenderableType:
    """A table on a wide terminal; on a narrow one, a block of two lines per execution."""
    items = list(items)
    if width < NARROW:
        text = Text(title, style="italic")
        for ex in items:
            text.append("\n")
            text.append(ex["execution_id"], style="bold")
            text.append("  ")
            text.append_text(state(ex.get("status")))
            text.append(
                f"  {(ex.get('trigger') or {}).get('type', '-')}\n  {workflow_label(ex, names)}"
                f"\n  started {when(ex.get('started_at'))}  ended {when(ex.get('ended_at'))}"
                f"  took {duration(ex.get('started_at'), ex.get('ended_at'))}"
            )
        return text
    table = Table(title=title, title_justify="left")
    for column in ("Execution", "Workflow", "Status", "Trigger", "Started", "Ended", "Took"):
        table.add_column(column, overflow="fold")
    for ex in items:
        trigger = ex.get("trigger") or {}
        table.add_row(
            ex["execution_id"],
            workflow_label(ex, names),
            state(ex.get("status")),
            trigger.get("type", "-"),
            when(ex.get("started_at")),
            when(ex.get("ended_at")),
            duration(ex.get("started_at"), ex.get("ended_at")),
        )
    return table


def header(ex: dict[str, Any]) -> Text:
    """Two lines naming the execution, its workflow and status."""
    text = Text()
    text.append(ex["execution_id"], style="bold")
    text.append("  ")
    text.append_text(state(ex.get("status")))
    text.append(
        f"\n{ex.get('workflow_name') or ''} ({ex.get('workflow_id')} v{ex.get('workflow_version')})"
        f"  trigger: {(ex.get('trigger') or {}).get('type', '-')}"
        f"  started: {when(ex.get('started_at'))}  ended: {when(ex.get('ended_at'))}"
    )
    if ex.get("input") not in (None, {}):
        text.append(f"\ninput: {short(ex.get('input'), 200)}")
    return text


def timeline_table(ex: dict[str, Any], width: int = 200) -> RenderableType:
    """The steps of an execution in order, with colour-coded states (stacked when narrow)."""
    if width < NARROW:
        return _timeline_stacked(ex)
    table = Table(title="Timeline", title_justify="left")
    table.add_column("#", justify="right")
    for column in ("Step", "Agent", "State", "Try", "Started", "Completed", "Took", "Notes"):
        table.add_column(column, justify="right" if column == "Try" else "left", overflow="fold")
    for index, step in enumerate(ex.get("steps") or [], start=1):
        label = step["id"] if step.get("name") in (None, step["id"]) else f"{step['id']} ({step['name']})"
        table.add_row(
            str(index),
            label,
            step.get("agent", ""),
            state(step.get("state")),
            str(step.get("attempt", "")),
            when(step.get("started_at")),
            when(step.get("completed_at")),
            duration(step.get("started_at"), step.get("completed_at")),
            notes(step),
        )
    return table


def _timeline_stacked(ex: dict[str, Any]) -> Text:
    text = Text("Timeline", style="italic")
    for index, step in enumerate(ex.get("steps") or [], start=1):
        label = step["id"] if step.get("name") in (None, step["id"]) else f"{step['id']} ({step['name']})"
        text.append(f"\n{index}. ")
        text.append(label, style="bold")
        text.append(f"  {step.get('agent', '')}  ")
        text.append_text(state(step.get("state")))
        text.append(f"  try {step.get('attempt', '')}")
        if step.get("started_at"):
            text.append(
                f"\n   {when(step.get('started_at'))} → {when(step.get('completed_at'))}"
                f"  ({duration(step.get('started_at'), step.get('completed_at'))})"
            )
        note = notes(step)
        if note:
            text.append(f"\n   {note}")
    return text


def notes(step: dict[str, Any]) -> str:
    """The one line an operator needs: why it failed, who decided, what it waits for."""
    parts = []
    if step.get("error"):
        parts.append(error_line(step["error"]))
    if step.get("state") == "waiting_for_approval":
        parts.append(f"needs {step.get('gate') or 'approval'}")
    decision = step.get("decision")
    if isinstance(decision, dict):
        parts.append(f"{decision.get('decision', 'decided')} by {decision.get('by', '?')}")
    if step.get("retry_at"):
        parts.append(f"retry at {when(step['retry_at'])}")
    if step.get("skip_reason"):
        parts.append(f"skipped: {short(step['skip_reason'], 60)}")
    for comment in step.get("comments") or []:
        if isinstance(comment, dict) and comment.get("text"):
            parts.append(f"“{short(comment['text'], 40)}” ({comment.get('by', '?')})")
    # the recommended action is already in error_line's words: say it once
    parts += [note for note in agent_notes(step) if not note.startswith("recommended:")]
    return "; ".join(parts)


def history_table(items: Iterable[dict[str, Any]], width: int = 200) -> RenderableType:
    """The audit trail: the server's sentence for each event (stacked when narrow)."""
    items = list(items)
    if width < NARROW:
        text = Text("History", style="italic")
        for event in items:
            where = f"  {event['step_id']}#{event.get('attempt') or ''}" if event.get("step_id") else ""
            text.append(f"\n{when(event.get('at'))}  ")
            text.append(event.get("type", ""), style="bold")
            text.append(f"{where}  {event.get('actor') or ''}\n   {_event_text(event)}")
        return text
    table = Table(title="History", title_justify="left")
    for column in ("At", "Event", "Step", "Try", "Actor", "Details"):
        table.add_column(column, overflow="fold")
    for event in items:
        table.add_row(
            when(event.get("at")),
            event.get("type", ""),
            event.get("step_id") or "",
            str(event.get("attempt") or ""),
            event.get("actor") or "",
            _event_text(event),
        )
    return table


def _event_text(event: dict[str, Any]) -> str:
    details = event.get("details") or {}
    return event.get("message") or (json.dumps(details, default=str, ensure_ascii=False) if details else "")


def execution_view(ex: dict[str, Any], width: int = 200) -> Group:
    """Header, timeline, the step outputs (the one awaiting a decision first), and what to run next."""
    parts: list[RenderableType] = [header(ex), timeline_table(ex, width)]
    for extra in (side_effects_table(ex), outputs(ex), next_steps(ex)):
        if extra is not None:
            parts += [Text(""), extra]
    return Group(*parts)
