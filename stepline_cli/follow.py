"""``stepline follow``: poll an execution and show its timeline live until it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from textwrap import indent
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from stepline_cli.client import Client
from stepline_cli.guide import error_line, gate_hint, outputs, pretty
from stepline_cli.render import header, state, timeline_table

DONE_STATES = ("completed", "skipped")

#: Exit statuses of ``follow`` (and ``start --follow``).
EXIT_COMPLETED, EXIT_FAILED, EXIT_WAITING, EXIT_TIMEOUT = 0, 1, 3, 4


def follow(
    client: Client,
    console: Console,
    execution_id: str,
    *,
    interval: float = 1.0,
    timeout: float | None = None,
    stop_on_wait: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any], int]:
    """Poll until the execution ends (or waits for a person, with ``stop_on_wait``).

    Each step change is printed as a line (so logs of a non-interactive run tell the
    story); on a terminal a progress bar and the live timeline sit below those lines.
    Returns the last view and the exit status.
    """
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task("starting", total=None)
    seen: dict[str, tuple[str, int]] = {}
    started = time.monotonic()
    execution: dict[str, Any] = {}
    active = set(client.vocabulary().get("active_statuses") or ())
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while True:
            execution = client.execution(execution_id)
            _print_changes(live.console, execution, seen)
            steps = execution.get("steps") or []
            status = execution.get("status", "")
            progress.update(
                task,
                total=len(steps),
                completed=sum(s.get("state") in DONE_STATES for s in steps),
                description=_describe(execution),
            )
            shown = [header(execution), timeline_table(execution, console.width)]
            waiting_output = outputs({"steps": [s for s in steps if s.get("state") == "waiting_for_approval"]})
            if waiting_output is not None:
                shown.append(waiting_output)
            live.update(Group(*shown, progress))
            if status not in active:  # over, or failed and waiting for an operator
                progress.stop_task(task)
                return execution, EXIT_COMPLETED if status == "completed" else EXIT_FAILED
            if status == "waiting" and stop_on_wait:
                return execution, EXIT_WAITING
            if timeout is not None and time.monotonic() - started >= timeout:
                live.console.print(Text(f"still {status} after {timeout:g}s; stopped following", style="yellow"))
                return execution, EXIT_TIMEOUT
            sleep(interval)


def _print_changes(console: Console, execution: dict[str, Any], seen: dict[str, tuple[str, int]]) -> None:
    for step in execution.get("steps") or []:
        now = (step.get("state", ""), int(step.get("attempt") or 0))
        before = seen.get(step["id"])
        if before == now or (before is None and now[0] == "pending"):
            seen[step["id"]] = now
            continue
        seen[step["id"]] = now
        line = Text(f"{step['id']}: ")
        if before is not None:
            line.append_text(state(before[0]))
            line.append(" → ")
        line.append_text(state(now[0]))
        if now[1] > 1:
            line.append(f" (try {now[1]})")
        console.print(line)
        if now[0] in ("completed", "waiting_for_approval") and step.get("output") is not None:
            body = Text(indent(pretty(step["output"]), "    "), overflow="fold")
            console.print(Text("  output:", style="dim"))
            console.print(body)
        if now[0] == "waiting_for_approval":
            console.print(gate_hint(execution, step))
        if now[0] == "failed" and step.get("error"):
            console.print(Text("  " + error_line(step["error"]), style="red"))


def _describe(execution: dict[str, Any]) -> str:
    steps = execution.get("steps") or []
    waiting = [s["id"] for s in steps if s.get("state") == "waiting_for_approval"]
    running = [s["id"] for s in steps if s.get("state") == "running"]
    status = execution.get("status", "")
    if waiting:
        return f"{status}: {', '.join(waiting)} needs a decision"
    if running:
        return f"{status}: {', '.join(running)}"
    return status
