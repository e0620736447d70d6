"""Commit items and the start on the head (``chalicelib/store/commits.py``): round trips of
the plain and compressed forms, and which commits carry a due entry. No AWS call is made:
nothing here is large enough for the payload bucket."""

from __future__ import annotations

import json
from typing import Any

from bench.capacity import item_size
from chalicelib.config import Settings
from chalicelib.domain.machine import Event
from chalicelib.store.commits import (
    WRITE_UNIT_BYTES,
    commit_item,
    due_entry,
    item_bytes,
    start_event,
    start_json,
    to_events,
    with_seq,
)
from chalicelib.store.models import EventItem
from chalicelib.store.payloads import PayloadStore

AT = "2026-11-25T12:00:00.000Z"
LATER = "2026-11-25T12:05:00.000Z"


class _NoS3:
    """A client that fails the test if the payload bucket is touched."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected S3 call {name}")


def _payloads() -> PayloadStore:
    return PayloadStore(Settings.from_env({}), client=_NoS3())


def _stored(item: EventItem) -> EventItem:
    """The item as a read gives it back: serialized, then deserialized."""
    return EventItem.from_raw_data(item.serialize())


def _numbered(events: list[Event], first: int = 2) -> list[Event]:
    return [with_seq(e, first + i) for i, e in enumerate(events)]


def test_a_small_single_event_keeps_the_plain_one_event_layout() -> None:
    events = _numbered([Event("step_completed", AT, "s", 1, details={"output": {"n": 1}})])
    item = commit_item("ex_1", events, _payloads(), None)
    raw = item.serialize()
    assert raw["type"] == {"S": "step_completed"} and json.loads(raw["details"]["S"]) == {"output": {"n": 1}}
    assert "details_z" not in raw
    assert to_events(_stored(item), _payloads()) == events


def test_a_large_single_event_is_compressed_and_reads_back_the_same() -> None:
    output = {"rows": [{"customer": "ACME Corporation", "amount": 1250.5, "n": n} for n in range(40)]}
    events = _numbered([Event("step_completed", AT, "s", 1, actor="w", details={"output": output})])
    plain = json.dumps({"output": output})
    assert len(plain) > WRITE_UNIT_BYTES
    item = commit_item("ex_1", events, _payloads(), 1_800_000_000)
    raw = item.serialize()
    assert "details" not in raw and "details_z" in raw and item_size(raw) <= WRITE_UNIT_BYTES
    assert item_bytes(raw) >= item_size(raw)  # the store's own size never undercounts
    assert to_events(_stored(item), _payloads()) == events


def test_a_large_commit_is_compressed_and_reads_back_the_same() -> None:
    events = _numbered(
        [
            e
            for n in range(10)
            for e in (
                Event("step_started", AT, f"s{n}", 1, details={"deadline": LATER}, due=LATER),
                Event("step_completed", AT, f"s{n}", 1, details={"output": {"customer": "ACME", "n": n}}),
            )
        ]
        + [Event("execution_completed", AT)]
    )
    item = commit_item("ex_1", events, _payloads(), None, final=True)
    raw = item.serialize()
    assert raw["type"] == {"S": "commit"} and "events" not in raw and "events_z" in raw
    assert item_size(raw) <= WRITE_UNIT_BYTES
    back = to_events(_stored(item), _payloads())
    assert [(e.type, e.seq, e.step_id, dict(e.details)) for e in back] == [
        (e.type, e.seq, e.step_id, dict(e.details)) for e in events
    ]


def test_a_small_commit_stays_plain() -> None:
    events = _numbered([Event("step_started", AT, "s", 1), Event("step_completed", AT, "s", 1)])
    raw = commit_item("ex_1", events, _payloads(), None).serialize()
    assert "events" in raw and "events_z" not in raw


def test_the_last_due_time_of_a_commit_is_its_due_entry_unless_the_commit_is_final() -> None:
    events = _numbered(
        [
            Event("step_started", AT, "a", 1, due=LATER),
            Event("step_completed", AT, "a", 1),
            Event("step_started", AT, "b", 1, due="2026-11-25T12:09:00.000Z"),
        ]
    )
    assert due_entry("ex_1", events, final=False) == ("2026-11-25T12:09", "2026-11-25T12:09:00.000Z#ex_1#000004")
    assert due_entry("ex_1", events, final=True) is None
    assert due_entry("ex_1", _numbered([Event("step_completed", AT, "a", 1)]), final=False) is None
    item = commit_item("ex_1", events, _payloads(), None, final=True).serialize()
    assert "due_bucket" not in item and "due_at" not in item


def test_the_start_on_the_head_reads_back_as_event_one() -> None:
    first = with_seq(
        Event(
            "execution_started",
            AT,
            actor="admin",
            due=LATER,
            details={"workflow_id": "wf_1", "workflow_version": 2, "input": {"x": "é"}, "trigger": {"type": "manual"}},
        ),
        1,
    )
    back = start_event(start_json(first), None, _payloads())
    assert back == Event("execution_started", AT, actor="admin", details=first.details, seq=1)
    assert start_event(None, None, _payloads()) is None  # a head written before the start moved there
