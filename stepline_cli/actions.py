"""Operator actions: approve, reject, review, retry, edit-retry, skip, force-advance, cancel.

STEP_ID may be left out: every step action applies to the execution's current step (the
first one neither completed nor skipped), which is then looked up and named.
"""

from __future__ import annotations

import json
from typing import Any

import click

from stepline_cli import render, sideeffects
from stepline_cli.session import Session, pass_session

COMMENT = click.option("-m", "--comment", help="A comment, kept in the audit trail.")


def current_step(session: Session, execution_id: str, step_id: str | None) -> tuple[str, dict[str, Any] | None]:
    """The step to act on: the one given, or the execution's current step."""
    if step_id:
        return step_id, None
    execution = session.client.execution(execution_id)
    for step in execution.get("steps") or []:
        if step.get("state") not in ("completed", "skipped"):
            return step["id"], execution
    raise click.ClickException(f"{execution_id} has no step left to act on (it is {execution.get('status')})")


def _done(session: Session, verb: str, execution: dict[str, Any], step_id: str | None = None) -> None:
    if session.as_json:
        session.emit(execution)
        return
    what = f"step {step_id} of {execution['execution_id']}" if step_id else execution["execution_id"]
    click.echo(f"{verb} {what}; the execution is now {execution.get('status')}", err=True)
    session.console.print(render.execution_view(execution, session.console.width))


def _step_action(
    action: str, verb: str, body: dict[str, Any], session: Session, execution_id: str, step_id: str | None
) -> None:
    step, _ = current_step(session, execution_id, step_id)
    _done(session, verb, session.client.act(execution_id, action, step, body), step)


@click.command()
@click.argument("execution_id")
@click.argument("step_id", required=False)
@COMMENT
@pass_session
def approve(session: Session, execution_id: str, step_id: str | None, comment: str | None) -> None:
    """Approve the step waiting at an approval gate."""
    _step_action("approve", "approved", {"comment": comment}, session, execution_id, step_id)


@click.command()
@click.argument("execution_id")
@click.argument("step_id", required=False)
@COMMENT
@pass_session
def reject(session: Session, execution_id: str, step_id: str | None, comment: str | None) -> None:
    """Reject the step waiting at an approval gate (the step fails)."""
    _step_action("reject", "rejected", {"comment": comment}, session, execution_id, step_id)


@click.command()
@click.argument("execution_id")
@click.argument("step_id", required=False)
@COMMENT
@click.option("--output", "output_json", metavar="JSON", help="Amended output of the step, as JSON.")
@pass_session
def review(
    session: Session, execution_id: str, step_id: str | None, comment: str | None, output_json: str | None
) -> None:
    """Pass a step at a review gate, optionally amending its output."""
    body: dict[str, Any] = {"comment": comment}
    if output_json is not None:
        try:
            body["output"] = json.loads(output_json)
        except ValueError as error:
            raise click.BadParameter(f"not valid JSON: {error}", param_hint="'--output'") from error
    _step_action("review", "reviewed", body, session, execution_id, step_id)


YES = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
SIDE_EFFECTS = click.option(
    "--side-effects",
    "mode",
    type=click.Choice(sideeffects.MODES),
    default="replay",
    show_default=True,
    help="Calls earlier attempts made: replay hands an identical call its recorded result (not made again); "
    "rerun makes every call again with new idempotency keys.",
)


def _confirm_side_effects(
    session: Session, execution_id: str, step: str, execution: dict[str, Any] | None, question: str, yes: bool
) -> None:
    """Say what the step already did elsewhere and ask before going on (nothing when it did nothing)."""
    execution = execution or session.client.execution(execution_id)
    sideeffects.confirm([sideeffects.step_of(execution, step)], question, yes)


@click.command()
@click.argument("execution_id")
@click.argument("step_id", required=False)
@SIDE_EFFECTS
@YES
@pass_session
def retry(session: Session, execution_id: str, step_id: str | None, mode: str, yes: bool) -> None:
    """Retry a failed step with its current instructions."""
    step, execution = current_step(session, execution_id, step_id)
    _confirm_side_effects(session, execution_id, step, execution, f"Retry {step} ({mode} these calls)?", yes)
    _done(session, "retrying", session.client.act(execution_id, "retry", step, {"side_effects": mode}), step)


@click.command("edit-retry")
@click.argument("execution_id")
@click.argument("step_id", required=False)
@click.option("--instructions", help="The new instructions (else your $EDITOR opens on the current ones).")
@click.option("--instructions-file", type=click.File("r"), help="Read the new instructions from a file ('-': stdin).")
@SIDE_EFFECTS
@YES
@pass_session
def edit_retry(
    session: Session,
    execution_id: str,
    step_id: str | None,
    instructions: str | None,
    instructions_file: Any,
    mode: str,
    yes: bool,
) -> None:
    """Edit a failed step's instructions and retry it."""
    step, execution = current_step(session, execution_id, step_id)
    _confirm_side_effects(session, execution_id, step, execution, f"Retry {step} edited ({mode} these calls)?", yes)
    if instructions_file is not None:
        instructions = instructions_file.read()
    if instructions is None:
        execution = execution or session.client.execution(execution_id)
        current = next((s.get("instructions") for s in execution.get("steps") or [] if s["id"] == step), None)
        edited = click.edit(current or "", extension=".jmespath")
        if edited is None or edited.strip() == (current or "").strip():
            raise click.ClickException("instructions unchanged; nothing retried")
        instructions = edited.strip()
    _done(
        session,
        "retrying (edited)",
        session.client.act(execution_id, "retry", step, {"instructions": instructions, "side_effects": mode}),
        step,
    )


@click.command()
@click.argument("execution_id")
@click.argument("step_id", required=False)
@click.option("--reason", help="Why, kept in the audit trail.")
@YES
@pass_session
def skip(session: Session, execution_id: str, step_id: str | None, reason: str | None, yes: bool) -> None:
    """Skip a failed step and go on with the next one."""
    step, execution = current_step(session, execution_id, step_id)
    _confirm_side_effects(session, execution_id, step, execution, f"Skip {step}? Its calls stay made.", yes)
    _done(session, "skipped", session.client.act(execution_id, "skip", step, {"reason": reason}), step)


@click.command("force-advance")
@click.argument("execution_id")
@click.argument("step_id", required=False)
@COMMENT
@YES
@pass_session
def force_advance(session: Session, execution_id: str, step_id: str | None, comment: str | None, yes: bool) -> None:
    """Mark a pending, running or gated step done and go on (admin)."""
    step, execution = current_step(session, execution_id, step_id)
    _confirm_side_effects(session, execution_id, step, execution, f"Force {step} forward? Its calls stay made.", yes)
    _done(
        session, "force-advanced", session.client.act(execution_id, "force-advance", step, {"comment": comment}), step
    )


@click.command()
@click.argument("execution_id")
@click.option("--reason", help="Why, kept in the audit trail.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_session
def cancel(session: Session, execution_id: str, reason: str | None, yes: bool) -> None:
    """Cancel an execution (completed steps are not undone, nor the calls steps made)."""
    if not yes:
        for line in [
            line
            for step in session.client.execution(execution_id).get("steps") or []
            for line in sideeffects.lines(step)
        ]:
            click.echo(line, err=True)
        click.confirm(f"Cancel {execution_id}?", abort=True, err=True)
    execution = session.client.act(execution_id, "cancel", None, {"reason": reason})
    _done(session, "cancelled", execution)
    undone = execution.get("completed_steps_not_undone") or []
    if undone and not session.as_json:
        click.echo("completed steps NOT undone: " + ", ".join(s.get("step_id", "?") for s in undone), err=True)
    made = execution.get("side_effects_not_undone") or []
    if made and not session.as_json:
        click.echo(f"calls made elsewhere NOT undone: {len(made)} (see the steps' side effects)", err=True)


COMMANDS = (approve, reject, review, retry, edit_retry, skip, force_advance, cancel)
