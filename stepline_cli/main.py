"""``stepline``: list, start, watch and act on workflow executions from a terminal.

Talks to the REST API at ``STEPLINE_URL`` with the key in ``STEPLINE_KEY`` (or ``--url``
and ``--key``). ``--json`` prints the API's answers as JSON, for scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from stepline_cli import actions, render
from stepline_cli.client import ApiError, Client
from stepline_cli.follow import follow as follow_execution
from stepline_cli.inputs import parse_assignments, parse_json_object, prompt_missing
from stepline_cli.session import Session, pass_session


def _server_word(kind: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A check of an option against one of the server's lists (``GET /vocabulary.json``), so a
    typo is a usage error naming the choices, and the choices are never a copy kept here."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        session = ctx.find_object(Session)
        if session is None:
            return value
        choices = session.client.vocabulary().get(kind) or []
        if value not in choices:
            raise click.BadParameter(f"{value!r} is not one of {', '.join(map(str, choices))}")
        return value

    return check


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--url",
    envvar="STEPLINE_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Base URL of the Stepline API (env STEPLINE_URL).",
)
@click.option("--key", envvar="STEPLINE_KEY", default=None, help="API key (env STEPLINE_KEY).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of tables.")
@click.option("--http-timeout", "timeout", default=30.0, show_default=True, help="Seconds to wait for each API call.")
@click.version_option(package_name="stepline", prog_name="stepline", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, url: str, key: str | None, as_json: bool, timeout: float) -> None:
    """Operate Stepline workflows: list, start, follow, approve, retry, cancel.

    Set STEPLINE_URL and STEPLINE_KEY, then try `stepline workflows`.
    """
    ctx.obj = Session(Client(url, key, timeout), Console(highlight=False, soft_wrap=False), as_json)


@cli.command()
@pass_session
def whoami(session: Session) -> None:
    """Show the name and role of the key in use."""
    me = session.client.whoami()
    session.emit(me, f"{me['name']} ({me['role']}) at {session.client.url}")


@cli.command()
@pass_session
def workflows(session: Session) -> None:
    """List workflows with their active (running + waiting) counts."""
    items = session.client.workflows()
    session.emit({"items": items}, render.workflows_table(items))


@cli.command()
@click.argument("workflow_id")
@click.option(
    "-i",
    "--input",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="An input value, read by its declared type (repeatable).",
)
@click.option("--inputs-json", metavar="JSON", help="All inputs as a JSON object, e.g. '{\"amount\": 12}'.")
@click.option("--prompt/--no-prompt", default=True, show_default=True, help="Ask for each declared input not given.")
@click.option("--idempotency-key", metavar="KEY", help="A repeat with the same key returns the same execution.")
@click.option("-f", "--follow", "then_follow", is_flag=True, help="Follow the new execution until it ends.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls when following.")
@pass_session
def start(
    session: Session,
    workflow_id: str,
    assignments: tuple[str, ...],
    inputs_json: str | None,
    prompt: bool,
    idempotency_key: str | None,
    then_follow: bool,
    interval: float,
) -> None:
    """Start WORKFLOW_ID, asking for any declared input not given."""
    workflow = session.client.workflow(workflow_id)
    trigger = workflow.get("trigger") or {}
    specs = list(trigger.get("inputs") or []) if trigger.get("type") == "manual" else []
    inputs = {**parse_json_object(inputs_json, "'--inputs-json'"), **parse_assignments(assignments, specs)}
    if prompt and specs:
        missing = [s for s in specs if s["name"] not in inputs]
        if missing:
            click.echo(f"Inputs of {workflow.get('name') or workflow_id}:", err=True)
        inputs = prompt_missing(specs, inputs)
    execution = session.client.start(workflow_id, inputs, idempotency_key)
    if then_follow:
        _follow(session, execution["execution_id"], interval, None, False)
        return
    session.emit(execution, render.execution_view(execution, session.console.width))


@cli.command()
@click.argument("workflow_id", required=False)
@click.option(
    "--status",
    callback=_server_word("execution_statuses"),
    help="Only executions in this status (running, waiting, ...: the server's list).",
)
@click.option(
    "--trigger",
    callback=_server_word("trigger_kinds"),
    help="Only executions started by this kind of trigger (manual, event, ...: the server's list).",
)
@click.option("--from", "start_from", metavar="ISO", help="Started at or after, e.g. 2026-11-01T00:00:00Z.")
@click.option("--to", "start_to", metavar="ISO", help="Started at or before.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Page size.")
@click.option("--next-token", metavar="TOKEN", help="Continue from a previous page.")
@click.option("--all", "all_pages", is_flag=True, help="Follow every page.")
@pass_session
def executions(
    session: Session,
    workflow_id: str | None,
    status: str | None,
    trigger: str | None,
    start_from: str | None,
    start_to: str | None,
    limit: int,
    next_token: str | None,
    all_pages: bool,
) -> None:
    """List executions, newest first: of WORKFLOW_ID, or of every workflow."""
    filters: dict[str, Any] = {
        "status": status,
        "trigger": trigger,
        "from": start_from,
        "to": start_to,
        "limit": limit,
        "next_token": next_token,
    }
    items: list[dict[str, Any]] = []
    while True:
        try:
            page = session.client.executions(workflow_id, filters)
        except ApiError as error:
            if workflow_id is None and error.status in (403, 404) and not error.code.endswith("Error"):
                raise click.ClickException("this server has no cross-workflow list; give a WORKFLOW_ID") from error
            raise
        items += page["items"]
        filters["next_token"] = page.get("next_token")
        if not all_pages or not filters["next_token"]:
            break
    names = {} if session.as_json else _workflow_names(session, items)
    title = f"Executions of {names.get(workflow_id) or workflow_id}" if workflow_id else "Executions"
    session.emit(
        {"items": items, "next_token": filters["next_token"]},
        render.executions_table(items, title, names, session.console.width),
    )
    if filters["next_token"] and not session.as_json:
        click.echo(f"more: --next-token {filters['next_token']}", err=True)


def _workflow_names(session: Session, items: list[dict[str, Any]]) -> dict[str, str]:
    """Workflow names by id for a list whose items carry only ids (one ``GET /workflows``)."""
    if not items or all(item.get("workflow_name") for item in items):
        return {}
    return {w["workflow_id"]: w.get("name", "") for w in session.client.workflows()}


@cli.command()
@click.argument("execution_id")
@click.option("--history", "with_history", is_flag=True, help="Also show the audit trail.")
@pass_session
def show(session: Session, execution_id: str, with_history: bool) -> None:
    """Show an execution and its step timeline."""
    execution = session.client.execution(execution_id)
    if session.as_json:
        if with_history:
            execution = {**execution, "history": list(session.client.history(execution_id))}
        session.emit(execution)
        return
    session.console.print(render.execution_view(execution, session.console.width))
    if with_history:
        session.console.print(render.history_table(session.client.history(execution_id), session.console.width))


@cli.command()
@click.argument("execution_id")
@pass_session
def history(session: Session, execution_id: str) -> None:
    """Show an execution's audit trail (who did what, when)."""
    items = list(session.client.history(execution_id))
    session.emit({"items": items}, render.history_table(items, session.console.width))


@cli.command()
@click.argument("execution_id")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
@click.option("--timeout", "give_up", type=float, default=None, help="Stop following after this many seconds.")
@click.option("--stop-on-wait", is_flag=True, help="Stop when the execution waits for a person.")
@pass_session
def follow(session: Session, execution_id: str, interval: float, give_up: float | None, stop_on_wait: bool) -> None:
    """Follow an execution live until it ends.

    Exit status: 0 completed, 1 failed or cancelled, 3 waiting for a person
    (with --stop-on-wait), 4 timed out.
    """
    _follow(session, execution_id, interval, give_up, stop_on_wait)


def _follow(session: Session, execution_id: str, interval: float, give_up: float | None, stop_on_wait: bool) -> None:
    execution, code = follow_execution(
        session.client, session.console, execution_id, interval=interval, timeout=give_up, stop_on_wait=stop_on_wait
    )
    if session.as_json:
        session.emit(execution)
    click.get_current_context().exit(code)


def main() -> None:
    cli(prog_name="stepline")


for _command in actions.COMMANDS:
    cli.add_command(_command)
