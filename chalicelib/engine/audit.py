"""One sentence per history event, so the audit trail reads as who did what, when and why.

The structured fields (``type``, ``actor``, ``details``) stay the source of truth; the
sentence is for people reading ``GET /executions/{id}/history`` or the UI's timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.domain.machine import Event
from chalicelib.domain.vocabulary import EventType


def _by(e: Event) -> str:
    return e.actor or "the system"


def _because(text: Any) -> str:
    return f": {text}" if text else ""


def _step(e: Event) -> str:
    return f"step {e.step_id} (attempt {e.attempt})"


def _error(d: Mapping[str, Any]) -> str:
    error = d.get("error") or {}
    return f"{error.get('kind', 'error')} error: {error.get('message', 'no message')}"


def _failed(e: Event) -> str:
    if e.details.get("gate_timeout"):
        return (
            f"{_step(e)} failed at its gate, decided by {_by(e)}: {e.details.get('comment')}; "
            "the execution waits for an operator"
        )
    verb = "ran past its time limit" if e.type == EventType.STEP_TIMED_OUT else "failed"
    text = f"{_step(e)} {verb} ({_error(e.details)})"
    if e.details.get("retry_at"):
        return f"{text}; automatic retry as attempt {e.details.get('next_attempt')} at {e.details['retry_at']}"
    return text + "; the execution waits for an operator"


def _side_effect_choice(d: Mapping[str, Any]) -> str:
    """How the retry treats the calls earlier attempts made (the operator's choice, kept in history)."""
    mode = d.get("side_effects")
    if not mode:
        return ""
    before = d.get("side_effects_before")
    done = f" (earlier attempts {before})" if before else ""
    if mode == "rerun":
        return f"; side effects rerun: calls are made again with new idempotency keys{done}"
    return f"; side effects replayed: identical successful calls are not made again{done}"


_SENTENCES: dict[str, Callable[[Event], str]] = {
    EventType.EXECUTION_STARTED: lambda e: f"execution started by {_by(e)}",
    EventType.STEP_STARTED: lambda e: f"{_step(e)} started; deadline {e.details.get('deadline')}",
    EventType.STEP_COMPLETED: lambda e: f"{_step(e)} completed",
    EventType.STEP_FAILED: _failed,
    EventType.STEP_TIMED_OUT: _failed,
    EventType.STEP_HEARTBEAT: lambda e: f"{_step(e)} still running; lease extended to {e.details.get('lease_until')}",
    EventType.STEP_REQUEUED: lambda e: f"{_step(e)} message re-sent by the sweep ({e.details.get('reason')})",
    EventType.APPROVAL_REQUESTED: lambda e: (
        f"{_step(e)} waits for {e.details.get('gate', 'approval')} by "
        f"{', '.join(e.details.get('approvers') or []) or 'any operator'}"
    ),
    EventType.APPROVAL_GRANTED: lambda e: f"{_step(e)} approved by {_by(e)}{_because(e.details.get('comment'))}",
    EventType.APPROVAL_REJECTED: lambda e: f"{_step(e)} rejected by {_by(e)}{_because(e.details.get('comment'))}",
    EventType.REVIEW_SUBMITTED: lambda e: (
        f"{_step(e)} reviewed by {_by(e)}"
        f"{' with an amended output' if 'amended_output' in e.details else ''}"
        f"{_because(e.details.get('comment'))}"
    ),
    EventType.INSTRUCTIONS_EDITED: lambda e: (
        f"instructions of step {e.step_id} edited by {_by(e)} for attempt {e.attempt}: "
        f"{e.details.get('old_instructions')!r} -> {e.details.get('new_instructions')!r}"
    ),
    EventType.STEP_RETRIED: lambda e: f"{_step(e)} retried by {_by(e)}{_side_effect_choice(e.details)}",
    EventType.SIDE_EFFECT_STARTED: lambda e: (
        f"{_step(e)} is making {(e.details.get('entry') or {}).get('target')} "
        f"(idempotency key {(e.details.get('entry') or {}).get('idempotency_key')})"
    ),
    EventType.STEP_SKIPPED: lambda e: f"step {e.step_id} skipped by {_by(e)}{_because(e.details.get('comment'))}",
    EventType.STEP_FORCE_ADVANCED: lambda e: (
        f"step {e.step_id} force-advanced by {_by(e)} from "
        f"{e.details.get('previous_state')}"
        f"{' (implicit approval)' if e.details.get('implicit_approval') else ''}"
        f"{_because(e.details.get('comment'))}"
    ),
    EventType.EXECUTION_CANCELLED: lambda e: (
        f"execution cancelled by {_by(e)}{_because(e.details.get('reason'))}; "
        f"not undone: {', '.join(s['step_id'] for s in e.details.get('not_undone', [])) or 'nothing'}"
        + "".join(
            f"; step {s.get('step_id')} {s.get('summary')}" for s in e.details.get("side_effects_not_undone") or []
        )
    ),
    EventType.EXECUTION_COMPLETED: lambda e: "execution completed",
    EventType.LATE_RESULT_DISCARDED: lambda e: (
        f"late {e.details.get('outcome', 'result')} of {_step(e)} discarded "
        f"({e.details.get('reason', 'the step had moved on')})"
    ),
}


def describe(event: Event) -> str:
    """A one-line English sentence for ``event`` (unknown types get a neutral one)."""
    sentence = _SENTENCES.get(event.type)
    if sentence is None:
        return f"{event.type}{' on step ' + event.step_id if event.step_id else ''}"
    return sentence(event)
