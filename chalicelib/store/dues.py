"""The due index (``by_due``): the entries the sweep reads, and the sweep's re-arm.

Commit items and heads carry an entry (``due_bucket``: the minute, ``due_at``: the time,
execution id and event sequence number) when something may come due then: a hand-over's
grace, a gate's time-out, a delayed retry, a heartbeat's lease (``store/commits.py``,
``due_entry``). A claim writes none: when the sweep visits a running execution and finds
nothing due yet, it re-arms, writing one entry on the head for the moment the current
thing comes due (``chalicelib/domain/rearm.py`` says when, and why that is enough).
"""

from __future__ import annotations

from pynamodb.exceptions import UpdateError

from chalicelib.domain.states import ACTIVE_STATUSES
from chalicelib.store.commits import HEAD_SK
from chalicelib.store.models import EventItem, Summary

__all__ = ["DueIndex"]

ACTIVE = tuple(s.value for s in ACTIVE_STATUSES)


class DueIndex:
    def entries(self, bucket: str, upto: str) -> list[tuple[str, int]]:
        """(execution id, event seq) of entries in the minute ``bucket`` due at or before ``upto``
        (a head's entry counts as event 1's)."""
        rows = EventItem.by_due.query(bucket, EventItem.due_at <= upto + "~")
        return [(row.pk[3:], 1 if row.sk == HEAD_SK else int(row.sk[2:])) for row in rows]

    def head(self, execution_id: str) -> tuple[str, str | None]:
        """The head's status and the time of its due entry, if any (one strongly consistent GetItem)."""
        item = Summary.get(f"EX#{execution_id}", HEAD_SK, consistent_read=True, attributes_to_get=["status", "due_at"])
        return item.status, item.due_at.split("#", 1)[0] if item.due_at else None

    def rearm(self, execution_id: str, due: str, seq: int) -> bool:
        """Set the head's entry to ``due`` (as of event ``seq``); False when the execution is no
        longer active (or gone), which then needs no entry.

        One UpdateItem of two fixed-length attributes the start already wrote, so the head does
        not grow (``HEAD_LIMIT``); the stream aggregator skips a head change without a status
        change. The head's earlier entry is replaced: the sweep wrote it, or the start did,
        and each was for a moment this visit has reached or re-computed.
        """
        head = Summary(f"EX#{execution_id}", HEAD_SK)
        try:
            # precondition: the execution is still running or waiting (a finished one keeps no entry)
            head.update(
                actions=[Summary.due_bucket.set(due[:16]), Summary.due_at.set(f"{due}#{execution_id}#{seq:06d}")],
                condition=Summary.status.is_in(*ACTIVE),
            )
        except UpdateError as error:
            code = getattr(error, "cause_response_code", None)
            if code == "ConditionalCheckFailedException":
                return False
            raise  # busy or failing: the sweep counts the visit as an error and looks again next minute
        return True
