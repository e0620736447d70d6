"""Execution lists: every filter combination is one Query on an index whose key fits it.

Per workflow the hash key names the workflow and the filters (``wf``, ``wf#status``,
``wf#trigger``, ``wf#status#trigger``); across workflows it names the filters and the
start month (``YYYY-MM``, ``status#YYYY-MM``, ``trigger#YYYY-MM``,
``status#trigger#YYYY-MM``), so no partition collects all history and a list walks the
months of the requested range newest first. Every index is ranged on ``start_sk`` =
``<started_at>#<execution_id>``, so ``from``/``to`` is a key condition and a page costs
its own size, never the size of the history. No filter expression is used at all.

Indexes whose key holds no status are KEYS_ONLY (a status change then costs them no
write); their pages are completed with one BatchGetItem of the summaries.

Pagination tokens are opaque, bound to the query that made them, and checked field by
field on the way back in: a tampered or foreign token is a ``ValidationError`` (400).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException, UpdateError

from chalicelib.errors import FieldError, ValidationError
from chalicelib.store.models import Marker, Summary

#: A list page visits at most this many empty months before answering with a token.
MAX_MONTHS_PER_PAGE = 24
EPOCH_PK, EPOCH_SK = "EPOCH", "EXECUTIONS"
_MONTH = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True)
class ListFilter:
    """What a list asks for. ``start_from``/``start_to`` are normalised ISO timestamps."""

    workflow_id: str | None = None
    status: str | None = None
    trigger: str | None = None
    start_from: str | None = None
    start_to: str | None = None

    def scope(self) -> str:
        return "|".join(v or "" for v in (self.workflow_id, self.status, self.trigger, self.start_from, self.start_to))

    def to_dict(self) -> dict[str, str]:
        names = ("workflow_id", "status", "trigger", "from", "to")
        values = (self.workflow_id, self.status, self.trigger, self.start_from, self.start_to)
        return {n: v for n, v in zip(names, values) if v}


@dataclass(frozen=True)
class IndexChoice:
    index: str
    hash_attr: str
    key: str
    full: bool  # ALL projection: the index row is the whole summary


def summary_keys(workflow_id: str, status: str, trigger: str, started_at: str) -> dict[str, str]:
    """The list-index key attributes of a summary (set at create, re-set on status change)."""
    month = started_at[:7]
    return {
        "g_wf_trigger": f"{workflow_id}#{trigger}",
        "g_wf_st": f"{workflow_id}#{status}#{trigger}",
        "g_month": month,
        "g_month_trigger": f"{trigger}#{month}",
        "g_month_status": f"{status}#{month}",
        "g_month_st": f"{status}#{trigger}#{month}",
    }


def status_keys(workflow_id: str, status: str, trigger: str, started_at: str) -> dict[str, str]:
    """The key attributes that move when the status moves."""
    keys = summary_keys(workflow_id, status, trigger, started_at)
    return {
        "g_wf_status": f"{workflow_id}#{status}",
        "g_wf_st": keys["g_wf_st"],
        "g_month_status": keys["g_month_status"],
        "g_month_st": keys["g_month_st"],
    }


def choose_index(f: ListFilter, month: str | None = None) -> IndexChoice:
    """The index (and hash key value) that serves ``f``; cross-workflow ones need ``month``."""
    s, t = f.status, f.trigger
    if f.workflow_id:
        wf = f.workflow_id
        if s and t:
            return IndexChoice("by_workflow_status_trigger", "g_wf_st", f"{wf}#{s}#{t}", True)
        if s:
            return IndexChoice("by_workflow_status", "g_wf_status", f"{wf}#{s}", True)
        if t:
            return IndexChoice("by_workflow_trigger", "g_wf_trigger", f"{wf}#{t}", False)
        return IndexChoice("by_workflow", "g_wf", wf, False)
    if s and t:
        return IndexChoice("by_month_status_trigger", "g_month_st", f"{s}#{t}#{month}", True)
    if s:
        return IndexChoice("by_month_status", "g_month_status", f"{s}#{month}", True)
    if t:
        return IndexChoice("by_month_trigger", "g_month_trigger", f"{t}#{month}", False)
    return IndexChoice("by_month", "g_month", f"{month}", False)


def previous_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


class ExecutionLists:
    """Queries behind ``GET /workflows/{id}/executions``, ``GET /executions`` and bulk actions."""

    def __init__(self) -> None:
        self._epoch_seen: str | None = None

    # ------------------------------------------------------------------ epoch
    def note_month(self, month: str) -> None:
        """Remember the earliest start month, so unbounded cross-workflow lists know where to stop.

        One conditional update per process (and per earlier month); cached after that.
        """
        if self._epoch_seen is not None and self._epoch_seen <= month:
            return
        try:
            # precondition: no epoch yet, or a later one (the epoch only moves back)
            Marker(EPOCH_PK, EPOCH_SK).update(
                actions=[Marker.value.set(month)],
                condition=Marker.value.does_not_exist() | (Marker.value > month),
            )
        except UpdateError as error:
            if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
        self._epoch_seen = month

    def epoch(self) -> str | None:
        try:
            return Marker.get(EPOCH_PK, EPOCH_SK).value
        except DoesNotExist:
            return None

    # ------------------------------------------------------------------ pages
    def page(self, f: ListFilter, limit: int, token: str | None, now: str) -> tuple[list[Any], str | None]:
        """One page of summary items, newest first, and the token of the next page (or None)."""
        if f.workflow_id:
            choice = choose_index(f)
            start = self._decode(token, f, choice, None)["k"] if token else None
            rows, last = self._query(choice, f, limit, start, token is not None)
            return self._complete(rows, choice), self._encode(f, None, last)
        return self._cross_page(f, limit, token, now)

    def iterate(self, f: ListFilter, now: str, page_size: int = 100) -> Iterator[Any]:
        """Every matching summary, newest first, page by page."""
        token: str | None = None
        while True:
            items, token = self.page(f, page_size, token, now)
            yield from items
            if token is None:
                return

    def count(self, f: ListFilter, now: str, cap: int) -> int:
        """How many summaries match (stops at ``cap``); a COUNT query per partition."""
        total = 0
        for choice in self._partitions(f, now, None, self._floor(f)):
            index = getattr(Summary, choice.index)
            total += index.count(choice.key, _range(Summary.start_sk, f))
            if total >= cap:
                return cap
        return total

    def _cross_page(self, f: ListFilter, limit: int, token: str | None, now: str) -> tuple[list[Any], str | None]:
        data = self._decode_cross(token, f, now) if token else None
        start = data["k"] if data else None
        items: list[Any] = []
        visited = 0
        month = data["m"] if data else None
        floor = self._floor(f)
        for choice in self._partitions(f, now, month, floor):
            month = choice.key.rsplit("#", 1)[-1]
            rows, last = self._query(choice, f, limit - len(items), start, start is not None)
            start = None
            items.extend(self._complete(rows, choice))
            visited += 1
            if last is not None:
                return items, self._encode(f, month, last)
            earlier = previous_month(month)
            if floor is None or earlier < floor:
                return items, None
            if len(items) >= limit or visited >= MAX_MONTHS_PER_PAGE:
                return items, self._encode(f, earlier, None)
        return items, None

    def _floor(self, f: ListFilter) -> str | None:
        epoch = self.epoch()
        if epoch is None:
            return None
        return max(epoch, f.start_from[:7]) if f.start_from else epoch

    def _partitions(self, f: ListFilter, now: str, first: str | None, floor: str | None) -> Iterator[IndexChoice]:
        if f.workflow_id:
            yield choose_index(f)
            return
        if floor is None:
            return
        month = first or min(now[:7], (f.start_to or now)[:7])
        while month >= floor:
            yield choose_index(f, month)
            month = previous_month(month)

    def _query(
        self, choice: IndexChoice, f: ListFilter, limit: int, start: dict[str, Any] | None, from_token: bool
    ) -> tuple[list[Any], dict[str, Any] | None]:
        index = getattr(Summary, choice.index)
        try:
            result = index.query(
                choice.key,
                _range(Summary.start_sk, f),
                scan_index_forward=False,
                limit=limit,
                last_evaluated_key=start,
            )
            rows = list(result)
        except PynamoDBException as error:
            if from_token and getattr(error, "cause_response_code", None) == "ValidationException":
                raise _bad_token() from error
            raise
        return rows, result.last_evaluated_key

    def _complete(self, rows: list[Any], choice: IndexChoice) -> list[Any]:
        """Full summaries for index rows, in the same order (keys-only indexes need a BatchGet)."""
        if choice.full or not rows:
            return rows
        keys = [(row.pk, "SUMMARY") for row in rows]
        found = {item.pk: item for item in Summary.batch_get(keys)}
        return [found[row.pk] for row in rows if row.pk in found]

    # ----------------------------------------------------------------- tokens
    def _encode(self, f: ListFilter, month: str | None, key: dict[str, Any] | None) -> str | None:
        if key is None and month is None:
            return None
        raw = json.dumps({"s": f.scope(), "m": month, "k": key}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_cross(self, token: str, f: ListFilter, now: str) -> dict[str, Any]:
        data = _decode_raw(token, f)
        month = data.get("m")
        if not isinstance(month, str) or not _MONTH.match(month) or month > now[:7]:
            raise _bad_token()
        return self._decode(token, f, choose_index(f, month), month, data)

    def _decode(
        self, token: str, f: ListFilter, choice: IndexChoice, month: str | None, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        data = data if data is not None else _decode_raw(token, f)
        if data.get("m") != month:
            raise _bad_token()
        key = data.get("k")
        if key is None:
            if month is None:
                raise _bad_token()
            return data
        if not isinstance(key, dict) or set(key) != {"pk", "sk", "start_sk", choice.hash_attr}:
            raise _bad_token()
        values = {}
        for name, value in key.items():
            if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str):
                raise _bad_token()
            values[name] = value["S"]
        execution_id = values["pk"][3:]
        consistent = (
            values["pk"].startswith("EX#")
            and values["sk"] == "SUMMARY"
            and values[choice.hash_attr] == choice.key
            and values["start_sk"].endswith("#" + execution_id)
            and len(execution_id) > 0
            and (not f.start_from or values["start_sk"] >= f.start_from)
            and (not f.start_to or values["start_sk"] <= f.start_to + "~")
        )
        if not consistent:
            raise _bad_token()
        return data


def _decode_raw(token: str, f: ListFilter) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise _bad_token() from error
    if not isinstance(data, dict) or data.get("s") != f.scope() or set(data) != {"s", "m", "k"}:
        raise _bad_token()
    return data


def _bad_token() -> ValidationError:
    return ValidationError(FieldError("next_token", "invalid or foreign pagination token"))


def _range(attr: Any, f: ListFilter) -> Any:
    # start_sk is "<started_at>#<id>": "~" sorts after every id character
    if f.start_from and f.start_to:
        return attr.between(f.start_from, f.start_to + "~")
    if f.start_from:
        return attr >= f.start_from
    if f.start_to:
        return attr <= f.start_to + "~"
    return None
