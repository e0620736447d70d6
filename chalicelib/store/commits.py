"""How an execution's events are laid out in items: commit items, and the start on the head.

An execution's events live in its partition (``EX#<id>``). Event 1 (``execution_started``)
is kept on the head (``SUMMARY``), in its ``start`` attribute, so that a start is one put;
every later commit is an item ``E#<first seq>`` of one or more events. Executions started
before the start moved to the head have an ``E#000001`` item and a head without ``start``:
both layouts are read, and the history is the same.

A commit item that would weigh more than one write unit keeps its events compressed
(zlib, binary ``events_z`` or ``details_z``): their JSON repeats the same keys, and the
compressed form often brings the item back to one unit. Items written plain are read
unchanged.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.domain.machine import Event
from chalicelib.domain.vocabulary import EventType
from chalicelib.store.models import EventItem
from chalicelib.store.payloads import PayloadStore

#: ``type`` of a commit item that holds several events (in ``events``)
COMMIT = "commit"
#: The head's sort key; it sorts after every ``E#`` item, so one Query of the partition
#: returns the commits in order and then the head.
HEAD_SK = "SUMMARY"
#: Bytes of one DynamoDB write unit: an item over it is billed (at least) twice.
WRITE_UNIT_BYTES = 1024
#: zlib level: the lists are small, so the best ratio costs next to nothing.
LEVEL = 9


def esk(seq: int) -> str:
    """Sort key of the commit item whose first event is ``seq``."""
    return f"E#{seq:06d}"


def with_seq(e: Event, seq: int) -> Event:
    return Event(e.type, e.at, e.step_id, e.attempt, e.actor, e.details, seq, e.due)


def event_json(e: Event) -> dict[str, Any]:
    """An event as stored in a list: only the fields it has (its type and sequence are implied)."""
    out: dict[str, Any] = {"type": e.type, "at": e.at}
    for name in ("step_id", "attempt", "actor"):
        if getattr(e, name) is not None:
            out[name] = getattr(e, name)
    if e.details:
        out["details"] = dict(e.details)
    return out


def item_bytes(attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """What DynamoDB counts for a serialized item: attribute names plus values, in bytes.

    Numbers are counted as their decimal text, which is at least DynamoDB's size for them.
    """
    total = 0
    for name, value in attributes.items():
        ((kind, raw),) = value.items()
        total += len(name.encode("utf-8"))
        if kind == "B":
            total += len(raw)
        elif kind in ("BOOL", "NULL"):
            total += 1
        else:
            total += len(str(raw).encode("utf-8"))
    return total


def due_entry(execution_id: str, events: Sequence[Event], final: bool) -> tuple[str, str] | None:
    """The ``by_due`` bucket and range key of a commit of ``events`` (numbered), or None.

    The last event with a due time wins: it supersedes the earlier ones of the commit. A
    commit that leaves the execution ``final`` (completed, cancelled, or failed: paused until
    an operator acts, and every operator action commits its own due entry) has none: the
    sweep would find nothing to do, so the index write and the sweep's visit are saved.
    """
    if final:
        return None
    due = next((e for e in reversed(events) if e.due), None)
    if due is None or due.due is None:
        return None
    return due.due[:16], f"{due.due}#{execution_id}#{due.seq:06d}"


def commit_item(
    execution_id: str,
    events: Sequence[Event],
    payloads: PayloadStore,
    expires_at: int | None,
    final: bool = False,
) -> EventItem:
    """One commit item for ``events`` (numbered): a single event keeps the one-event layout."""
    first = events[0]
    item = EventItem(f"EX#{execution_id}", esk(first.seq), type=first.type, at=first.at, expires_at=expires_at)
    entry = due_entry(execution_id, events, final)
    if entry is not None:
        item.due_bucket, item.due_at = entry
    if len(events) == 1:
        details = json.dumps(dict(first.details), default=str)
        item.step_id, item.attempt, item.actor, item.details = first.step_id, first.attempt, first.actor, details
        if payloads.needs_offload(details):
            # claim check: the item keeps the key, S3 keeps the (immutable, content-addressed) details
            item.details, item.details_ref = "{}", payloads.put(execution_id, details)
        elif (plain := _units(item)) > 1:
            packed = zlib.compress(details.encode("utf-8"), LEVEL)
            item.details, item.details_z = None, packed
            if _units(item) >= plain:
                item.details, item.details_z = details, None  # no unit saved: stay legible
        return item
    item.type = COMMIT
    listed = json.dumps([event_json(e) for e in events], default=str, separators=(",", ":"))
    item.events = listed
    if payloads.needs_offload(listed):
        item.events, item.events_ref = None, payloads.put(execution_id, listed)
    elif (plain := _units(item)) > 1:
        # the kinds of events inside stay plain, so the item remains legible in the console
        kinds = " ".join(dict.fromkeys(e.type for e in events))
        item.events, item.events_z, item.types = None, zlib.compress(listed.encode("utf-8"), LEVEL), kinds
        if _units(item) >= plain:
            item.events, item.events_z, item.types = listed, None, None  # no unit saved: stay legible
    return item


def _units(item: EventItem) -> int:
    return -(-item_bytes(item.serialize()) // WRITE_UNIT_BYTES)


def to_events(item: Any, payloads: PayloadStore) -> list[Event]:
    """The events of one commit item, each with its own sequence number."""
    first = int(item.sk[2:])
    if item.type != COMMIT:
        if item.details_z is not None:
            details = zlib.decompress(item.details_z).decode("utf-8")
        else:
            details = payloads.get(item.details_ref) if item.details_ref else item.details
        return [
            Event(
                type=item.type,
                at=item.at,
                step_id=item.step_id,
                attempt=int(item.attempt) if item.attempt is not None else None,
                actor=item.actor,
                details=json.loads(details or "{}"),
                seq=first,
            )
        ]
    if item.events_z is not None:
        text = zlib.decompress(item.events_z).decode("utf-8")
    else:
        text = payloads.get(item.events_ref) if item.events_ref else item.events
    return [_from_json(e, first + i) for i, e in enumerate(json.loads(text))]


def _from_json(e: Mapping[str, Any], seq: int) -> Event:
    return Event(
        type=e["type"],
        at=e["at"],
        step_id=e.get("step_id"),
        attempt=e.get("attempt"),
        actor=e.get("actor"),
        details=e.get("details") or {},
        seq=seq,
    )


# ------------------------------------------------------------------ the start on the head
def start_json(first: Event, with_details: bool = True) -> str:
    """The ``start`` attribute of a head: event 1 as a commit list holds an event."""
    out = event_json(first)
    if not with_details:
        out.pop("details", None)
    return json.dumps(out, default=str, separators=(",", ":"))


def details_json(first: Event) -> str:
    return json.dumps(dict(first.details), default=str)


def start_event(start: str | None, start_ref: str | None, payloads: PayloadStore) -> Event | None:
    """Event 1 as kept on a head (None for a head written before the start moved there)."""
    if start is None:
        return None
    e = {"type": EventType.EXECUTION_STARTED.value, **json.loads(start)}
    if start_ref:
        e["details"] = json.loads(payloads.get(start_ref))
    return _from_json(e, 1)
