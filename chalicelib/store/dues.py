"""The due index (``by_due``): the entries the sweep reads, and the sweep's re-arm.

Commit items and heads carry an entry (``due_bucket``: the minute, ``due_at``: the time,
execution id and event sequence number) when something may come due then: a hand-over's
grace, a gate's time-out, a delayed retry, a heartbeat's lease (``store/commits.py``,
``due_entry``). A claim writes none: when the sweep visits a running execution and finds
nothing due yet, it re-arms, writing one entry on the head for the moment the current
thing comes due (``chalicelib/domain/rearm.py`` says when, and why that is enough).

A start's entry also keeps a young execution listable (store/lists.py): when the sweep
visits it and the execution is still active and young, the sweep enters the head in the
list indexes (``enlist``, or in the same write as the re-arm).
"""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from chalicelib.domain.states import ACTIVE_STATUSES
from chalicelib.store.commits import HEAD_SK
from chalicelib.store.lists import summary_keys
from chalicelib.store.models import EventItem, Summary
from chalicelib.store.young import YOUNG_STATUS

__all__ = ["DueHead", "DueIndex"]

ACTIVE = tuple(s.value for s in ACTIVE_STATUSES)


@dataclass(frozen=True)
class DueHead:
    """A head as the sweep reads it: its status, its due entry's time, and, while it is young
    (no ``g_wf``), the list keys that would enter it in the lists at that status (else None)."""

    status: str
    due: str | None
    keys: dict[str, str] | None


class DueIndex:
    def entries(self, bucket: str, upto: str) -> list[tuple[str, int]]:
        """(execution id, event seq) of entries in the minute ``bucket`` due at or before ``upto``
        (a head's entry counts as event 1's)."""
        rows = EventItem.by_due.query(bucket, EventItem.due_at <= upto + "~")
        return [(row.pk[3:], 1 if row.sk == HEAD_SK else int(row.sk[2:])) for row in rows]

    def head(self, execution_id: str) -> DueHead:
        """What the sweep needs of a head (one strongly consistent GetItem of a few attributes)."""
        item = Summary.get(
            f"EX#{execution_id}",
            HEAD_SK,
            consistent_read=True,
            attributes_to_get=["status", "due_at", "g_wf", "workflow_id", "trigger_type", "started_at"],
        )
        keys = None
        if item.g_wf is None:
            keys = summary_keys(
                item.workflow_id, item.status, item.trigger_type, item.started_at, execution_id=execution_id
            )
        return DueHead(item.status, item.due_at.split("#", 1)[0] if item.due_at else None, keys)

    def enlist(self, execution_id: str, keys: dict[str, str], status: str) -> bool:
        """Enter a young head in the list indexes with ``keys`` (made for ``status``); False when
        it is no longer young or no longer at that status (then its status change set them)."""
        try:
            # precondition: still young and still at the status the keys name
            Summary(f"EX#{execution_id}", HEAD_SK).update(
                actions=[getattr(Summary, name).set(value) for name, value in keys.items()],
                condition=Summary.g_wf.does_not_exist() & (Summary.status == status),
            )
        except UpdateError as error:
            if getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException":
                return False
            raise  # busy or failing: the sweep counts the visit as an error and looks again next minute
        return True

    def rearm(self, execution_id: str, due: str, seq: int, keys: dict[str, str] | None = None) -> bool:
        """Set the head's entry to ``due`` (as of event ``seq``); False when the execution is no
        longer active (or gone), which then needs no entry. With ``keys`` (a young head's list
        keys, made for ``running``), the same write enters the head in the lists, on condition
        that it is still running and young.

        One UpdateItem of two attributes the start already wrote (its ``due_at`` longer), so the
        head grows by the list keys at most, which the start's size check reserved
        (``HEAD_LIMIT``); the stream aggregator skips a head change without a status change.
        The head's earlier entry is replaced: the sweep wrote it, or the start did, and each
        was for a moment this visit has reached or re-computed.
        """
        head = Summary(f"EX#{execution_id}", HEAD_SK)
        actions: list[Action] = [
            Summary.due_bucket.set(due[:16]),
            Summary.due_at.set(f"{due}#{execution_id}#{seq:06d}"),
        ]
        # precondition: the execution is still running or waiting (a finished one keeps no entry)
        condition = Summary.status.is_in(*ACTIVE)
        if keys is not None:
            actions += [getattr(Summary, name).set(value) for name, value in keys.items()]
            # precondition: still running and young (the keys are made for running)
            condition = (Summary.status == YOUNG_STATUS) & Summary.g_wf.does_not_exist()
        try:
            head.update(actions=actions, condition=condition)
        except UpdateError as error:
            code = getattr(error, "cause_response_code", None)
            if code == "ConditionalCheckFailedException":
                return False
            raise  # busy or failing: the sweep counts the visit as an error and looks again next minute
        return True
