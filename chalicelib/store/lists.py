"""Execution lists: two KEYS_ONLY indexes on the head, every filter a set of key conditions.

Both indexes range on ``l_sk`` = ``<status>#<trigger>#<started_at>#<execution_id>``, so one
(status, trigger) pair is one contiguous key range and ``from``/``to`` bound it:

| index | hash | serves |
| --- | --- | --- |
| ``list_wf`` | ``g_wf`` = ``<workflow_id>`` | lists of one workflow |
| ``list_month`` | ``l_month`` = ``M#<YYYY-MM>#<shard>`` | lists across workflows, month by month |

A list Queries each partition the filters leave (statuses x triggers, times the month's
shards across workflows) and merges them newest first (a k-way merge on
``<started_at>#<execution_id>``); the page's heads come from one BatchGetItem. No Scan and
no filter expression: a page costs its partitions and its own size, never the history.
A head enters both indexes at its first status change (or the sweep's first visit); a later
one rewrites ``l_sk`` only, so the head moves within each keys-only index. Until it enters
them the execution is young, and a list that can show running executions merges the young
ones in as one more partition (store/young.py), reading their heads a few at a time so that
those that entered the indexes since take no place on the page.

Pagination tokens are opaque, bound to the query that made them, and checked field by
field on the way back in: a tampered or foreign token is a ``ValidationError`` (400). A
token names the last execution returned: in a merge by one total order that position is
every partition's cursor at once, so the token stays small however many partitions a list
reads.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException, UpdateError

from chalicelib.domain.timefmt import parse_iso
from chalicelib.errors import StoreBusy
from chalicelib.store.list_tokens import bad_token, decode_cross, decode_workflow, encode
from chalicelib.store.models import STAT_STATUSES, Marker, Summary
from chalicelib.store.young import YOUNG_STATUS, YoungWindow
from chalicelib.triggers import trigger_kind_names

#: Young rows whose heads a list reads at a time (at least; up to a page's need, at most 100).
YOUNG_CHECK = 25
#: The month index's partitions per month: a month's starts and status changes spread over
#: this many partition keys (each takes ~1000 writes a second), and a list across workflows
#: reads each of them.
MONTH_SHARDS = 2
#: A list page visits at most this many months before answering with a token.
MAX_MONTHS_PER_PAGE = 24
#: ...and starts no further month once it has made this many Queries.
MAX_QUERIES_PER_PAGE = 128
STATUSES: tuple[str, ...] = STAT_STATUSES
EPOCH_PK, EPOCH_SK = "EPOCH", "EXECUTIONS"
HEAD_SK = "SUMMARY"


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
        return {n: v for n, v in zip(names, values, strict=True) if v}


def month_shard(execution_id: str) -> int:
    """The month-index shard of an execution (stable: its status changes stay in it)."""
    return int(hashlib.sha256(execution_id.encode()).hexdigest()[:8], 16) % MONTH_SHARDS


def month_key(started_at: str, execution_id: str) -> str:
    return f"M#{started_at[:7]}#{month_shard(execution_id)}"


def list_sk(status: str, trigger: str, started_at: str, execution_id: str) -> str:
    return f"{status}#{trigger}#{started_at}#{execution_id}"


def summary_keys(workflow_id: str, status: str, trigger: str, started_at: str, *, execution_id: str) -> dict[str, str]:
    """The list-index key attributes of a head (set when it is created)."""
    return {
        "g_wf": workflow_id,
        "l_month": month_key(started_at, execution_id),
        "l_sk": list_sk(status, trigger, started_at, execution_id),
    }


def status_keys(workflow_id: str, status: str, trigger: str, started_at: str, *, execution_id: str) -> dict[str, str]:
    """The list keys a status change sets: all three, since a head enters the indexes at its
    first status change (or the sweep's first visit), not at its start ("Young executions").
    Setting ``g_wf`` and ``l_month`` again to the same values writes no index row."""
    return summary_keys(workflow_id, status, trigger, started_at, execution_id=execution_id)


def previous_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def _position(l_sk: str) -> str:
    """``<started_at>#<execution_id>`` of an ``l_sk`` (statuses and trigger kinds hold no ``#``)."""
    return l_sk.split("#", 2)[2]


@dataclass(frozen=True)
class _YoungRow:
    """A young execution as a list row: the shape of an index row (``pk``, ``l_sk``)."""

    pk: str
    l_sk: str
    started_at: str


@dataclass
class _Partition:
    """One (hash key, status#trigger prefix) of an index, read newest first in small pages."""

    index: Any
    hash_key: str
    prefix: str
    rows: list[Any] = field(default_factory=list)
    cursor: dict[str, Any] | None = None
    started: bool = False
    #: the young executions' rows not yet checked, newest first, when this partition is them
    #: (no Query: each fill reads the heads of the next few and keeps those still young)
    young: list[_YoungRow] | None = None

    @property
    def exhausted(self) -> bool:
        return self.started and not self.rows and self.cursor is None


class ExecutionLists:
    """Queries behind ``GET /workflows/{id}/executions``, ``GET /executions`` and bulk actions."""

    def __init__(self) -> None:
        self._epoch_seen: str | None = None
        #: Queries made by the last ``page`` (the bench and tests read it)
        self.queries = 0
        #: per thread (the local server shares one store between request threads): the heads
        #: the current ``page`` read while checking young rows (its BatchGetItem skips them)
        self._local = threading.local()

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
    def page(self, f: ListFilter, limit: int, token: str | None, now: str) -> tuple[list[Summary], str | None]:
        """One page of heads, newest first, and the token of the next page (or None)."""
        self.queries = 0
        self._local.heads = {}
        if f.workflow_id:
            position = decode_workflow(token, f) if token else None
            partitions = [*self._workflow_partitions(f), _young_partition(self._young(f, now, position))]
            keys, more = self._merge(partitions, f, limit, position)
            return self._complete(keys, f), encode(f, None, keys[-1]) if more and keys else None
        return self._cross_page(f, limit, token, now)

    def iterate(self, f: ListFilter, now: str, page_size: int = 100) -> Iterator[Summary]:
        """Every matching head, newest first, page by page."""
        token: str | None = None
        while True:
            items, token = self.page(f, page_size, token, now)
            yield from items
            if token is None:
                return

    def count(self, f: ListFilter, now: str, cap: int) -> int:
        """How many heads match (stops at ``cap``); a COUNT Query per partition, and the young
        executions that are not in the indexes yet (their heads are read to tell)."""
        self._local.heads = {}
        total = sum(1 for head in self._complete(self._young(f, now), f) if head.g_wf is None)  # not in the indexes yet
        if f.workflow_id:
            groups: Iterator[list[_Partition]] = iter([self._workflow_partitions(f)])
        else:
            groups = (self._month_partitions(f, month) for month in self._months(f, now, None, self._floor(f)))
        for partitions in groups:
            for p in partitions:
                total += p.index.count(p.hash_key, self._range(p, f, None))
                if total >= cap:
                    return cap
        return total

    def _cross_page(self, f: ListFilter, limit: int, token: str | None, now: str) -> tuple[list[Summary], str | None]:
        month, position = decode_cross(token, f, now) if token else (None, None)
        floor = self._floor(f)
        keys: list[Any] = []
        young: list[_YoungRow] | None = None
        for visited, current in enumerate(self._months(f, now, month, floor)):
            partitions = self._month_partitions(f, current)
            if young is None:
                young = self._young(f, now, position)
            partitions.append(_young_partition([r for r in young if r.started_at.startswith(current)]))
            if visited and (visited >= MAX_MONTHS_PER_PAGE or self.queries + len(partitions) > MAX_QUERIES_PER_PAGE):
                return self._complete(keys, f), encode(f, current, None)
            found, more = self._merge(partitions, f, limit - len(keys), position)
            position = None
            keys.extend(found)
            if more:
                return self._complete(keys, f), encode(f, current, keys[-1])
            earlier = previous_month(current)
            if floor is None or earlier < floor:
                break
            if len(keys) >= limit:
                return self._complete(keys, f), encode(f, earlier, None)
        return self._complete(keys, f), None

    # -------------------------------------------------------------- partitions
    def _prefixes(self, f: ListFilter) -> list[str]:
        statuses = (f.status,) if f.status else STATUSES
        # every registered trigger kind, read now: a kind registered later is listed too
        triggers = (f.trigger,) if f.trigger else tuple(trigger_kind_names())
        return [f"{s}#{t}#" for s in statuses for t in triggers]

    def _workflow_partitions(self, f: ListFilter) -> list[_Partition]:
        return [_Partition(Summary.list_wf, f.workflow_id or "", p) for p in self._prefixes(f)]

    def _month_partitions(self, f: ListFilter, month: str) -> list[_Partition]:
        return [
            _Partition(Summary.list_month, f"M#{month}#{k}", p) for k in range(MONTH_SHARDS) for p in self._prefixes(f)
        ]

    def _floor(self, f: ListFilter) -> str | None:
        epoch = self.epoch()
        if epoch is None:
            return None
        return max(epoch, f.start_from[:7]) if f.start_from else epoch

    def _months(self, f: ListFilter, now: str, first: str | None, floor: str | None) -> Iterator[str]:
        if floor is None:
            return
        month = first or min(now[:7], (f.start_to or now)[:7])
        while month >= floor:
            yield month
            month = previous_month(month)

    # ------------------------------------------------------------------ merge
    def _merge(
        self, partitions: list[_Partition], f: ListFilter, limit: int, position: str | None
    ) -> tuple[list[Any], bool]:
        """Up to ``limit`` index rows after ``position``, newest first, and whether more remain.

        Each partition is read in pages sized to its share of the page; a partition that runs
        dry before the page is full is read once more, for what the page still needs, so a
        page makes at most two Queries per partition.
        """
        share = -(-limit // max(len(partitions), 1)) + 1
        heap: list[tuple[_Newest, int]] = []
        for i, p in enumerate(partitions):
            self._fill(p, f, position, share)
            while not p.rows and p.cursor is not None:  # a page held only the row at ``position``
                self._fill(p, f, position, share)
            if p.rows:
                heapq.heappush(heap, (_Newest(_position(p.rows[0].l_sk)), i))
        out: list[Any] = []
        emitted: set[str] = set()
        while heap and len(out) < limit:
            _, i = heapq.heappop(heap)
            p = partitions[i]
            row = p.rows.pop(0)
            if row.pk not in emitted:  # a young row and the index row of the same execution
                emitted.add(row.pk)
                out.append(row)
            while not p.rows and p.cursor is not None and len(out) < limit:
                self._fill(p, f, position, limit - len(out) + 1)
            if p.rows:
                heapq.heappush(heap, (_Newest(_position(p.rows[0].l_sk)), i))
        return out, bool(heap) or any(p.cursor is not None for p in partitions)

    def _fill(self, p: _Partition, f: ListFilter, position: str | None, size: int) -> None:
        if p.young is not None:
            if not p.started:
                p.started, p.young = True, [r for r in p.young if position is None or _position(r.l_sk) < position]
            n = min(max(size, YOUNG_CHECK), 100)
            chunk, p.young = p.young[:n], p.young[n:]
            heads = self._read_heads(chunk)
            # Most rows are of executions that finished since. Kept at their current status
            # (the merge lists an execution once when the indexes show it too, and the index
            # read may predate its entry); those the status filter leaves out take no place on the page
            p.rows.extend(r for r in chunk if r.pk in heads and (not f.status or heads[r.pk].status == f.status))
            p.cursor = {"young": len(p.young)} if p.young else None
            return
        self.queries += 1
        try:
            result = p.index.query(
                p.hash_key,
                self._range(p, f, position),
                scan_index_forward=False,
                limit=size,
                last_evaluated_key=p.cursor,
            )
            rows = list(result)
        except PynamoDBException as error:
            if getattr(error, "cause_response_code", None) != "ValidationException":
                raise
            if "index" in str(getattr(error, "cause_response_message", "") or error).lower():
                # an upgrade adds the list indexes one per stack update (README, "Upgrading")
                raise StoreBusy(f"the list index {p.index.Meta.index_name} is being built; try again") from error
            if position is not None:
                raise bad_token() from error
            raise
        p.started = True
        p.cursor = result.last_evaluated_key
        # the row at ``position`` itself was on the previous page (the key range is inclusive)
        p.rows.extend(r for r in rows if position is None or _position(r.l_sk) != position)

    @staticmethod
    def _range(p: _Partition, f: ListFilter, position: str | None) -> Any:
        # "~" sorts after every character of a timestamp or an execution id
        low = p.prefix + (f.start_from or "")
        high = p.prefix + (position or ((f.start_to + "~") if f.start_to else "~"))
        return Summary.l_sk.between(low, high)

    def _complete(self, rows: list[Any], f: ListFilter) -> list[Summary]:
        """The heads of index rows, in the same order, from one BatchGetItem.

        A head whose status moved on since the index row was read (the index is eventually
        consistent) is left out of a list filtered on the status it no longer has.
        """
        if not rows:
            return []
        found = self._read_heads(rows)
        heads = []
        for row in rows:
            head = found.get(row.pk)
            if head is None:
                continue  # gone (retention)
            if not f.status or head.status == f.status:
                heads.append(head)
        return heads

    def _read_heads(self, rows: list[Any]) -> dict[str, Summary]:
        """The heads of ``rows`` by ``pk``: those this page read already, and one BatchGetItem."""
        heads: dict[str, Summary] = self._local.__dict__.setdefault("heads", {})
        missing = list({row.pk for row in rows if row.pk not in heads})
        if missing:
            heads.update({item.pk: item for item in Summary.batch_get([(pk, HEAD_SK) for pk in missing])})
        return {row.pk: heads[row.pk] for row in rows if row.pk in heads}

    # ------------------------------------------------------------------ young
    def _young(self, f: ListFilter, now: str, position: str | None = None) -> list[_YoungRow]:
        """The young executions the filter keeps, newest first (store/young.py)."""
        if not now or (f.status and f.status != YOUNG_STATUS):
            return []
        window = YoungWindow(parse_iso(now))
        if (f.start_to and f.start_to + "~" < window.earliest) or (position is not None and position < window.earliest):
            return []  # the range, or the page, ends before any young execution started
        rows: dict[str, _YoungRow] = {}
        for e in window.entries():
            kept = (
                (not f.workflow_id or e.workflow_id == f.workflow_id)
                and (not f.trigger or e.trigger == f.trigger)
                and (not f.start_from or e.position >= f.start_from)
                and (not f.start_to or e.position <= f.start_to + "~")
            )
            if kept:
                rows[e.pk] = _YoungRow(
                    e.pk, list_sk(YOUNG_STATUS, e.trigger, e.started_at, e.execution_id), e.started_at
                )
        self.queries += window.queries
        return sorted(rows.values(), key=lambda r: _position(r.l_sk), reverse=True)


def _young_partition(rows: list[_YoungRow]) -> _Partition:
    return _Partition(None, "", YOUNG_STATUS, young=rows)


class _Newest(str):
    """A position that a min-heap pops newest first (its order reversed)."""

    __slots__ = ()

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)
