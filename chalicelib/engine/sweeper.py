"""The sweep: time out steps past their deadline (recording a result their worker kept instead), wake due retries, re-send lost messages,
and decide gates that waited past their ``timeout_seconds`` (``on_timeout``, actor ``system``).

An active execution always has an entry on the sparse ``by_due`` index that comes due at or
after the sweep's last visit (``chalicelib/domain/rearm.py``): the start, hand-overs outside a
worker's chain, retries, gates and heartbeats write one, and a visit that finds nothing due
yet re-arms the head's entry for when the current step comes due. So a crashed worker (its
claim's deadline or lease passes) or a lost SQS message (its hand-over stays unclaimed) is
always found: no step stays ``running`` forever.

It reads only the ``by_due`` index buckets between its watermark and now, so its cost
follows the number of deadlines that fell due, not the size of the history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from pynamodb.exceptions import DoesNotExist

from chalicelib.domain.machine import ExecutionState, RequeueStep, TimeOutGate, TimeOutStep, decide
from chalicelib.domain.rearm import rearm_at
from chalicelib.domain.states import ACTIVE_STATUSES, ExecutionStatus, StepState
from chalicelib.domain.timefmt import iso, parse_iso
from chalicelib.engine.executions import ExecutionService
from chalicelib.errors import NotFound, TransitionConflict
from chalicelib.observability import log_context
from chalicelib.store.dues import DueHead
from chalicelib.store.young import SWEEP_WATERMARK

log = logging.getLogger("stepline.sweep")

WATERMARK = SWEEP_WATERMARK
#: How far back a first sweep (or one after a long outage) looks.
MAX_LOOKBACK = timedelta(days=7)
ACTIVE = frozenset(s.value for s in ACTIVE_STATUSES)
#: Times a visit decides again on the fresh state after a worker or an operator moved first.
RACE_TRIES = 3
#: How long the watermark waits for an execution whose visit raised (it is retried each sweep).
RETRY_WINDOW = timedelta(hours=1)


#: Records an attempt's kept result (``StepRunner.recover``); True when there was one.
Recover = Callable[[ExecutionState, str, int], bool]


class Sweeper:
    def __init__(
        self, executions: ExecutionService, clock: Callable[[], datetime], recover: Recover | None = None
    ) -> None:
        self.executions = executions
        self.clock = clock
        self.recover = recover

    def run(self) -> dict[str, int]:
        now = self.clock()
        catalog = self.executions.store.catalog
        stored = catalog.get_marker(*WATERMARK)
        start = parse_iso(stored) if stored else now - timedelta(hours=1)
        start = max(start, now - MAX_LOOKBACK).replace(second=0, microsecond=0)
        seen: set[str] = set()
        counts = {
            "visited": 0,
            "timed_out": 0,
            "recovered": 0,
            "resent": 0,
            "gates_timed_out": 0,
            "rearmed": 0,
            "errors": 0,
        }
        first_failed: datetime | None = None
        bucket = start
        while bucket <= now:
            for execution_id, _seq in self.executions.store.executions.dues.entries(iso(bucket)[:16], iso(now)):
                if execution_id in seen:
                    continue
                seen.add(execution_id)
                counts["visited"] += 1
                with log_context(execution_id=execution_id):
                    try:
                        outcome = self.visit(execution_id, now)
                    except Exception:
                        log.exception("sweep: visiting %s failed; going on with the others", execution_id)
                        outcome = "errors"
                        first_failed = first_failed or bucket
                if outcome in ("timed_out", "recovered", "resent", "gates_timed_out"):
                    log.info("sweep: %s", outcome.replace("_", " "))
                if outcome in counts:
                    counts[outcome] += 1
            bucket += timedelta(minutes=1)
        mark = now.replace(second=0, microsecond=0)
        if first_failed is not None:
            # Look at the failed ones again next time, but never hold the mark back more than
            # RETRY_WINDOW: an execution that fails every time costs a bounded re-read, not 7 days.
            mark = max(first_failed, mark - RETRY_WINDOW)
        catalog.put_marker(*WATERMARK, value=iso(mark), at=iso(now))
        return counts

    def visit(self, execution_id: str, now: datetime) -> str:
        """Decide what a due execution needs now: a timeout, a (re-)sent message, or nothing
        yet; in the last case (and when what moved it wrote no entry) re-arm its due entry."""
        try:
            # A commit's due entry stays on the index once it is superseded, so most entries that
            # fall due belong to executions that finished since. The head's status (one small
            # GetItem) tells those apart without reading and folding the whole history. A head
            # only moves forward and only a transaction takes an execution out of ``failed``, so
            # a head that is not running or waiting is never ahead of its history.
            head = self.executions.store.executions.dues.head(execution_id)
        except DoesNotExist:
            return "gone"
        if head.status not in ACTIVE:
            if head.keys is not None:
                # a head moved without its list keys (a release before young executions did so)
                self.executions.store.executions.dues.enlist(execution_id, head.keys, head.status)
            return "nothing"
        outcome, listed = self._visit(execution_id, now, head)
        if head.keys is not None and not listed:
            # young until now: enter it in the lists (store/lists.py, "young" executions)
            self.executions.store.executions.dues.enlist(execution_id, head.keys, head.status)
        return outcome

    def _visit(self, execution_id: str, now: datetime, head: DueHead) -> tuple[str, bool]:
        """``visit`` of an active head: the outcome, and whether a re-arm entered it in the lists."""
        head_due = head.due
        young = head.keys if head.status == ExecutionStatus.RUNNING.value else None
        outcome, repaired = "raced", False
        for _ in range(RACE_TRIES):
            try:
                state = self.executions.load(execution_id)
            except NotFound:
                return "gone", False
            if not repaired and state.status.value != head.status and self.executions.repair_head(state):
                # A worker committed a status change and died (or its message was lost) before it
                # moved the head: lists, counts and status events follow the head, so move it now.
                # The repair sets the list keys of the new status too.
                repaired, young = True, None
            outcome = self._act(state, now)
            if outcome != "raced":
                break
        if outcome in ("nothing", "recovered", "raced"):
            # The entry that brought the sweep here is used up. "nothing": nothing is due yet;
            # "recovered" and "raced": a write that may carry no entry of its own (a worker's
            # hand-over, a claim) moved the execution. Each case re-arms from the state as stored.
            if outcome != "nothing":
                state = self.executions.load(execution_id)
            written, listed = self._rearm(state, now, head_due, young)
            if written:
                return ("rearmed" if outcome == "nothing" else outcome), listed or repaired
        return outcome, repaired

    def _act(self, state: ExecutionState, now: datetime) -> str:
        """Time out, re-send or decide a gate when it is due; ``nothing``, or ``raced`` when a worker
        or an operator moved first."""
        step = state.current
        if step is None or state.status not in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING):
            return "nothing"
        command: TimeOutStep | TimeOutGate | RequeueStep
        if state.status == ExecutionStatus.WAITING:
            command, outcome = TimeOutGate(step.id, step.attempt), "gates_timed_out"
        elif step.state == StepState.RUNNING and step.claimed:
            command, outcome = TimeOutStep(step.id, step.attempt), "timed_out"
        else:
            # pending, or a queued retry: its message may be lost, or its long backoff over
            command, outcome = RequeueStep(step.id, step.attempt), "resent"
        decision = decide(state, command, now)
        if not decision.events:
            return "nothing"
        if outcome == "timed_out" and self.recover is not None and self.recover(state, step.id, step.attempt):
            # the worker finished but could not record, and kept the result; its message never came back
            return "recovered"
        try:
            self.executions.commit(state, decision)
        except TransitionConflict:
            return "raced"  # decided again on the fresh state
        return outcome

    def _rearm(
        self, state: ExecutionState, now: datetime, head_due: str | None, keys: dict[str, str] | None = None
    ) -> tuple[bool, bool]:
        """Write the head's due entry for when ``state``'s current step comes due, with ``keys``
        entering a young head in the lists in the same write. Returns (written, listed); not
        written when it needs none (``rearm_at``) or the head has it already (the sweep reads its
        watermark's minute again, so an entry may be visited twice)."""
        due = rearm_at(state)
        if due is None:
            return False, False
        at = iso(max(due, now))
        if at == head_due:
            return False, False
        dues = self.executions.store.executions.dues
        if keys is not None and dues.rearm(state.execution_id, at, state.seq, keys):
            return True, True
        # not young any more (a status change listed it) or not running: the plain re-arm
        return dues.rearm(state.execution_id, at, state.seq), False
