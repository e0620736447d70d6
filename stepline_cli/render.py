"""How the CLI shows things: rich tables with one colour per state."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text

from stepline_cli.agentnotes import agent_notes

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
FINAL_STATUSES = ("completed", "failed", "cancelled")


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
        table.add_column(column, no_wrap=column == "Workflow")
    table.add_column("Active", justify="right")
    for wf in items:
        active = wf.get("active_executions", 0)
        table.add_row(wf["workflow_id"], wf.get("name", ""), (wf.get("trigger") or {}).get("type", "-"),
                      "yes" if wf.get("enabled") else Text("no", style="dim"), str(wf.get("version", "")),
                      Text(str(active), style="bold cyan" if active else "dim"))
    return table


def executions_table(items: Iterable[dict[str, Any]], title: str = "Executions") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("Execution", "Workflow", "Status", "Trigger", "Started", "Ended", "Took"):
        table.add_column(column, no_wrap=column in ("Execution", "Workflow"))
    for ex in items:
        trigger = ex.get("trigger") or {}
        table.add_row(ex["execution_id"], ex.get("workflow_id", ""), state(ex.get("status")),
                      trigger.get("type", "-"), when(ex.get("started_at")), when(ex.get("ended_at")),
                      duration(ex.get("started_at"), ex.get("ended_at")))
    return table


def header(ex: dict[str, Any]) -> Text:
    """Two lines naming the execution, its workflow and status."""
    text = Text()
    text.append(ex["execution_id"], style="bold")
    text.append("  ")
    text.append_text(state(ex.get("status")))
    text.append(f"\n{ex.get('workflow_name') or ''} ({ex.get('workflow_id')} v{ex.get('workflow_version')})"
                f"  trigger: {(ex.get('trigger') or {}).get('type', '-')}"
                f"  started: {when(ex.get('started_at'))}  ended: {when(ex.get('ended_at'))}")
    if ex.get("input") not in (None, {}):
        text.append(f"\ninput: {short(ex.get('input'), 200)}")
    return text


def timeline_table(ex: dict[str, Any]) -> Table:
    """The steps of an execution in order, with colour-coded states."""
    table = Table(title="Timeline", title_justify="left")
    table.add_column("#", justify="right")
    for column in ("Step", "Agent", "State", "Try", "Started", "Completed", "Took", "Notes"):
        table.add_column(column, justify="right" if column == "Try" else "left", no_wrap=column == "Step")
    for index, step in enumerate(ex.get("steps") or [], start=1):
        label = step["id"] if step.get("name") in (None, step["id"]) else f"{step['id']} ({step['name']})"
        table.add_row(str(index), label, step.get("agent", ""), state(step.get("state")), str(step.get("attempt", "")),
                      when(step.get("started_at")), when(step.get("completed_at")),
                      duration(step.get("started_at"), step.get("completed_at")), notes(step))
    return table


def notes(step: dict[str, Any]) -> str:
    """The one line an operator needs: why it failed, who decided, what it waits for."""
    parts = []
    if step.get("error"):
        error = step["error"]
        parts.append(short(error.get("message") if isinstance(error, dict) and error.get("message") else error, 80))
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
    parts += agent_notes(step)
    return "; ".join(parts)


def history_table(items: Iterable[dict[str, Any]]) -> Table:
    table = Table(title="History", title_justify="left")
    for column in ("At", "Event", "Step", "Try", "Actor", "Details"):
        table.add_column(column)
    for event in items:
        details = event.get("details") or {}
        table.add_row(when(event.get("at")), event.get("type", ""), event.get("step_id") or "",
                      str(event.get("attempt") or ""), event.get("actor") or "",
                      short(details, 80) if details else "")
    return table


def execution_view(ex: dict[str, Any]) -> Group:
    return Group(header(ex), timeline_table(ex))
