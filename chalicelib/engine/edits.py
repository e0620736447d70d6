"""Checks on what an operator hands in with an action, before the state machine sees it.

Edited instructions go through the step agent's own validation (a ``transform`` step's
JMESPath must compile), so a typo is a 400 naming ``instructions`` now rather than a
failed attempt later. A reviewer's amended output must fit in an event item.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.agents import get_agent
from chalicelib.domain.limits import MAX_INSTRUCTIONS
from chalicelib.domain.machine import ExecutionState
from chalicelib.domain.side_effects import DEFAULT_MODE, RetryMode
from chalicelib.errors import FieldError, ValidationError

__all__ = ["MAX_AMENDED_OUTPUT", "MAX_COMMENT", "MAX_INSTRUCTIONS", "check_amended_output", "check_instructions"]

#: Comments and reasons handed in with an action (REST or MCP) are stored in the history event.
MAX_COMMENT = 4000
#: An amended output is stored inline in the review event (DynamoDB items stop at 400 KB).
MAX_AMENDED_OUTPUT = 300_000


def check_instructions(state: ExecutionState, step_id: str, instructions: Any) -> str:
    """The edited instructions, or a ``ValidationError`` naming the ``instructions`` field."""
    if not isinstance(instructions, str):
        raise ValidationError(FieldError("instructions", "must be a string"))
    if len(instructions) > MAX_INSTRUCTIONS:
        raise ValidationError(FieldError("instructions", f"must be at most {MAX_INSTRUCTIONS} characters"))
    sdef = state.step_def(step_id)
    edited = {**sdef.to_dict(), "instructions": instructions}
    problems = get_agent(sdef.agent).validate(edited, "step")
    if problems:
        raise ValidationError([FieldError("instructions", p.message) for p in problems])
    return instructions


def check_amended_output(output: Any) -> Any:
    size = len(json.dumps(output, default=str))
    if size > MAX_AMENDED_OUTPUT:
        raise ValidationError(FieldError("output", f"is {size} bytes; at most {MAX_AMENDED_OUTPUT} are accepted"))
    return output


def check_text(name: str, value: Any) -> str | None:
    """A comment or reason: absent, or a string of at most ``MAX_COMMENT`` characters."""
    if value is not None and (not isinstance(value, str) or len(value) > MAX_COMMENT):
        raise ValidationError(FieldError(name, f"must be a string of at most {MAX_COMMENT} characters"))
    return value


def check_reject_reason(value: Any) -> str:
    """A reject's ``comment``: required, because the operator who retries the step needs it."""
    reason = check_text("comment", value)
    if reason is None or not reason.strip():
        raise ValidationError(
            FieldError(
                "comment", "a reject needs a reason: say what is wrong, so the operator who retries the step knows"
            )
        )
    return reason


def check_side_effects_mode(value: Any) -> RetryMode:
    """A retry's ``side_effects``: ``replay`` (the default, also when absent or null) or ``rerun``."""
    if value is None:
        return DEFAULT_MODE
    if not isinstance(value, str) or value not in {m.value for m in RetryMode}:
        choices = " or ".join(f'"{m.value}"' for m in RetryMode)
        raise ValidationError(
            FieldError(
                "side_effects",
                f"must be {choices}: replay hands identical calls their recorded results, rerun calls again",
            )
        )
    return RetryMode(value)
