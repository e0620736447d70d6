"""Side effects in the CLI: what a step already did elsewhere, said before an action leaves it in
place (retry, skip, force-advance, cancel), and the table `stepline show` prints."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

#: The retry choices (``POST .../retry`` ``side_effects``); the server validates them too.
MODES = ("replay", "rerun")
_STATUS = {"unknown": "UNKNOWN outcome", "replayed": "replayed (not made again)"}


def made(step: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries that did something (replayed ones did not)."""
    return [e for e in step.get("side_effects") or [] if isinstance(e, dict) and e.get("status") != "replayed"]


def lines(step: dict[str, Any]) -> list[str]:
    """``step reply already sent 1 email and made 2 POST calls:`` and one line per call; empty when none."""
    entries = made(step)
    if not entries or not step.get("side_effects_summary"):
        return []
    head = f"step {step.get('id')} already {step['side_effects_summary']}:"
    return [head] + [
        f"  - {e.get('target')}{' (' + e['name'] + ')' if e.get('name') else ''}: "
        f"{_STATUS.get(str(e.get('status')), e.get('status'))}, attempt {e.get('attempt')}, "
        f"key {e.get('idempotency_key')}"
        for e in entries
    ]


def confirm(steps: list[dict[str, Any]], question: str, yes: bool) -> None:
    """List the steps' side effects on stderr and ask ``question`` (aborts on no); silent when there are none."""
    shown = [line for step in steps for line in lines(step)]
    if not shown:
        return
    click.echo("\n".join(shown), err=True)
    if not yes:
        click.confirm(question, abort=True, err=True)


def step_of(execution: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next((s for s in execution.get("steps") or [] if s.get("id") == step_id), {})


def table(execution: dict[str, Any]) -> Table | None:
    """Every step's side effects (None when no step made any)."""
    rows = [(s, e) for s in execution.get("steps") or [] for e in s.get("side_effects") or [] if isinstance(e, dict)]
    if not rows:
        return None
    out = Table(title="Side effects", title_justify="left")
    for column in ("Step", "Try", "Call", "Status", "Idempotency key"):
        out.add_column(column, overflow="fold")
    for step, e in rows:
        status = _STATUS.get(str(e.get("status")), str(e.get("status")))
        if e.get("http_status"):
            status += f" (HTTP {e['http_status']})"
        out.add_row(
            str(step.get("id")), str(e.get("attempt")), str(e.get("target")), status, str(e.get("idempotency_key"))
        )
    return out
