"""One attempt's side-effect ledger, as agents use it.

Before a call that changes something elsewhere an agent asks ``replay(fingerprint)``: in
``replay`` mode an earlier attempt's successful call with the same fingerprint comes back
(and is entered as ``replayed``) and the agent does not call again. Otherwise it calls
``begin(...)`` (which the engine commits to the history before the call is made, so a worker
that dies mid-call leaves an ``unknown`` entry) and ``finish(...)`` once it knows the outcome.
``entries`` go into the attempt's result.

An agent whose one call is known before it runs (``http``, ``email``) says so with
``plan(ctx)``; the engine then asks ``open(call)`` for the entry and commits it together with
the step's claim, and ``begin`` of that same call takes the committed entry instead of
committing another (``opened``). A planned entry the agent never began was not made
(``unmade``: recorded as ``failed``).

Without an engine (agents run directly, as in unit tests) the ledger only keeps the entries
in memory. The rules live in ``chalicelib.domain.side_effects``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from chalicelib.agents.base import AgentError
from chalicelib.domain.actions import SKIP_OR_CANCEL
from chalicelib.domain.side_effects import (
    DEFAULT_MODE,
    RetryMode,
    SideEffectStatus,
    replay_sources,
    unresolved,
)
from chalicelib.domain.timefmt import iso

__all__ = ["PlannedCall", "SideEffectLedger", "failure_status"]

#: Network failures after which the request certainly did not reach the other system.
NEVER_SENT = ("connection refused", "host could not be resolved", "TLS certificate rejected", "address not allowed")


class PlannedCall(NamedTuple):
    """The one call an agent will make, known before it runs (what ``begin`` will be given)."""

    kind: str
    target: str
    key: str
    fingerprint: str
    name: str | None = None


class SideEffectLedger:
    """The side effects of one attempt of one step."""

    def __init__(
        self,
        execution_id: str,
        step_id: str,
        attempt: int,
        previous: Sequence[Mapping[str, Any]] = (),
        mode: RetryMode | str = DEFAULT_MODE,
        note: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        opened: Mapping[str, Any] | None = None,
    ) -> None:
        self.execution_id, self.step_id, self.attempt = execution_id, step_id, attempt
        self.mode = RetryMode(mode)
        replaying = self.mode == RetryMode.REPLAY
        self._sources = replay_sources(previous, attempt) if replaying else []
        self._unknown = unresolved(previous, attempt) if replaying else []
        self._note = note
        self._clock = clock
        self.entries: list[dict[str, Any]] = []
        #: an entry already committed (with the claim) for the first call; ``begin`` takes it
        self._opened = dict(opened) if opened else None

    def key(self, label: str | int) -> str:
        """An idempotency key of this attempt: a new attempt's keys are new, a redelivery's the same."""
        return f"{self.execution_id}:{self.step_id}:{self.attempt}:{label}"

    def replay(self, fingerprint: str, *, kind: str, target: str, name: str | None = None) -> dict[str, Any] | None:
        """The recorded entry (with its ``result``) an identical earlier successful call left, or None: call.

        Raises a non-retryable ``AgentError`` when the same call's earlier outcome is unknown:
        replaying cannot hand back a result nobody saw, and calling again may do it twice.
        """
        for source in self._sources:
            if source.get("fingerprint") == fingerprint:
                self._sources.remove(source)
                entry = self._entry(kind, target, str(source.get("idempotency_key")), fingerprint, name)
                entry.update(
                    status=SideEffectStatus.REPLAYED.value,
                    replayed_from={"attempt": source.get("attempt"), "n": source.get("n")},
                )
                for fact in ("http_status", "message_id"):
                    if fact in source:
                        entry[fact] = source[fact]
                self.entries.append(entry)
                return source
        for earlier in self._unknown:
            if earlier.get("fingerprint") == fingerprint:
                raise AgentError(
                    f"{target} of attempt {earlier.get('attempt')} has an unknown outcome (the worker stopped "
                    "mid-call), so a replay will not repeat it: check the other system, then retry with "
                    'side_effects "rerun" to call again, or skip the step',
                    retryable=False,
                    action=SKIP_OR_CANCEL,
                    details={"unknown_side_effect": {k: earlier.get(k) for k in ("attempt", "n", "target")}},
                )
        return None

    def open(self, call: PlannedCall) -> dict[str, Any] | None:
        """The entry of a planned first call, for the engine to commit before the agent runs; None
        when the agent will not make it (a replay hands back an earlier result, or an earlier
        attempt's same call has an unknown outcome and the agent will stop)."""
        if self.entries or any(s.get("fingerprint") == call.fingerprint for s in self._sources):
            return None
        if any(e.get("fingerprint") == call.fingerprint for e in self._unknown):
            return None
        return self._entry(call.kind, call.target, call.key, call.fingerprint, call.name)

    def begin(self, kind: str, target: str, key: str, fingerprint: str, name: str | None = None) -> dict[str, Any]:
        """Enter a call about to be made (status ``unknown`` until ``finish``); the engine commits it first.

        May raise ``StepError`` (the attempt was stopped, or the entry could not be kept): then
        the call must not be made.
        """
        entry = self._entry(kind, target, key, fingerprint, name)
        opened, self._opened = self._opened, None
        if opened is not None and all(opened.get(k) == entry.get(k) for k in _SAME_CALL):
            entry = opened  # committed with the claim: the call may be made
        elif self._note is not None:
            if opened is not None:
                self.entries.append(_unmade(opened, self._clock()))
                entry["n"] = len(self.entries) + 1
            self._note({k: v for k, v in entry.items()})
        self.entries.append(entry)
        return entry

    def unmade(self) -> None:
        """After the agent returned: an entry committed for a call it never began is ``failed``
        (the agent enters a call before making it, so this one was not made)."""
        if self._opened is not None:
            self.entries.append(_unmade(self._opened, self._clock()))
            self._opened = None

    def finish(self, entry: dict[str, Any], status: SideEffectStatus, result: Any = None, **facts: Any) -> None:
        """Record how the call ended; ``result`` is what a replay hands back (successful calls only)."""
        entry.update(status=status.value, finished_at=iso(self._clock()), **facts)
        if status == SideEffectStatus.SUCCEEDED:
            entry["result"] = result

    def _entry(self, kind: str, target: str, key: str, fingerprint: str, name: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "attempt": self.attempt,
            "n": len(self.entries) + 1,
            "kind": kind,
            "target": target,
            "status": SideEffectStatus.UNKNOWN.value,
            "at": iso(self._clock()),
            "idempotency_key": key,
            "fingerprint": fingerprint,
        }
        if name:
            entry["name"] = name
        return entry


#: What makes a begun call the planned one.
_SAME_CALL = ("n", "kind", "target", "idempotency_key", "fingerprint", "name")


def _unmade(entry: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {**entry, "status": SideEffectStatus.FAILED.value, "finished_at": iso(now)}


def failure_status(status: int | None, reason: str, timed_out: bool = False) -> SideEffectStatus:
    """A failed HTTP call's ledger status: ``failed`` when the other system answered or the request
    never left, ``unknown`` when it may have arrived (a time-out, a reset connection)."""
    if status is not None:
        return SideEffectStatus.FAILED
    if not timed_out and reason.startswith(NEVER_SENT):
        return SideEffectStatus.FAILED
    return SideEffectStatus.UNKNOWN
