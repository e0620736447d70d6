"""The side-effect ledger: what a step did to other systems, and what a retry may repeat.

A *side effect* is a call that changes something elsewhere: an ``llm`` tool call or an
``http`` step that is not a ``GET``, and an email sent. Each is an entry of the step's
``side_effects`` list, kept across attempts::

    {"attempt": 1, "n": 1, "kind": "tool_call", "name": "refund", "target": "POST https://pay.example/refunds",
     "status": "succeeded", "at": "...", "idempotency_key": "ex_..:refund:1:1", "http_status": 201}

Entries are written twice: ``side_effect_started`` is committed *before* the call (status
``unknown``), and the attempt's result carries the finished entry. A worker that dies mid-call
leaves the entry ``unknown``: nobody knows whether the other system acted.

A retry chooses what to do with calls that already happened (``RetryMode``):

- ``replay`` (the default, and every automatic retry): a call with the same fingerprint
  (method, full URL and body; sender, recipients and content for an email) as an earlier
  *successful* one is not made again; the agent gets the recorded result, and the entry is
  ``replayed`` with the original idempotency key. An earlier call whose outcome is
  ``unknown`` is not repeated either: the attempt fails and a person decides (rerun or skip),
  because repeating it may refund twice and dropping it may refund never.
- ``rerun``: every call is made again with the new attempt's idempotency keys.

This module is pure: dicts in, dicts out, no clock and no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_MODE",
    "RetryMode",
    "SideEffectKind",
    "SideEffectStatus",
    "fingerprint",
    "merge",
    "public_entries",
    "public_target",
    "replay_sources",
    "summary",
    "unresolved",
]


class SideEffectStatus(StrEnum):
    """How a side effect ended; the values are the API strings."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: committed before the call, never finished: the worker stopped mid-call (or is still in it)
    UNKNOWN = "unknown"
    #: not made again: a retry in ``replay`` mode handed the agent an earlier attempt's result
    REPLAYED = "replayed"


class SideEffectKind(StrEnum):
    """What made the call; the values are the API strings."""

    TOOL_CALL = "tool_call"  # an llm step's tool
    HTTP = "http"  # an http step
    EMAIL = "email"  # an email step


class RetryMode(StrEnum):
    """What a retry does with the side effects earlier attempts already made."""

    REPLAY = "replay"
    RERUN = "rerun"


DEFAULT_MODE = RetryMode.REPLAY
#: Entry fields kept for replay only: never shown (results may be large; the fingerprint means nothing to people).
PRIVATE_FIELDS = ("result", "fingerprint")


def fingerprint(kind: str, *parts: Any) -> str:
    """A digest of what makes two calls "the same call": kind plus its canonical JSON arguments."""
    text = json.dumps([kind, *parts], sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def public_target(method: str, url: str) -> str:
    """``METHOD scheme://host[:port]/path``: no user info, query or fragment (they may carry secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{method.upper()} {parts.scheme}://{host}{parts.path}" + ("?…" if parts.query else "")


def merge(entries: Sequence[Mapping[str, Any]], updates: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` with ``updates`` folded in: an update replaces the entry of its (attempt, n), else is added.

    Returns a new list (states are copied by ``apply_events`` without deep copies).
    """
    merged = [dict(e) for e in entries]
    index = {(e.get("attempt"), e.get("n")): i for i, e in enumerate(merged)}
    for update in updates:
        if not isinstance(update, Mapping):
            continue
        key = (update.get("attempt"), update.get("n"))
        if key in index:
            merged[index[key]] = {**merged[index[key]], **update}
        else:
            index[key] = len(merged)
            merged.append(dict(update))
    return merged


def replay_sources(entries: Sequence[Mapping[str, Any]], attempt: int) -> list[dict[str, Any]]:
    """Successful entries of attempts before ``attempt`` that a replay may hand back, latest first."""
    found = [
        dict(e)
        for e in entries
        if e.get("status") == SideEffectStatus.SUCCEEDED.value
        and isinstance(e.get("attempt"), int)
        and e["attempt"] < attempt
        and "fingerprint" in e
    ]
    return sorted(found, key=lambda e: (-int(e["attempt"]), int(e.get("n") or 0)))


def unresolved(entries: Sequence[Mapping[str, Any]], attempt: int) -> list[dict[str, Any]]:
    """Entries of earlier attempts whose outcome is unknown (a worker stopped mid-call)."""
    return [
        dict(e)
        for e in entries
        if e.get("status") == SideEffectStatus.UNKNOWN.value
        and isinstance(e.get("attempt"), int)
        and e["attempt"] < attempt
    ]


def public_entries(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The entries as the API shows them."""
    return [{k: v for k, v in e.items() if k not in PRIVATE_FIELDS} for e in entries]


def summary(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """One sentence of what the step already did, for confirmations: "sent 1 email and made 2 POST calls".

    Replayed entries did nothing and are left out; calls whose outcome is unknown are counted
    and said so. None when the step made no side effect.
    """
    emails = [
        e
        for e in entries
        if e.get("kind") == SideEffectKind.EMAIL.value and e.get("status") != SideEffectStatus.REPLAYED.value
    ]
    calls: dict[str, int] = {}
    for e in entries:
        if e.get("kind") == SideEffectKind.EMAIL.value or e.get("status") == SideEffectStatus.REPLAYED.value:
            continue
        method = str(e.get("target") or "CALL").split(" ", 1)[0]
        calls[method] = calls.get(method, 0) + 1
    parts = []
    if emails:
        parts.append(f"sent {_count(len(emails), 'email')}")
    if calls:
        made = [_count(n, f"{method} call") for method, n in calls.items()]
        parts.append("made " + _and(made))
    if not parts:
        return None
    done = [e for e in entries if e.get("status") != SideEffectStatus.REPLAYED.value]
    unknown = sum(1 for e in done if e.get("status") == SideEffectStatus.UNKNOWN.value)
    failed = sum(1 for e in done if e.get("status") == SideEffectStatus.FAILED.value)
    notes = []
    if unknown:
        notes.append(f"{unknown} with unknown outcome")
    if failed:
        notes.append(f"{failed} failed")
    return _and(parts) + (f" ({', '.join(notes)})" if notes else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
