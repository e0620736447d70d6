"""What an operator reads besides the timeline: step outputs, and what they may do next.

The commands offered come from the server's ``actions`` (on the execution and on each
step of ``GET /executions/{id}``), computed for the caller's key by the same rules the
action routes enforce; the CLI maps each to its command and decides nothing itself.
"""

from __future__ import annotations

import json
from textwrap import indent
from typing import Any

from rich.console import Group
from rich.text import Text

#: Server action -> the command that takes it (``{ex}``/``{step}`` filled in).
COMMANDS = {
    "approve": "stepline approve {ex} {step}",
    "reject": "stepline reject {ex} {step} -m '<reason>'",
    "review": "stepline review {ex} {step} [--output JSON]",
    "retry": "stepline retry {ex} {step}",
    "edit_and_retry": "stepline edit-retry {ex} {step}",
    "skip": "stepline skip {ex} {step} --reason '<why>'",
    "force_advance": "stepline force-advance {ex} {step}",
    "cancel": "stepline cancel {ex}",
}
#: A step error's recommended ``action`` (``error.action``) in words.
RECOMMENDED = {
    "retry": "retry it",
    "edit_and_retry": "edit its instructions and retry",
    "update_connection": "update the connection, then retry",
    "skip_or_cancel": "skip the step or cancel the execution",
}
#: Outputs longer than this are shortened here; ``stepline --json show`` has them whole.
MAX_OUTPUT_CHARS = 1500


def pretty(value: Any, limit: int = MAX_OUTPUT_CHARS) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… {len(text) - limit} more characters (stepline --json show has all of it)"


def outputs(ex: dict[str, Any]) -> Group | None:
    """Each step's output, the one awaiting a decision first and marked; None when none yet."""
    parts: list[Text] = []
    for step in ex.get("steps") or []:
        if step.get("output") is None:
            continue
        waiting = step.get("state") == "waiting_for_approval"
        title = Text()
        title.append(f"Output of {_label(step)}", style="bold yellow" if waiting else "bold")
        if waiting:
            title.append(" (awaiting a decision)", style="bold yellow")
        body = Text(indent(pretty(step["output"]), "  "), overflow="fold")
        block = Text.assemble(title, "\n", body)
        parts.insert(0, block) if waiting else parts.append(block)
    return Group(*parts) if parts else None


def next_steps(ex: dict[str, Any]) -> Text | None:
    """The commands the caller may run now, from the server's ``actions``; None when none."""
    ex_id = ex["execution_id"]
    lines: list[str] = []
    for step in ex.get("steps") or []:
        for action in step.get("actions") or []:
            template = COMMANDS.get(action)
            if template:
                lines.append(template.format(ex=ex_id, step=step["id"]))
    for action in ex.get("actions") or []:
        if action in COMMANDS:
            lines.append(COMMANDS[action].format(ex=ex_id, step="").rstrip())
    if not lines:
        return None
    text = Text("You can now run:", style="bold")
    for line in lines:
        text.append("\n  " + line)
    return text


def gate_hint(ex: dict[str, Any], step: dict[str, Any]) -> Text:
    """One line for ``follow`` when ``step`` starts waiting: who decides and the command to run."""
    text = Text(f"{_label(step)} waits for {step.get('gate') or 'a decision'}", style="bold yellow")
    if step.get("gate_timeout_at"):
        text.append(f" (decided by the system at {step['gate_timeout_at']})")
    if "actions" in step:
        allowed = [a for a in step["actions"] if a in ("approve", "reject", "review", "force_advance")]
    else:
        # a server from before ``actions``: name the gate's own commands, the server still decides
        allowed = ["review", "approve", "reject"] if step.get("gate") == "review" else ["approve", "reject"]
    commands = [COMMANDS[a].format(ex=ex["execution_id"], step=step["id"]) for a in allowed]
    if step.get("gate") == "budget":
        from stepline_cli.agentnotes import budget_line

        text.append(f" ({budget_line(step.get('budget') or {})})")
        commands = [c + " --max-cost-usd <new limit>" if c.startswith("stepline approve") else c for c in commands]
    if commands:
        text.append(". Run: " + "  or  ".join(commands))
    else:
        text.append(". Your key may not decide it: ask one of its approvers")
    return text


def error_line(error: Any) -> str:
    """A step error with its recommended action, e.g. ``transform: bad path (recommended: retry it)``."""
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('kind', 'error')}: {error.get('message', '')}".strip()
    action = error.get("action")
    if action:
        text += f" (recommended: {RECOMMENDED.get(action, action)})"
    return text


def _label(step: dict[str, Any]) -> str:
    return step["id"] if step.get("name") in (None, step["id"]) else f"{step['id']} ({step['name']})"
