"""The aggregator's pure part: which stream records are head changes, and how a batch of
changes folds into one delta per counter and statistics item."""

from __future__ import annotations

from typing import Any

from chalicelib.engine.aggregator import HeadChange, add_change, head_change
from chalicelib.store.aggregates import Deltas
from chalicelib.store.stats import shard_of


def record(name: str, sk: str, new: dict[str, str] | None, old: dict[str, str] | None = None, seq: str = "7") -> Any:
    def image(values: dict[str, str] | None) -> dict[str, Any] | None:
        return None if values is None else {k: {"N" if k == "seq" else "S": v} for k, v in values.items()}

    body: dict[str, Any] = {"Keys": {"pk": {"S": "EX#ex_1"}, "sk": {"S": sk}}, "SequenceNumber": seq}
    if new is not None:
        body["NewImage"] = image(new)
    if old is not None:
        body["OldImage"] = image(old)
    return {"eventName": name, "dynamodb": body}


HEAD = {"execution_id": "ex_1", "workflow_id": "wf_1", "started_at": "2026-11-25T12:00:00Z"}


def test_only_status_changes_of_heads_are_head_changes() -> None:
    start = head_change(record("INSERT", "SUMMARY", {**HEAD, "status": "running", "seq": "1"}))
    assert start == HeadChange("7", "ex_1", "wf_1", None, "running", "2026-11-25T12:00:00Z", None, 1)
    done = head_change(
        record(
            "MODIFY",
            "SUMMARY",
            {**HEAD, "status": "completed", "ended_at": "2026-11-25T12:00:30Z", "seq": "9"},
            {**HEAD, "status": "running", "seq": "1"},
        )
    )
    assert done is not None and (done.before, done.after, done.head_seq) == ("running", "completed", 9)
    assert head_change(record("INSERT", "E#000002", {"type": "step_started"})) is None  # a commit item
    same = {**HEAD, "status": "running"}
    assert head_change(record("MODIFY", "SUMMARY", same, same)) is None  # no status change
    assert head_change(record("REMOVE", "SUMMARY", None, same)) is None  # expiry (TTL)
    assert head_change({"eventName": "INSERT", "dynamodb": "garbage"}) is None  # unreadable: skipped


def test_a_batch_folds_into_one_delta_per_item() -> None:
    deltas = Deltas()
    start = HeadChange("1", "ex_1", "wf_1", None, "running", "2026-11-25T12:10:00Z", None, 1)
    done = HeadChange("2", "ex_1", "wf_1", "running", "completed", "2026-11-25T12:10:00Z", "2026-11-25T12:10:12Z", 5)
    other = HeadChange("3", "ex_2", "wf_1", None, "running", "2026-11-25T12:20:00Z", None, 1)
    for change in (start, done, other):
        add_change(deltas, change)
    assert deltas.active[("wf_1", shard_of("ex_1"))] + deltas.active.get(("wf_1", shard_of("ex_2")), 0) >= 1
    assert sum(deltas.active.values()) == 1  # one still running
    hour_1 = deltas.stats[("wf_1", "2026-11-25T12", shard_of("ex_1"))]
    assert hour_1.counts["completed"] == 1 and hour_1.counts["running"] == (
        0 if shard_of("ex_2") != shard_of("ex_1") else 1
    )
    assert sum(hour_1.histogram.values()) == 1 and hour_1.duration_sum == 12.0 and hour_1.samples == [12.0]
    # start and completion of one execution in one batch: its counter item nets to zero and is not written
    only = Deltas()
    add_change(only, start)
    add_change(only, done)
    assert only.active == {("wf_1", shard_of("ex_1")): 0} and only.items() == 1


def test_a_batch_sorts_its_changes_by_the_item_they_move() -> None:
    from chalicelib.engine.aggregator import item_records
    from chalicelib.store.aggregates import StatDelta, ordered

    start = HeadChange("11", "ex_1", "wf_1", None, "running", "2026-11-25T12:10:00Z", None, 1)
    wait = HeadChange("12", "ex_1", "wf_1", "running", "waiting", "2026-11-25T12:10:00Z", None, 3)
    done = HeadChange("13", "ex_1", "wf_1", "waiting", "completed", "2026-11-25T12:10:00Z", "2026-11-25T12:10:12Z", 5)
    items = {i.ref: i for i in item_records([start, wait, done])}
    shard = shard_of("ex_1")
    counter, stats = items[("wf_1", shard)], items[("wf_1", "2026-11-25T12", shard)]
    assert set(items) == {counter.ref, stats.ref} and stats.is_stats and not counter.is_stats
    assert counter.sequences == ["11", "13"]  # running -> waiting moves no count
    assert (counter.delta(0), counter.delta(1)) == (0, -1)  # any suffix folds on its own
    assert stats.sequences == ["11", "12", "13"]
    whole, last = stats.delta(0), stats.delta(2)
    assert isinstance(whole, StatDelta) and isinstance(last, StatDelta)
    assert whole.counts == {"running": 0, "waiting": 0, "completed": 1} and whole.samples == [12.0]
    assert last.counts == {"completed": 1, "waiting": -1}
    # stream sequence numbers of any length compare as numbers
    assert ordered("99") < ordered("100") < ordered("000101") and ordered("0") == "010"
